"""`cromotex-train ablation`: the paper's Table 1 and Table 2 on a cohort, over several seeds.

Table 1 rows (METHOD.md): direct ECG classification (fine-tuning from scratch);
SupCon alignment; CroMoTEX without SSL, without AHNP (SupCMA), without both;
full CroMoTEX (AHNP-SupCMA, topk, from the SSL encoder); direct CXR
classification (the teacher). Table 2: the AHNP weighting topk / linear / exp.
Table 3 row `beta_equation`: full CroMoTEX with `align.beta_mode=equation` (Eq. 3
as printed, under which beta has no effect on gradients; the default `log_weight`
weights the within-sample term by 1 + beta).
Control row `ssl_finetune` (not in the paper): the SSL encoder fine-tuned without
alignment, which separates what SSL and what alignment add over direct ECG
classification (the paper's direct row starts from scratch).

The teacher (with its cached features) and the SSL encoder are trained once
(seed of the config) and shared by every row and seed, exactly as in `build`,
whose work directory can be passed as `--work` to reuse them (and the build's own
align/finetune runs as the full-CroMoTEX row of the build's seed). Each seed re-runs
alignment and fine-tuning. Every run is resumable (stage markers, as in `build`).

Per row and pathology: test AUROC / AUPRC / F1 of every seed (threshold chosen on
validation, bootstrap 95% CI), mean ± s.d. across seeds; the difference
full CroMoTEX - direct ECG in mean AUROC with a paired bootstrap 95% CI over test
pairs. Writes OUT/ablation.md, OUT/ablation.json, OUT/roc_<p>.png (every row,
first seed) and OUT/embedding_<p>_<row>.png (full CroMoTEX and direct ECG).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.constants import PATHOLOGIES
from training import config as config_mod
from training.build import (StageRunner, resolve_configs, teacher_dir_of, train_pathology, train_shared,
                            write_json)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One ablation row: how the ECG encoder is obtained before fine-tuning."""

    name: str
    label: str
    align: bool = True
    ssl: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)
    table: int = 1


ROWS: dict[str, Row] = {r.name: r for r in [
    Row("direct_ecg", "Direct ECG classification", align=False, ssl=False),
    Row("ssl_finetune", "SSL + fine-tuning, no alignment (control; not in the paper)", align=False),
    Row("supcon", "SupCon alignment", overrides={"align.loss": "supcon"}),
    Row("no_ssl", "CroMoTEX w/o SSL", ssl=False),
    Row("no_ahnp", "CroMoTEX w/o AHNP (SupCMA)", overrides={"align.loss": "supcma"}),
    Row("no_both", "CroMoTEX w/o SSL and AHNP", ssl=False, overrides={"align.loss": "supcma"}),
    Row("cromotex", "CroMoTEX (full, topk)", overrides={"align.loss": "ahnp_supcma", "align.weighting": "topk"}),
    Row("direct_cxr", "Direct CXR classification (teacher)", align=False),
    Row("linear", "CroMoTEX, linear weighting", overrides={"align.weighting": "linear"}, table=2),
    Row("exp", "CroMoTEX, exp weighting", overrides={"align.weighting": "exp"}, table=2),
    Row("beta_equation", "CroMoTEX, beta_mode=equation (Eq. 3 as printed: beta changes no gradient)",
        overrides={"align.beta_mode": "equation"}, table=3),
]}
DEFAULT_ROWS = ("direct_ecg", "ssl_finetune", "supcon", "no_ssl", "no_ahnp", "no_both", "cromotex", "direct_cxr",
                "linear", "exp", "beta_equation")


def run_row(runner: StageRunner, row: Row, base: dict[str, Any], preset: str, cohort: Path, seed: int,
            build_seed: int, pathology: str, train: bool = True) -> Path | None:
    """Train (or reuse) one row for one seed and pathology; returns its predictions .npz path.

    `train=False`: only look for a finished run; None when there is none."""
    if row.name == "direct_cxr":
        cfg = config_mod.resolve(preset, {**base, "pathology": pathology})
        path = runner.work / teacher_dir_of(cfg) / f"predictions_{pathology}.npz"
        return path if train or path.is_file() else None
    cfg = config_mod.resolve(preset, {**base, **row.overrides, "pathology": pathology, "seed": seed})
    if row.name == "cromotex" and seed == build_seed and _same_config(runner.work / f"finetune_{pathology}", cfg):
        return runner.work / f"finetune_{pathology}" / "predictions.npz"  # the build's own run
    prefix = f"ablation/seed{seed}/{row.name}/"
    if not train:
        return runner.work / f"{prefix}finetune_{pathology}" / "predictions.npz" \
            if runner.done(f"{prefix}finetune_{pathology}") else None
    (runner.work / prefix).mkdir(parents=True, exist_ok=True)
    f_dir = train_pathology(runner, cfg, cohort, prefix=prefix, init="ssl" if row.ssl else None,
                            align_stage=row.align)
    return f_dir / "predictions.npz"


def _same_config(stage_dir: Path, cfg) -> bool:
    """True when `stage_dir` is a finished run whose saved config equals `cfg` (progress aside)."""
    saved = stage_dir / "config.json"
    if not (stage_dir.with_name(stage_dir.name + ".done").is_file() and saved.is_file()):
        return False
    a, b = json.loads(saved.read_text()), json.loads(json.dumps(config_mod.to_dict(cfg)))
    a.pop("progress", None)
    b.pop("progress", None)
    return a == b


def paired_difference(a: list[dict], b: list[dict], n_boot: int, seed: int) -> list[float]:
    """[value, lo95, hi95] of mean-over-seeds test AUROC of runs `a` minus that of runs `b`, with a paired
    percentile bootstrap over test pairs (the same resampled pairs for every run of both rows)."""
    from training.metrics import auroc
    y = np.asarray(a[0]["test_label"]).astype(int)
    for r in a + b:
        if not np.array_equal(np.asarray(r["test_label"]).astype(int), y):
            raise ValueError("runs to compare were evaluated on different test pairs")

    def diff(i: np.ndarray) -> float:
        return float(np.mean([auroc(y[i], r["test_logit"][i]) for r in a])
                     - np.mean([auroc(y[i], r["test_logit"][i]) for r in b]))

    value = diff(np.arange(len(y)))
    rng = np.random.default_rng(seed)
    stats = np.array([diff(rng.integers(0, len(y), len(y))) for _ in range(n_boot)])
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return [value, float("nan"), float("nan")]
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return [value, float(lo), float(hi)]


def _fmt(cell: dict | None, key: str, seeds: int) -> str:
    """`mean ± sd` of one row x pathology cell; "(n=K)" when fewer seeds ran than asked."""
    if not cell or not cell["runs"]:
        return "not run"
    a = cell["aggregate"][key]
    if len(a["values"]) == 1:
        return f"{a['mean']:.3f}" + ("" if seeds == 1 else " (n=1)")
    return f"{a['mean']:.3f} ± {a['sd']:.3f}" + ("" if len(a["values"]) >= seeds else f" (n={len(a['values'])})")


def markdown(result: dict) -> str:
    """Table 1, Table 2 (and 3 when run) as Markdown: AUROC (and AUPRC) mean ± s.d. over seeds."""
    paths = result["pathologies"]
    out = ["# Ablation on the phantom (synthetic data; not clinical performance)", "",
           result["description"], ""]
    for table, title in ((1, "Table 1: method components (test AUROC, mean ± s.d. over seeds)"),
                         (2, "Table 2: AHNP weighting (test AUROC, mean ± s.d. over seeds)"),
                         (3, "beta_mode (test AUROC, mean ± s.d. over seeds)")):
        names = [n for n in result["rows"] if ROWS[n].table == table or (table == 2 and n == "cromotex")]
        if not names or (table > 1 and len(names) == 1 and names[0] == "cromotex"):
            continue
        out += [f"## {title}", "", "| row | " + " | ".join(paths) + " |", "|---|" + "---|" * len(paths)]
        for n in names:
            r, k = result["rows"][n], (1 if n == "direct_cxr" else len(result["seeds"]))
            out.append(f"| {ROWS[n].label} | " + " | ".join(_fmt(r.get(p), "auroc", k) for p in paths) + " |")
        out.append("")
    out += ["## AUPRC (mean ± s.d. over seeds)", "", "| row | " + " | ".join(paths) + " |",
            "|---|" + "---|" * len(paths)]
    for n, r in result["rows"].items():
        k = 1 if n == "direct_cxr" else len(result["seeds"])
        out.append(f"| {ROWS[n].label} | " + " | ".join(_fmt(r.get(p), "auprc", k) for p in paths) + " |")
    if result.get("not_run"):
        out += ["", f"Runs not finished when the tables were written ({len(result['not_run'])}): "
                + ", ".join(result["not_run"]) + "."]
    for key, title in (("difference", "Full CroMoTEX minus direct ECG classification"),
                       ("difference_vs_ssl_finetune", "Full CroMoTEX minus SSL + fine-tuning (what alignment adds)")):
        if not result.get(key):
            continue
        out += ["", f"## {title} (mean test AUROC over seeds)", "",
                f"Paired bootstrap 95% CI over test pairs ({result['n_boot']} resamples) of the difference of "
                "seed-averaged AUROCs: it reflects test-set sampling, not training variability (see the s.d. "
                "over seeds above).", "",
                "| pathology | difference [95% CI] |", "|---|---|"]
        for p, d in result[key].items():
            out.append(f"| {p} | {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] |")
    out += ["", "Per-seed values with bootstrap CIs: ablation.json."]
    return "\n".join(out) + "\n"


def plots(out: Path, preds: dict[str, dict[str, list[dict]]], pathologies: tuple[str, ...]) -> None:
    """ROC curves of every row (first seed) and embedding plots of full CroMoTEX vs direct ECG."""
    from training.evaluate import plot_embedding, plot_roc
    for p in pathologies:
        names = [n for n in preds if preds[n].get(p)]
        plot_roc([preds[n][p][0] for n in names], [ROWS[n].label for n in names], out / f"roc_{p}.png",
                 f"{p}: test ROC (first seed)")
        for n in ("cromotex", "direct_ecg"):
            if n in preds and preds[n].get(p) and "test_embedding" in preds[n][p][0]:
                plot_embedding(preds[n][p][0]["test_embedding"], preds[n][p][0]["test_label"],
                               out / f"embedding_{p}_{n}.png", f"{p}: {ROWS[n].label}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cromotex-train ablation", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", choices=config_mod.PRESETS)
    p.add_argument("--cohort", required=True, type=Path, help="COHORT directory")
    p.add_argument("--work", type=Path, default=Path("work/build"),
                   help="work directory (a build's: its teacher, SSL encoder and full runs are reused)")
    p.add_argument("--out", type=Path, default=Path("docs/results/ablation"), help="tables and plots")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of align + finetune")
    p.add_argument("--pathologies", nargs="+", default=list(PATHOLOGIES), choices=PATHOLOGIES)
    p.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), choices=list(ROWS),
                   help=f"rows to run (default: {' '.join(DEFAULT_ROWS)})")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--note", default="", help="text put under the title (e.g. how the run was reduced)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--only-finished", action="store_true",
                   help="train nothing: tabulate the runs already finished in WORK and list the others "
                        "as not run (e.g. to write the tables while other runs are still going)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train ablation --cohort C --work WORK --out docs/results/ablation [--seeds 0 1 2] ...`"""
    from training.evaluate import aggregate, evaluate_one, load_predictions
    from training.stages.common import configure_logging
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    configure_logging()
    base: dict[str, Any] = config_mod.parse_overrides(args.set)
    if args.no_progress:
        base["progress"] = False
    pathologies = tuple(args.pathologies)
    cfgs = resolve_configs(args.preset, base, pathologies)
    build_seed = next(iter(cfgs.values())).seed
    args.work.mkdir(parents=True, exist_ok=True)
    runner = StageRunner(args.work)
    if not args.only_finished:
        train_shared(runner, cfgs, args.cohort)
    preds: dict[str, dict[str, list[dict]]] = {}
    result: dict[str, Any] = {"pathologies": list(pathologies), "seeds": args.seeds, "preset": args.preset,
                              "overrides": base, "command": "cromotex-train ablation " + " ".join(argv),
                              "rows": {}, "n_boot": args.n_boot, "not_run": []}
    for name in args.rows:
        row = ROWS[name]
        seeds = [build_seed] if name == "direct_cxr" else args.seeds
        preds[name], result["rows"][name] = {}, {"label": row.label, "overrides": row.overrides}
        for p in pathologies:
            runs, loaded = [], []
            for s in seeds:
                path = run_row(runner, row, base, args.preset, args.cohort, s, build_seed, p,
                               train=not args.only_finished)
                if path is None:
                    result["not_run"].append(f"{name}/{p}/seed{s}")
                    continue
                pr = load_predictions(path)
                r = evaluate_one(pr, n_boot=args.n_boot, seed=0)
                r["seed"] = s
                runs.append(r)
                loaded.append(pr)
            preds[name][p] = loaded
            result["rows"][name][p] = {"runs": runs, "aggregate": aggregate(runs) if runs else None}
    for key, other in (("difference", "direct_ecg"), ("difference_vs_ssl_finetune", "ssl_finetune")):
        if "cromotex" in preds and other in preds:
            result[key] = {p: paired_difference(preds["cromotex"][p], preds[other][p], args.n_boot, 0)
                           for p in pathologies if preds["cromotex"][p] and preds[other][p]}
    result["description"] = (
        f"Preset `{args.preset}` with overrides {base or '{}'}; seeds {args.seeds} (alignment and fine-tuning "
        "re-run per seed; one teacher and one SSL encoder shared by all rows and seeds; direct CXR = that "
        "teacher, one run). Test split of the cohort; threshold for F1 chosen on validation. "
        + (args.note or ""))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "ablation.json", result)
    (args.out / "ablation.md").write_text(markdown(result), encoding="utf-8")
    plots(args.out, preds, pathologies)
    sys.stdout.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
