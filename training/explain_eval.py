"""`cromotex-train explain-eval`: do the occlusion maps (engine.explain) point where the
phantom drew each sign, do they rank what matters, and do they depend on the weights?

On the phantom cohort the true regions are known from the generator (training/phantom/):
- CXR (`training.phantom.cxr.render_frontal`, normalised image coordinates, square images
  so they map directly onto the 224 x 224 model input): cardiomegaly widens the heart
  silhouette (box x 0.35-0.78, y 0.42-0.76); pleural effusion fills the costophrenic bases
  (x 0.08-0.40 or 0.60-0.92, y 0.55-0.88); edema adds perihilar haze around hila at
  x = 0.5 +- (0.10 + 0.15 heart width), y 0.43-0.455 (box x 0.18-0.82, y 0.28-0.62).
  The boxes are generous (they hold the sign over the population's jitter); their area
  fraction is the pointing game's chance level.
- ECG (`training.phantom.ecg`): heart size changes QRS width / axis and, for large hearts,
  a lateral strain T, i.e. leads I, aVL, V5, V6 (lead pointing game: is the lead with the
  largest summed map in that set; chance 4/12). Fluid (effusion) lowers QRS voltage in every
  lead and congestion (edema) changes rhythm and P waves in every lead: those signs have no
  lead-specific truth, so only the deletion / insertion curves are measured for them.

Measures (test split, positive subjects, n per label):
- pointing game: hit rate of the map's maximum in the true region;
- deletion / insertion (Petsiuk et al. 2018): probability as patches are occluded (deletion)
  or restored into a fully occluded input (insertion) in the map's order vs random order
  (mean of 3); reported as the area between the curves (deletion: random - salient,
  insertion: salient - random; > 0 means the map ranks patches better than chance);
- model randomisation (Adebayo et al. 2018): every float initializer of the ONNX model is
  replaced by Gaussian noise of the same mean and standard deviation (seeded) in a temporary
  in-memory copy; the Spearman rank correlation between the trained and the randomised
  model's maps must be low (a map that survives randomisation shows the input, not the model).

Outputs under --out: results.md (table), results.json, ecg_examples.png, cxr_examples.png,
deletion_insertion.png, sanity.png. Needs the train extra (onnx, matplotlib).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from engine.constants import CXR_SIZE, LEADS, PATHOLOGIES, PATHOLOGY_NAMES
from engine.explain import (EcgOcclusion, cxr_patches, ecg_occlusions, ecg_window_maps,
                            occlude_cxr, occlude_ecg)

log = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray], np.ndarray]
LATERAL_LEADS = ("I", "aVL", "V5", "V6")
#: True CXR regions, (x0, x1, y0, y1) boxes in normalised image coordinates.
CXR_BOXES: dict[str, list[tuple[float, float, float, float]]] = {
    "cardiomegaly": [(0.35, 0.78, 0.42, 0.76)],
    "pleural_effusion": [(0.08, 0.40, 0.55, 0.88), (0.60, 0.92, 0.55, 0.88)],
    "edema": [(0.18, 0.82, 0.28, 0.62)],
}
SEGMENT_S = 2.0
CXR_GRID = 7


def region_mask(pathology: str, size: int = CXR_SIZE) -> np.ndarray:
    """bool `[size, size]`: the true region of `pathology`'s CXR sign."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    mask = np.zeros((size, size), dtype=bool)
    for x0, x1, y0, y1 in CXR_BOXES[pathology]:
        mask |= (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
    return mask


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def session_scorers(model_bytes: bytes, kind: str, outputs: dict[str, int] | None = None,
                    randomise_seed: int | None = None, raw: bool = False
                    ) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """A function batch -> {key: probabilities [N]} for one ONNX model's bytes.

    kind "ecg": key "p"; kind "cxr": one key per `outputs` entry (pathology -> column).
    `randomise_seed`: replace every float initializer by seeded Gaussian noise first.
    `raw`: logits instead of probabilities (the randomisation check compares logit maps, since
    a randomised model's probabilities saturate and its probability map is then all ~0)."""
    import onnxruntime as ort

    from engine.inference import session_options

    if randomise_seed is not None:
        model_bytes = randomised_model(model_bytes, randomise_seed)
    sess = ort.InferenceSession(model_bytes, sess_options=session_options(2),
                                providers=["CPUExecutionProvider"])
    name = "ecg" if kind == "ecg" else "cxr"

    def score(batch: np.ndarray) -> dict[str, np.ndarray]:
        out = []
        for s in range(0, len(batch), 64):
            out.append(sess.run(["logit"], {name: np.ascontiguousarray(batch[s:s + 64],
                                                                        dtype=np.float32)})[0])
        logit = np.concatenate(out).astype(np.float64)
        f = (lambda v: v) if raw else _sigmoid
        if kind == "ecg":
            return {"p": f(logit[:, 0])}
        return {p: f(logit[:, i]) for p, i in (outputs or {}).items()}
    return score


def randomised_model(model_bytes: bytes, seed: int) -> bytes:
    """The model with every float initializer (size > 1) replaced by Gaussian noise of the
    same mean and standard deviation (numpy default_rng(seed); absolute value where the original
    tensor is non-negative, e.g. batch-norm variances); serialised ONNX bytes."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    rng = np.random.default_rng(seed)
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind != "f" or arr.size <= 1:
            continue
        new = rng.normal(float(arr.mean()), float(arr.std()) or 1e-3, arr.shape)
        if arr.min() >= 0:  # variances, scales: keep them non-negative (no NaN from sqrt)
            new = np.abs(new)
        new = new.astype(arr.dtype)
        init.CopyFrom(numpy_helper.from_array(new, init.name))
    return model.SerializeToString()


# ---------------------------------------------------------------------- maps from a scorer
def ecg_map(score: Scorer, window: np.ndarray) -> tuple[np.ndarray, list[EcgOcclusion], np.ndarray]:
    """Grid occlusion map float32 `[12, 1000]` of one window `[12, 1000]` under `score`
    (batch -> probabilities), with the occlusions and their drops."""
    w = window[None].astype(np.float32)
    occ = ecg_occlusions(1, "grid", SEGMENT_S)
    probs = score(np.concatenate([w, occlude_ecg(w, occ)]))
    drops = probs[0] - probs[1:]
    return ecg_window_maps(drops, occ, 1, "grid")[0], occ, drops


def cxr_map(score: Callable[[np.ndarray], dict[str, np.ndarray]], x: np.ndarray
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """CXR occlusion maps {pathology: float32 [224, 224]} and patch drops of one image."""
    patches = cxr_patches(CXR_GRID)
    probs = score(np.concatenate([x[None], occlude_cxr(x, patches)]))
    maps, drops = {}, {}
    for p, pr in probs.items():
        d = pr[0] - pr[1:]
        m = np.zeros((CXR_SIZE, CXR_SIZE), dtype=np.float32)
        for v, (r0, r1, c0, c1) in zip(d, patches):
            m[r0:r1, c0:c1] = v
        maps[p], drops[p] = m, d
    return maps, drops


# ---------------------------------------------------------------------- curves
def curve(score1: Callable[[np.ndarray], np.ndarray], x: np.ndarray, order: np.ndarray,
          occlude: Callable[[np.ndarray, np.ndarray], np.ndarray], steps: int,
          insertion: bool) -> np.ndarray:
    """Probabilities `[steps + 1]` as the first k of `order` are occluded (deletion) or
    restored into the fully occluded input (insertion), k = 0 .. len(order) in `steps`."""
    ks = np.linspace(0, len(order), steps + 1).round().astype(int)
    batch = []
    for k in ks:
        if insertion:
            batch.append(occlude(x, order[k:]))
        else:
            batch.append(occlude(x, order[:k]))
    return score1(np.stack(batch))


def _ecg_occluder(occ: list[EcgOcclusion]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def f(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        out = x.copy()
        fill = np.median(x, axis=1)
        for i in idx:
            o = occ[int(i)]
            out[list(o.leads), o.start:o.stop] = fill[list(o.leads), None]
        return out
    return f


def _cxr_occluder(x0: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    patches = cxr_patches(CXR_GRID)
    fill = np.float32(x0.mean())

    def f(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        out = x.copy()
        for i in idx:
            r0, r1, c0, c1 = patches[int(i)]
            out[:, r0:r1, c0:c1] = fill
        return out
    return f


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def _area(y: np.ndarray) -> float:
    return float(np.trapezoid(y, dx=1.0 / (len(y) - 1)))


def _record_curves(m: dict[str, list], curves: dict[str, list], prefix: str,
                   score1: Callable[[np.ndarray], np.ndarray], x: np.ndarray, order: np.ndarray,
                   occlude: Callable[[np.ndarray, np.ndarray], np.ndarray], n_units: int, steps: int,
                   rng: np.random.Generator) -> None:
    """Deletion and insertion curves of `x` in the map's `order` and in 3 random orders of
    its `n_units` units (drawn from `rng`, deletion's 3 first); appends the probability,
    the deletion and insertion area gains to `m["<prefix>_prob|_del|_ins"]` and the four
    curves to `curves["<prefix>_del_s|_del_r|_ins_s|_ins_r"]`."""
    ds = curve(score1, x, order, occlude, steps, False)
    ins = curve(score1, x, order, occlude, steps, True)
    dr = np.mean([curve(score1, x, rng.permutation(n_units), occlude, steps, False) for _ in range(3)], 0)
    ir = np.mean([curve(score1, x, rng.permutation(n_units), occlude, steps, True) for _ in range(3)], 0)
    m[f"{prefix}_prob"].append(float(ds[0]))
    m[f"{prefix}_del"].append(_area(dr) - _area(ds))
    m[f"{prefix}_ins"].append(_area(ins) - _area(ir))
    for k, v in ((f"{prefix}_del_s", ds), (f"{prefix}_del_r", dr), (f"{prefix}_ins_s", ins),
                 (f"{prefix}_ins_r", ir)):
        curves[k].append(v)


# ---------------------------------------------------------------------- evaluation
def evaluate(cohort: Path, models: Path | None, n: int, seed: int, steps: int = 10) -> dict:
    """All measures; returns a JSON-ready dict plus arrays for the figures under "_fig"."""
    import pandas as pd

    from engine.bundle import load_bundle, read_verified

    from engine.errors import MissingFileError

    missing = [f for f in ("pairs.csv", "ecg.npy", "cxr.npy") if not (cohort / f).is_file()]
    if missing:
        raise MissingFileError(f"{cohort} is not a cohort directory (missing {', '.join(missing)}); "
                               "build one with `cromotex-train cohort --mimic-root work/phantom "
                               "--out work/cohort --seed 0`")
    bundle = load_bundle(models)
    pairs = pd.read_csv(cohort / "pairs.csv")
    ecg = np.load(cohort / "ecg.npy", mmap_mode="r")
    cxr = np.load(cohort / "cxr.npy", mmap_mode="r")
    rng = np.random.default_rng(seed)
    teacher_file = next(iter(bundle.cxr.values())).file
    outputs = {p: s.output_index for p, s in bundle.cxr.items()}
    cxr_score = session_scorers(read_verified(bundle, teacher_file), "cxr", outputs)
    cxr_logit = session_scorers(read_verified(bundle, teacher_file), "cxr", outputs, raw=True)
    cxr_rand = session_scorers(read_verified(bundle, teacher_file), "cxr", outputs,
                               randomise_seed=seed, raw=True)
    res: dict = {"n_per_label": n, "segment_s": SEGMENT_S, "cxr_grid": CXR_GRID, "steps": steps,
                 "bundle": bundle.bundle_id, "labels": {}}
    fig: dict = {"ecg": {}, "cxr": {}, "curves": {}, "sanity": {}}
    for p in PATHOLOGIES:
        t0 = time.perf_counter()
        pos = pairs[(pairs["split"] == "test") & (pairs[p] == 1)]
        idx = np.sort(rng.choice(pos["index"].to_numpy(), size=min(n, len(pos)), replace=False))
        model_bytes = read_verified(bundle, bundle.ecg[p].file)
        s_ecg = session_scorers(model_bytes, "ecg")
        s_logit = session_scorers(model_bytes, "ecg", raw=True)
        s_rand = session_scorers(model_bytes, "ecg", randomise_seed=seed, raw=True)
        e1 = lambda b, s=s_ecg: s(b)["p"]  # noqa: E731
        l1 = lambda b, s=s_logit: s(b)["p"]  # noqa: E731
        e0 = lambda b, s=s_rand: s(b)["p"]  # noqa: E731
        m = {"ecg_hits": [], "ecg_del": [], "ecg_ins": [], "ecg_sanity": [], "ecg_prob": [],
             "cxr_hits": [], "cxr_del": [], "cxr_ins": [], "cxr_sanity": [], "cxr_prob": []}
        curves = {k: [] for k in ("ecg_del_s", "ecg_del_r", "ecg_ins_s", "ecg_ins_r",
                                  "cxr_del_s", "cxr_del_r", "cxr_ins_s", "cxr_ins_r")}
        mask = region_mask(p)
        for j, i in enumerate(idx):
            w = np.asarray(ecg[i], dtype=np.float32)
            emap, occ, drops = ecg_map(e1, w)
            lmap, _, _ = ecg_map(l1, w)
            rmap, _, _ = ecg_map(e0, w)
            lead_scores = np.maximum(emap, 0).sum(axis=1)
            m["ecg_hits"].append(LEADS[int(np.argmax(lead_scores))] in LATERAL_LEADS
                                 and lead_scores.max() > 0)
            m["ecg_sanity"].append(_spearman(lmap, rmap))
            order = np.argsort(-drops, kind="stable")
            occl = _ecg_occluder(occ)
            _record_curves(m, curves, "ecg", e1, w, order, occl, len(occ), steps, rng)

            x = np.asarray(cxr[i], dtype=np.float32)
            cmaps, cdrops = cxr_map(cxr_score, x)
            lmaps, _ = cxr_map(cxr_logit, x)
            rmaps, _ = cxr_map(cxr_rand, x)
            cm = cmaps[p]
            m["cxr_hits"].append(bool(mask.flat[int(np.argmax(cm))] and cm.max() > 0))
            m["cxr_sanity"].append(_spearman(lmaps[p], rmaps[p]))
            c1 = lambda b, q=p: cxr_score(b)[q]  # noqa: E731
            corder = np.argsort(-cdrops[p], kind="stable")
            cocc = _cxr_occluder(x)
            _record_curves(m, curves, "cxr", c1, x, corder, cocc, len(corder), steps, rng)
            if j == 0:
                fig["ecg"][p] = (w, emap)
                fig["cxr"][p] = (x[0], cm, mask)
                fig["sanity"][p] = (w, lmap, rmap, x[0], lmaps[p], rmaps[p])
        fig["curves"][p] = {k: np.mean(v, 0) for k, v in curves.items()}
        summary = {}
        for k, v in m.items():
            arr = np.asarray(v, dtype=np.float64)
            summary[k] = {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}
        summary["ecg_hits"]["chance"] = len(LATERAL_LEADS) / len(LEADS)
        summary["cxr_hits"]["chance"] = float(mask.mean())
        summary["n"] = int(len(idx))
        summary["seconds"] = time.perf_counter() - t0
        res["labels"][p] = summary
        log.info("%s: %s", p, {k: round(v["mean"], 3) for k, v in summary.items() if isinstance(v, dict)})
    res["_fig"] = fig
    return res


# ---------------------------------------------------------------------- report
def _heat(values: np.ndarray) -> np.ndarray:
    v = np.maximum(values, 0)
    return v / v.max() if v.max() > 0 else v


def figures(res: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = res["_fig"]
    f, axes = plt.subplots(1, 3, figsize=(15, 8), sharey=True)
    for ax, p in zip(axes, PATHOLOGIES):
        w, emap = fig["ecg"][p]
        heat = _heat(emap)
        t = np.arange(w.shape[1]) / 100
        for k in range(12):
            off = -2.5 * k
            ax.imshow(heat[k:k + 1], aspect="auto", cmap="Reds", vmin=0, vmax=1,
                      extent=(0, 10, off - 1.2, off + 1.2), alpha=0.8)
            ax.plot(t, w[k] + off, color="k", lw=0.5)
            ax.text(-0.2, off, LEADS[k], ha="right", va="center", fontsize=8,
                    color="C3" if LEADS[k] in LATERAL_LEADS and p == "cardiomegaly" else "k")
        ax.set_ylim(-2.5 * 11 - 1.5, 1.5)
        ax.set_xlim(-0.9, 10)
        ax.set_yticks([])
        ax.set_xlabel("s")
        ax.set_title(f"{PATHOLOGY_NAMES[p]} (ECG model, max drop {emap.max():.3g})", fontsize=10)
    f.suptitle("ECG occlusion maps (12 leads x 2 s, lead median), first test positive per label; "
               "red = probability drop when occluded", fontsize=10)
    f.tight_layout()
    f.savefig(out / "ecg_examples.png", dpi=90)
    plt.close(f)

    f, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    for ax, p in zip(axes, PATHOLOGIES):
        img, cm, mask = fig["cxr"][p]
        ax.imshow(img, cmap="gray")
        ax.imshow(_heat(cm), cmap="jet", alpha=0.35, vmin=0, vmax=1)
        ax.contour(mask, levels=[0.5], colors="lime", linewidths=1)
        r, c = np.unravel_index(int(np.argmax(cm)), cm.shape)
        ax.plot(c, r, "w+", ms=12, mew=2)
        ax.set_title(f"{PATHOLOGY_NAMES[p]} (teacher, max drop {cm.max():.3g})", fontsize=9)
        ax.axis("off")
    f.suptitle("CXR occlusion maps (7 x 7 patches); green = true region of the phantom's sign, "
               "+ = map maximum", fontsize=9)
    f.tight_layout()
    f.savefig(out / "cxr_examples.png", dpi=90)
    plt.close(f)

    f, axes = plt.subplots(2, 3, figsize=(13, 7))
    for col, p in enumerate(PATHOLOGIES):
        c = fig["curves"][p]
        for row, mod in enumerate(("ecg", "cxr")):
            ax = axes[row, col]
            x = np.linspace(0, 1, len(c[f"{mod}_del_s"]))
            ax.plot(x, c[f"{mod}_del_s"], "C3-", label="deletion, map order")
            ax.plot(x, c[f"{mod}_del_r"], "C3--", label="deletion, random")
            ax.plot(x, c[f"{mod}_ins_s"], "C0-", label="insertion, map order")
            ax.plot(x, c[f"{mod}_ins_r"], "C0--", label="insertion, random")
            ax.set_title(f"{mod.upper()} {PATHOLOGY_NAMES[p]}", fontsize=9)
            ax.set_xlabel("fraction of patches occluded / restored")
            ax.set_ylabel("probability")
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
    f.tight_layout()
    f.savefig(out / "deletion_insertion.png", dpi=90)
    plt.close(f)

    f, axes = plt.subplots(2, 3, figsize=(13, 6))
    p = "cardiomegaly"
    w, emap, rmap, img, cm, rcm = fig["sanity"][p]
    for ax, mp, title in ((axes[0, 0], emap, "ECG logit map, trained"),
                          (axes[0, 1], rmap, "ECG logit map, randomised")):
        ax.imshow(_heat(mp), aspect="auto", cmap="Reds", vmin=0, vmax=1)
        ax.set_yticks(range(12), LEADS, fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0, 2].axis("off")
    for ax, mp, title in ((axes[1, 0], cm, "CXR logit map, trained"),
                          (axes[1, 1], rcm, "CXR logit map, randomised")):
        ax.imshow(img, cmap="gray")
        ax.imshow(_heat(mp), cmap="jet", alpha=0.35, vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    axes[1, 2].axis("off")
    f.suptitle("Model randomisation check (Adebayo et al.), cardiomegaly, first test positive", fontsize=10)
    f.tight_layout()
    f.savefig(out / "sanity.png", dpi=90)
    plt.close(f)


def table(res: dict) -> str:
    def ms(d: dict, k: str) -> str:
        return f"{d[k]['mean']:.3f} ± {d[k]['sd']:.3f}"
    lines = [f"Bundle `{res['bundle']}`, phantom test split, positives, n = {res['n_per_label']} per "
             f"label; ECG grid 12 leads x {res['segment_s']:g} s; CXR {res['cxr_grid']} x "
             f"{res['cxr_grid']} patches; curves with {res['steps']} steps, random = mean of 3 orders.",
             "",
             "| finding | modality | mean p | pointing game (chance) | deletion gain | insertion gain "
             "| Spearman vs randomised model |",
             "|---|---|---|---|---|---|---|"]
    for p, d in res["labels"].items():
        ep = (f"{d['ecg_hits']['mean']:.2f} ({d['ecg_hits']['chance']:.2f}), lateral leads"
              if p == "cardiomegaly" else "n/a (sign in every lead)")
        lines.append(f"| {PATHOLOGY_NAMES[p]} | ECG | {d['ecg_prob']['mean']:.3f} | {ep} | "
                     f"{ms(d, 'ecg_del')} | {ms(d, 'ecg_ins')} | {ms(d, 'ecg_sanity')} |")
        lines.append(f"| {PATHOLOGY_NAMES[p]} | CXR | {d['cxr_prob']['mean']:.3f} | "
                     f"{d['cxr_hits']['mean']:.2f} ({d['cxr_hits']['chance']:.2f}) | "
                     f"{ms(d, 'cxr_del')} | {ms(d, 'cxr_ins')} | {ms(d, 'cxr_sanity')} |")
    lines += ["", "Deletion gain = area under the random-order deletion curve minus the map-order one; "
              "insertion gain = map-order minus random-order insertion area (probability x fraction; "
              "> 0: the map ranks the patches better than chance). Spearman: rank correlation of the "
              "logit-drop map of the trained model with that of the same model with randomised weights "
              "(low = the map depends on what the model learned)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cromotex-train explain-eval", description=__doc__.split("\n")[0])
    ap.add_argument("--cohort", type=Path, required=True, help="COHORT directory (pairs.csv, ecg.npy, cxr.npy)")
    ap.add_argument("--models", type=Path, default=None, help="bundle directory (default: shipped)")
    ap.add_argument("--out", type=Path, default=Path("docs/results/explain"))
    ap.add_argument("--n", type=int, default=12, help="test positives per label")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = evaluate(args.cohort, args.models, args.n, args.seed)
    figures(res, args.out)
    res.pop("_fig")
    res["seconds"] = time.perf_counter() - t0
    (args.out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "results.md").write_text("# Occlusion maps on the phantom\n\n" + table(res) + "\n")
    log.info("wrote %s in %.0f s", args.out, res["seconds"])
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
