"""CroMoTEX training: cohorts (MIMIC, phantom), models, losses, augmentations,
the four training stages, evaluation and ONNX export. Requires the `train`
extra (torch). Imports `engine` for reading and preprocessing."""

import engine  # noqa: F401  first: turns onnxruntime's telemetry off before anything imports it
