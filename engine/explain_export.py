"""Write saliency maps (engine.explain) to a folder: `.npy` arrays, PNG pictures and a JSON
sidecar per file, for `cromotex predict --explain OUTDIR` and the PDF export.

Per ECG file `STEM` and finding `P`: `STEM.P.npy` (float32 `[12, T]`, 100 Hz from the
record's start), `STEM.P.png` (heat strip, one row per lead, darker red = larger drop),
and `STEM.explain.json` (method, validity, per-lead scores, summaries). Per chest X-ray:
`STEM.P.npy` (float32 `[224, 224]` over the model's centre square) and `STEM.P.png`
(the model's square with the map overlaid). A map that is not valid is still written, and
its PNG is stamped "NOT ASSESSABLE" with the JSON saying why.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.constants import CXR_SIZE, LEADS
from engine.explain import Explainer, SaliencyMap

log = logging.getLogger(__name__)

ROW_PX = 18
LABEL_PX = 40


def heat_rgb(values: np.ndarray) -> np.ndarray:
    """uint8 RGB `[..., 3]`: white (no drop) -> red (largest positive drop of this map)."""
    v = np.maximum(np.asarray(values, dtype=np.float32), 0.0)
    top = float(v.max())
    a = v / top if top > 0 else v
    rgb = np.stack([np.full_like(a, 1.0), 1.0 - 0.85 * a, 1.0 - 0.85 * a], axis=-1)
    return (rgb * 255).round().astype(np.uint8)


def ecg_png(m: SaliencyMap) -> Image.Image:
    """Heat strip of an ECG map: 12 rows of ROW_PX px, one column per 10 ms, lead names."""
    rgb = heat_rgb(m.values)
    strip = Image.fromarray(np.repeat(rgb, ROW_PX, axis=0))
    img = Image.new("RGB", (LABEL_PX + strip.width, strip.height + ROW_PX), "white")
    img.paste(strip, (LABEL_PX, ROW_PX))
    draw = ImageDraw.Draw(img)
    for k, lead in enumerate(LEADS):
        draw.text((4, ROW_PX * (k + 1) + 3), lead, fill="black")
    draw.text((4, 3), f"{m.pathology}: p={m.probability:.3f}, max drop {m.values.max():.2g}; "
              f"{m.summary}", fill="black")
    if not m.valid:
        draw.text((LABEL_PX + 4, ROW_PX * 6), f"NOT ASSESSABLE: {m.reason}", fill=(200, 0, 0))
    return img


def cxr_png(m: SaliencyMap, model_input: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The model's 224 x 224 square (grey) with the map's heat blended in."""
    grey = np.clip((np.asarray(model_input).reshape(CXR_SIZE, CXR_SIZE) + 1024.0) / 2048.0, 0, 1)
    base = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
    heat = heat_rgb(m.values).astype(np.float32)
    w = alpha * np.clip(m.values / m.values.max(), 0, 1)[..., None] if m.values.max() > 0 \
        else np.zeros((CXR_SIZE, CXR_SIZE, 1))
    out = (base * (1 - w) + heat * w).round().astype(np.uint8)
    img = Image.fromarray(out)
    if not m.valid:
        ImageDraw.Draw(img).text((4, 4), "NOT ASSESSABLE", fill=(255, 0, 0))
    return img


def _stem(outdir: Path, path: str) -> str:
    stem = Path(path).name.rsplit(".", 1)[0] or "input"
    candidate, k = stem, 1
    while (outdir / f"{candidate}.explain.json").exists():
        k += 1
        candidate = f"{stem}-{k}"
    return candidate


def write_maps(outdir: Path, path: str, maps: dict[str, SaliencyMap],
               model_input: np.ndarray | None = None) -> list[Path]:
    """Write one input's maps; returns the files written."""
    outdir.mkdir(parents=True, exist_ok=True)
    stem = _stem(outdir, path)
    written = []
    for p, m in maps.items():
        npy = outdir / f"{stem}.{p}.npy"
        np.save(npy, m.values)
        png = outdir / f"{stem}.{p}.png"
        (ecg_png(m) if m.modality == "ecg" else cxr_png(m, model_input)).save(png)
        written += [npy, png]
    side = outdir / f"{stem}.explain.json"
    side.write_text(json.dumps({"file": path, "maps": {p: m.to_json() for p, m in maps.items()}},
                               indent=2) + "\n")
    return written + [side]


def explain_ecg_file(explainer: Explainer, path: str, outdir: Path, mode: str = "grid") -> list[Path]:
    """Read, preprocess, score and explain one ECG file; write its maps."""
    from engine.io import read_ecg
    from engine.preprocess import preprocess_ecg
    from engine.quality import assess_quality

    record = read_ecg(path)
    ecg_input = preprocess_ecg(record)
    preds = explainer.predictor.predict_ecg_input(ecg_input, assess_quality(record, ecg_input))
    return write_maps(outdir, path, explainer.ecg(ecg_input, preds, mode=mode))


def explain_cxr_file(explainer: Explainer, path: str, outdir: Path) -> list[Path]:
    """Read, preprocess, score and explain one chest X-ray; write its maps."""
    from engine.io import read_cxr
    from engine.preprocess import preprocess_cxr

    image = read_cxr(path)
    x = preprocess_cxr(image)
    preds = explainer.source.predict_cxr_input(x)
    maps = explainer.cxr(x, preds, image_shape=image.pixels.shape)
    return write_maps(outdir, path, maps, model_input=x)
