"""`cromotex-train SUBCOMMAND ...`: dispatches to each subcommand's `main(argv)`.

Subcommand modules are imported lazily so that `cromotex-train --help` is fast
and one broken stage does not break the others.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "phantom": ("training.phantom.cli", "write a synthetic phantom cohort in the MIMIC layout"),
    "phantom-report": ("training.phantom.report", "baseline AUROCs, contact sheet and ECG plots of a cohort"),
    "cohort": ("training.cohort.build", "build a COHORT directory from a MIMIC (or phantom) root"),
    "pretrain-cxr": ("training.stages.pretrain_cxr", "stage 1: train the chest X-ray teacher"),
    "pretrain-ecg": ("training.stages.pretrain_ecg", "stage 2: self-supervised ECG pretraining (SimCLR, VCG aug.)"),
    "align": ("training.stages.align", "stage 3: cross-modal alignment with AHNP-SupCMA"),
    "finetune": ("training.stages.finetune", "stage 4: fine-tune the ECG encoder + classifier"),
    "evaluate": ("training.evaluate", "AUROC / AUPRC / F1 with bootstrap CIs, ROC and embedding plots"),
    "export": ("training.export", "export trained models to ONNX and check them against torch"),
    "build": ("training.build", "everything end to end into a model bundle"),
    "calibrate-bundle": ("training.calibrate", "teacher OOD statistics and borderline bands into a bundle"),
    "ablation": ("training.ablation", "reproduce the paper's Tables 1-2 on a cohort"),
    "probe": ("training.probe", "linear probe of frozen ECG embeddings (what an encoder has learned)"),
    "keygen": ("training.keys:keygen_main", "make an Ed25519 key pair for signing model bundles"),
    "sign-bundle": ("training.keys:sign_main", "sign a model bundle's manifest (manifest.json.sig)"),
}
#: A module is called through its `main(argv)`, or through `module:function` when given.


def _usage() -> str:
    lines = ["usage: cromotex-train SUBCOMMAND [options]", "", "subcommands:"]
    width = max(len(k) for k in SUBCOMMANDS)
    for name, (_, text) in SUBCOMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {text}")
    lines.append("")
    lines.append("Run `cromotex-train SUBCOMMAND --help` for the options of each.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"cromotex-train: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from engine.errors import CromotexError

    module_name, _, func = SUBCOMMANDS[name][0].partition(":")
    entry = getattr(importlib.import_module(module_name), func or "main")
    try:
        result = entry(rest)
    except CromotexError as exc:  # a failure the user can act on: message, no traceback
        print(f"cromotex-train {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cromotex-train {name}: interrupted (checkpoints written so far are kept; "
              "rerun with --resume to continue)", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
