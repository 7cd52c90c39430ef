"""CroMoTEX training: cohorts (MIMIC, phantom), models, losses, augmentations,
the four training stages, evaluation and ONNX export. Requires the `train`
extra (torch). Imports `engine` for reading and preprocessing."""
