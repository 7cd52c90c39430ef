"""MODEL_CARD.md of a bundle, written by `cromotex-train build` from the manifest it just assembled.

The first line of a demo bundle's card says that the models are demonstration models
trained on synthetic data and must not be used for diagnosis.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

FIRST_LINE_DEMO = ("**DEMONSTRATION MODELS TRAINED ON SYNTHETIC (PHANTOM) DATA - NOT FOR DIAGNOSIS. "
                   "They must not be used for diagnosis, triage or any clinical decision.**")
FIRST_LINE_SITE = "**CroMoTEX models trained by a site on its own data; see 'Data' for provenance.**"

#: Known failure modes of these models (and of the method on the phantom).
FAILURE_MODES = [
    "Phantom, not patients: the ECG signs of heart size, congestion and effusion are modelled (VCG dipole "
    "amplitude, axis, low voltage, rate, AF) and far simpler than real physiology. Real ECGs (e.g. the "
    "PTB-XL and MIMIC samples in tests/data) are outside the training distribution: their probabilities "
    "mean nothing, and the out-of-distribution flag may or may not fire on them.",
    "Small cohort: test AUROC confidence intervals are wide (see the CIs); differences of a few hundredths "
    "between models are not meaningful.",
    "Short CPU schedule: every stage ran far fewer steps than the paper; the models are under-trained "
    "compared with a GPU build with the `paper` preset.",
    "The teacher is trained from scratch on schematic phantom radiographs (no TorchXRayVision weights "
    "can be downloaded here); on real radiographs its outputs are meaningless.",
    "Records shorter than 10 s are edge-padded by the engine (flagged); leads missing from a record are "
    "zero (flagged); both degrade the outputs.",
    "The OOD flag uses the Mahalanobis distance of the pooled 256-d embedding; it catches inputs unlike "
    "the training ECGs (noise, flat lines, very different recordings), not label shift or subtle drift. On "
    "these short-trained demo models it is weak: the embeddings of the under-trained encoders separate "
    "white noise from phantom ECGs only modestly (see the table: how many white-noise ECGs it flags, and "
    "which share of phantom validation/test pairs it flags), and a real ECG (PTB-XL sample) lies well "
    "inside the training cloud although it is nothing like the phantom.",
    "Thresholds maximise F1 on the phantom validation split; they are not clinically calibrated operating "
    "points, and prevalence on real data differs.",
]


def _ci(v: list) -> str:
    if v is None or v[0] is None:
        return "n/a"
    lo, hi = v[1], v[2]
    if lo is None or hi is None:
        return f"{v[0]:.3f}"
    return f"{v[0]:.3f} [{lo:.3f}, {hi:.3f}]"


def _metrics_table(manifest: dict) -> list[str]:
    rows = ["| pathology | model | test AUROC [95% CI] | AUPRC [95% CI] | F1 [95% CI] | threshold | test n (pos.) |",
            "|---|---|---|---|---|---|---|"]
    for p, entry in manifest["pathologies"].items():
        for mod, name in (("ecg", "ECG (CroMoTEX)"), ("cxr", "CXR teacher")):
            if mod not in entry:
                continue
            m = entry[mod]["metrics"]
            rows.append(f"| {p} | {name}, {m['model']} | {_ci(m['test']['auroc'])} | {_ci(m['test']['auprc'])} | "
                        f"{_ci(m['test']['f1'])} | {entry[mod]['threshold']:.3f} | {m['n_test']} "
                        f"({m['n_test_positive']}) |")
    return rows


def _choices_table(training: dict) -> list[str]:
    rows = ["| config key | value | paper | why |", "|---|---|---|---|"]
    from training import config as config_mod
    paper = config_mod.to_dict(config_mod.resolve("paper"))

    def get(d: dict, key: str) -> Any:
        for part in key.split("."):
            d = d[part]
        return d

    for key, v in training.get("cpu_differences", {}).items():
        rows.append(f"| `{key}` | {v['value']} | {get(paper, key)} | {v['why']} |")
    for key, value in training.get("overrides", {}).items():
        if key in ("pathology",):
            continue
        try:
            base = get(paper, key)
        except (KeyError, TypeError):
            base = "?"
        rows.append(f"| `{key}` | {value} | {base} | set on the build command line (`--set`/option) |")
    return rows


def signature_section(public_key: Any) -> list[str]:
    """The card's "Signature" section: whose Ed25519 key signs the bundle (`public_key`, an
    `Ed25519PublicKey`) and how a site makes workstations trust its own key."""
    from engine.signing import fingerprint, key_id
    from engine.trust import PROJECT_KEYS, TRUST_FOLDER, load_trust
    kid = key_id(public_key)
    project = load_trust(site=False).keys.get(kid)
    whose = (f"the {project.label} key, shipped inside the application" if project is not None
             and project.label in PROJECT_KEYS else "a site key (not the CroMoTEX project key)")
    return [
        "## Signature", "",
        f"`manifest.json` (which holds the sha256 of every other file, the thresholds, OOD cut-offs, "
        f"disclaimer and metadata) is signed with Ed25519 by {whose}: key id `{kid}`, SHA-256 "
        f"fingerprint of the raw public key `{fingerprint(public_key)}`. The signature is "
        "`manifest.json.sig`. The app and `cromotex predict` refuse a bundle that is unsigned, whose "
        "signature does not match its manifest, or that is signed by a key not in their trust list; "
        "they check every file against the signed sha256 and every ONNX model's metadata against the "
        "signed manifest.", "",
        "A site that trains its own bundle signs it with its own key and adds the public key to the "
        "trust list of its workstations:", "", "```",
        "cromotex-train keygen --out /secure/keys --name my-site     # private key: mode 600, never share or commit",
        "cromotex-train build ... --signing-key /secure/keys/my-site-ed25519.pem",
        "cromotex-train sign-bundle models/mimic --key /secure/keys/my-site-ed25519.pem   # re-sign after a change",
        f"cp /secure/keys/my-site-ed25519.pub <settings folder>/{TRUST_FOLDER}/   # app and CLI",
        "```", "",
        f"The settings folder is the app's (`settings.json` there may also list key files under "
        f"`\"trusted_keys\"`; `CROMOTEX_REVIEW_CONFIG_DIR` overrides it); `cromotex predict "
        "--trusted-key KEY.pub` and `CROMOTEX_TRUSTED_KEYS` add keys for one run.", ""]


#: What the saliency maps (engine.explain; app "Explain"; `cromotex predict --explain`) mean.
SALIENCY_SECTION: list[str] = [
    "## Saliency maps: what they mean and what they do not", "",
    "The app's *Explain* maps and `cromotex predict --explain` are **occlusion** maps computed with "
    "the fp32 models of this bundle (engine/explain.py): a value is the drop in the model's probability "
    "when that part of the input is replaced by a neutral value (ECG: the lead's median over one lead x "
    "one 1 s segment, or, in the app's fast *separable* mode, sqrt(lead drop x segment drop); chest "
    "X-ray: one of 7 x 7 patches of the model's centre square replaced by the image mean). Red = the "
    "model's probability fell when that part was hidden.",
    "",
    "- They describe **this model's sensitivity**, not where disease is. A red band is not a finding "
    "and a blank band is not normal.",
    "- On the phantom (docs/results/explain/, `cromotex-train explain-eval`): the teacher's "
    "cardiomegaly maps point into the heart silhouette (pointing game 0.83, chance 0.15), but its "
    "edema and effusion maps do not point at the perihilar zones (0.00, chance 0.22) or the "
    "costophrenic bases (0.08, chance 0.21); the ECG models' maps are no better than chance at "
    "the lateral leads for cardiomegaly (0.33, chance 0.33). Deletion / insertion curves beat "
    "random order for every finding, so the maps do rank what moves the probability, but the ECG "
    "models are insensitive to any single lead or second (largest drops ~0.001-0.01).",
    "- Maps change when the weights are randomised (Spearman of trained vs randomised maps "
    "-0.13 to 0.10), so they reflect the model, not just the input's edges.",
    "- Occlusion values depend on the replacement value: for the phantom demo teacher, a uniform grey "
    "image scores edema 0.35 and effusion 0.68, so a region can matter because hiding it looks like "
    "disease. The maps are coarse (1 s x 1 lead; 32 px patches).",
    "- A map of a prediction flagged out of distribution or with signal-quality problems is not "
    "shown as valid (\"not assessable\").",
    "",
]


def saliency_section(demo: bool) -> list[str]:
    """SALIENCY_SECTION; for a non-demo bundle the phantom's figures are replaced by the
    command that measures them on the site's own cohort."""
    if demo:
        return list(SALIENCY_SECTION)
    keep = [line for line in SALIENCY_SECTION
            if not line.startswith(("- On the phantom", "- Maps change when"))]
    i = len(keep) - 2  # before the "not assessable" bullet and the blank line
    keep.insert(i, "- Measure what they show for these models before relying on them: "
                   "`cromotex-train explain-eval --cohort COHORT --models BUNDLE` (pointing game on known "
                   "regions, deletion / insertion, model randomisation).")
    return keep


def model_card(manifest: dict, ev: dict, cases: list, args: argparse.Namespace) -> str:
    """The card's Markdown text."""
    t = manifest["training"]
    demo = manifest["demo"]
    cfg0 = next(iter(t["config"].values()))
    ph = t.get("phantom", {})
    cohort = t["cohort"]
    counts = cohort.get("counts") or {}
    splits = cohort.get("splits") or {}
    lines = [FIRST_LINE_DEMO if demo else FIRST_LINE_SITE, "",
             f"# Model card: {manifest['bundle_id']}", "",
             f"Created {manifest['created_utc']} by `{t['command']}` (code {manifest['code_version']}). "
             f"Data provenance: **{manifest['data']}**" + (" (synthetic)." if manifest["data"] == "phantom" else "."),
             "",
             "## What these models are", "",
             "Per pathology (cardiomegaly, edema, pleural effusion) one ECG model: the CroMoTEX ECG encoder "
             "(conv patch embedding, 196 tokens, 4 Transformer blocks, 8 heads, width 256, feed-forward "
             f"width {cfg0['ecg']['ff_dim']}) and a {cfg0['ecg']['classifier_layers']}-layer MLP classifier, "
             "trained in four stages (METHOD.md): (1) a DenseNet-121 chest X-ray teacher, (2) SimCLR "
             "pretraining of the ECG encoder with VCG augmentations (one encoder shared by the three "
             "pathologies), (3) cross-modal alignment of the ECG encoder to the frozen teacher's features "
             f"with AHNP-SupCMA ({cfg0['align']['weighting']} weighting, tau {cfg0['align']['tau']}, "
             f"alpha {cfg0['align']['alpha']}, beta {cfg0['align']['beta']}, k {cfg0['align']['k']}), "
             "(4) fine-tuning of encoder + classifier with BCE. The CXR teacher (`cxr_teacher.onnx`, "
             f"{'one multi-label model' if cfg0['teacher']['multi_label'] else 'single-label'}) is shipped "
             "too, for display beside the ECG result. Inputs and preprocessing: `manifest.json` "
             "`preprocessing` (12 leads, 100 Hz, 10 s windows, each lead scaled to [-1, 1]; CXR 224 x 224 "
             "in [-1024, 1024]).", "",
             "Intended use: demonstrating the CroMoTEX Review application and its pipeline. "
             + ("Not a medical device; not validated on any patient data." if demo else
                "Validate on your own data before any use."), ""]
    lines += ["## Data", ""]
    if manifest["data"] == "phantom":
        lines += [f"Synthetic phantom (`cromotex-train phantom --subjects {ph.get('subjects', '?')} --seed "
                  f"{ph.get('seed', '?')}`, generator version {ph.get('version', '?')}; docs/phantom.md): "
                  "patients, ED stays, 12-lead ECGs and chest radiographs drawn from a latent heart-failure "
                  "state, written in the MIMIC-IV-ECG / MIMIC-CXR-JPG / MIMIC-IV-ED layout and linked exactly as "
                  "the paper links MIMIC (`cromotex-train cohort`, docs/cohort.md)."]
    lines += ["", f"Cohort (split seed {cohort.get('seed')}, link `{(cohort.get('link') or {}).get('name')}`): "
              f"{counts.get('pairs_written', '?')} ECG-CXR pairs of {counts.get('pair_subjects', '?')} subjects, "
              f"{counts.get('ssl_written', '?')} ECGs in the SSL pool (no test subject).", "",
              "| split | subjects | pairs | cardiomegaly | edema | pleural effusion |", "|---|---|---|---|---|---|"]
    for s in ("train", "val", "test"):
        sp = splits.get(s) or {}
        pos = sp.get("positives") or {}
        lines.append(f"| {s} | {sp.get('subjects', '?')} | {sp.get('pairs', '?')} | {pos.get('cardiomegaly', '?')} | "
                     f"{pos.get('edema', '?')} | {pos.get('pleural_effusion', '?')} |")
    lines += ["", "## Test metrics (phantom test split; not clinical performance)", "",
              "Threshold: the probability maximising F1 on the validation split, applied to the test split. "
              "95% CIs: percentile bootstrap over test pairs (1000 resamples, seed 0). ECG metrics are those "
              "of the model the app uses by default "
              + ("(the int8 copy)." if t["int8"]["shipped"] else "(fp32)."), ""]
    lines += _metrics_table(manifest)
    lines += ["", "## Training choices (CPU preset)", "",
              f"Preset `{t['preset']}`: the `paper` preset (every hyper-parameter of METHOD.md) changed only "
              "where the 2-core CPU and the 60 MB bundle budget force it (`training/config.py` "
              "`CPU_DIFFERENCES`):", ""]
    lines += _choices_table(t)
    lines += ["", f"AHNP beta: `align.beta_mode = {cfg0['align'].get('beta_mode', 'equation')}`. With "
              "`log_weight` (the default since issue 18) the within-sample positive term is weighted by "
              "(1 + beta) against the other same-label terms, as the authors' code does and Table 3 intends. "
              "Under Eq. 3 as printed (`equation`), beta sits inside the log and only adds a constant: the "
              "gradient is identical for every beta (measured for 0, 2, 3, 100), so that reading is kept only "
              "as an ablation row.", "",
              "Wall time per stage on this machine (2 shared CPU cores; a stage resumed after an interruption "
              "counts only its resumed part; train samples/s of `ssl` counts pairs of views):", "",
              "| stage | wall (s) | epochs run | best epoch | best validation metric | train samples/s |",
              "|---|---|---|---|---|---|"]
    for name, s in t["stages"].items():
        if "epochs_run" in s:
            lines.append(f"| {name} | {s['wall_s']:.0f} | {s['epochs_run']} | {s['best_epoch']} | "
                         f"{s['best_val_metric']:.4f} | {s['median_train_samples_per_s']:.1f} |")
        else:
            lines.append(f"| {name} | {s['wall_s']:.0f} | | | | |")
    lines += ["", "## Export, precision and out-of-distribution check", "",
              f"ONNX (opset 17) checked against torch (max |logit difference| <= 1e-4). "
              f"int8: {t['int8']['rule']}; shipped: {t['int8']['shipped']}. Teacher weights: "
              f"{t['teacher']['weights']} (max |logit drift| vs fp32 on check images: "
              + ", ".join(f"{k}: {v['fp16_max_abs_logit_diff']}" for k, v in t["teacher"]["files"].items())
              + ").", ""]
    lines += ["| pathology | int8 test AUROC change | int8 max abs prob. drift | OOD cut-off | val / test pairs "
              "flagged OOD | white-noise ECGs flagged |", "|---|---|---|---|---|---|"]
    for p, entry in manifest["pathologies"].items():
        e = entry["ecg"]
        lines.append(f"| {p} | {e['export']['int8_test_auroc_change']:+.4f} | {e['export']['int8_max_abs_prob_diff']:.4f} "
                     f"| {e['ood_cutoff']:.2f} | {100 * e['ood'].get('val_fraction_flagged', float('nan')):.1f}% / "
                     f"{100 * e['ood']['test_fraction_flagged']:.1f}% | {e['ood'].get('white_noise_flagged', '?')} |")
    lines += ["", f"OOD rule: {next(iter(manifest['pathologies'].values()))['ecg']['ood']['rule']}.", ""]
    if cases:
        lines += ["## Demo cases", "", "`resources/demo/` (synthetic, from the phantom's test split; README there); "
                  "their outputs at export time are in `reference_outputs.json`.", ""]
    lines += ["## Ablation", "", "The paper's Table 1 / Table 2 rows on the same cohort (`cromotex-train ablation`, "
              "reusing this build's teacher and SSL encoder): docs/results/ablation/ in the source repository, where "
              "it was run; it states how it was reduced to fit the CPU.", ""]
    ph_cmd = f"--subjects {ph.get('subjects', 'N')} --seed {ph.get('seed', 'S')}"
    lines += ["## Reproducing the test metrics", "",
              "From the repository root (the phantom and cohort are deterministic):", "", "```",
              f"cromotex-train phantom {ph_cmd} --out work/phantom",
              f"cromotex-train cohort --mimic-root work/phantom --out work/cohort --seed {cohort.get('seed', 0)}"]
    for p, entry in manifest["pathologies"].items():
        f = entry["ecg"].get("int8_file") if t["int8"]["shipped"] else entry["ecg"]["file"]
        lines.append(f"cromotex-train evaluate --onnx resources/models/{f} --cohort work/cohort "
                     f"--out work/eval_{p} --name {p}")
    lines += ["```", "", "Each prints test AUROC / AUPRC / F1 with the same bootstrap (1000 resamples, seed 0) "
              "and the same validation-F1 threshold as the manifest. To rebuild the whole bundle: "
              f"`{t['command']}` (resumable: finished stages are skipped).", "",
              "## Building real models from MIMIC (at a site)", "",
              "Credentialed PhysioNet access is needed for MIMIC-IV-ECG 1.0, MIMIC-CXR-JPG 2.x, MIMIC-IV-ED 2.2 "
              "and MIMIC-IV-ECG-Ext-ICD 1.0.1. Put (or symlink) them under one root with the folder names "
              "`mimic-iv-ecg`, `mimic-cxr-jpg`, `mimic-iv-ed`, `mimic-iv-ecg-ext-icd` (docs/phantom.md), then:",
              "", "```",
              "pip install -e .[train]",
              "cromotex-train cohort --mimic-root /data/mimic --out cohorts/mimic --workers 8",
              "# optional: start the teacher from a local TorchXRayVision DenseNet-121 MIMIC state dict",
              "cromotex-train build --preset paper --cohort cohorts/mimic --out models/mimic "
              "--work runs/mimic --device cuda --data mimic --results runs/mimic/results "
              "--signing-key /secure/keys/my-site-ed25519.pem [--set teacher.weights=/data/xrv/densenet121-res224-mimic_ch.pt]",
              "cromotex predict --models models/mimic ecgs/ -o scores.jsonl",
              "```", "",
              "With the `paper` preset the build trains one single-label teacher per pathology (as the paper) "
              "and ships `cxr_teacher_<pathology>.onnx` for each; `--set teacher.multi_label=true` trains one "
              "teacher for all three. Multi-GPU: run the four stages with `torchrun` "
              "(`cromotex-train pretrain-cxr|pretrain-ecg|align|finetune --help`) into the build's work "
              "directory layout (`teacher`, `ssl`, `align_<p>`, `finetune_<p>`), then `build` with the same "
              "`--work` skips the finished stages.",
              ""]
    key = getattr(args, "signing_key", None)
    if key is not None:
        from engine.signing import load_private_key
        lines += signature_section(load_private_key(Path(key)).public_key())
    lines += saliency_section(demo)
    lines += ["## Known failure modes and limitations", ""]
    lines += [f"- {f}" for f in FAILURE_MODES]
    return "\n".join(lines) + "\n"


TRUST_HEADING = "## Chest X-ray gate, teacher out-of-distribution check and borderline bands"


def trust_section(manifest: dict) -> list[str]:
    """What `cromotex-train calibrate-bundle` added to the manifest, for people: the teacher's
    embedding check (cut-off, fraction of phantom images and of real films flagged) and the
    borderline band of every model (a call inside it is shown as "borderline")."""
    paths = manifest["pathologies"]
    lines = [TRUST_HEADING, "",
             "Before the chest X-ray teacher runs, the image must pass a gate: DICOM Modality CR/DX/DR, "
             "BodyPartExamined CHEST (or absent), a frontal view (lateral and oblique refused), a plausible "
             "geometry and greyscale (`engine/cxr_gate.py`); PNG/JPEG carry no tags, so their view cannot be "
             "verified and only geometry and the embedding check apply. Then the teacher's embedding must lie "
             "within its training distribution (Mahalanobis distance to the statistics in "
             "`embedding_stats_cxr_teacher.npz`). A refused or out-of-distribution image gets no teacher "
             "numbers: every teacher call is \"not assessable\" with the reason.", ""]
    ood = next((paths[p]["cxr"].get("ood") for p in paths if "cxr" in paths[p]), None)
    if ood:
        lines += [f"- Teacher OOD cut-off {ood['cutoff']:.1f} ({ood['rule']}); phantom validation / test "
                  f"images flagged: {ood['val_fraction_flagged']:.1%} / {ood['test_fraction_flagged']:.1%}.",
                  ]
        if ood.get("probe_flagged"):
            lines.append(f"- Real chest films (NIH ChestX-ray14, SIIM) flagged: {ood['probe_flagged']} "
                         f"(distances {', '.join(f'{v:.0f}' for v in ood['probe_distances'].values())}). "
                         "This is the honest answer for a teacher trained on synthetic drawings: it has no "
                         "validity on real films.")
    lines += ["", "Borderline bands: a probability inside the band around the threshold is called "
              "\"borderline\", not positive or negative. The band is the bootstrap 95% interval of the "
              "validation threshold (widened to hold the shipped threshold).", "",
              "| pathology | model | threshold | band | phantom test calls in band | accuracy inside / outside |",
              "|---|---|---|---|---|---|"]
    for p, entry in paths.items():
        for kind in ("ecg", "cxr"):
            band = entry.get(kind, {}).get("borderline")
            if not band:
                continue
            # a band on the calibrated scale (calibrate-bundle, calibrated ECG model) sits around
            # the calibrated threshold
            thr = entry[kind]["threshold_calibrated"] if band.get("scale") == "calibrated" \
                else entry[kind]["threshold"]
            lines.append(f"| {p} | {band['model']} | {thr:.3f} | "
                         f"{band['low']:.3f}-{band['high']:.3f} | {_num(band.get('test_fraction_borderline'), '.0%')} | "
                         f"{_num(band.get('test_accuracy_inside'), '.2f')} / "
                         f"{_num(band.get('test_accuracy_outside'), '.2f')} |")
    return lines + [""]


def _num(value: float | None, spec: str) -> str:
    """`value` formatted with `spec`, or "n/a" when there is none (no test case on that side)."""
    return "n/a" if value is None else format(value, spec)


def replace_section(card: str, heading: str, section: list[str], before: str | None = None) -> str:
    """`card` with the section starting at `heading` replaced by `section` (up to the next
    "## " heading), or inserted before the heading `before` (else appended) when absent."""
    text = "\n".join(section).rstrip("\n") + "\n\n"
    lines = card.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == heading]
    if starts:
        i = starts[0]
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        return "".join(lines[:i]) + text + "".join(lines[j:])
    if before is not None:
        k = next((k for k, line in enumerate(lines) if line.rstrip("\n") == before), None)
        if k is not None:
            return "".join(lines[:k]) + text + "".join(lines[k:])
    return card.rstrip("\n") + "\n\n" + text
