"""CroMoTEX Review engine: GUI-free, torch-free core.

Records, readers, preprocessing, onnxruntime inference, model bundle and the
`cromotex` command line. Never imports Qt, torch or `training`.
"""

__version__ = "0.1.0"
