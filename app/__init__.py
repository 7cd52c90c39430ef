"""CroMoTEX Review desktop application (PySide6 + pyqtgraph).

A thin Qt layer over `engine` objects: views receive `EcgRecord`, `CxrImage`
and `Prediction` objects and emit signals; `controller` holds behaviour;
`workers` run file reading and inference off the GUI thread. Never imports
torch or `training`.
"""

import engine  # noqa: F401  first: turns onnxruntime's telemetry off before anything imports it
