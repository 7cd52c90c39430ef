"""CroMoTEX Review engine: GUI-free, torch-free core.

Records, readers, preprocessing, onnxruntime inference, model bundle and the
`cromotex` command line. Never imports Qt, torch or `training`.
"""

import os

__version__ = "0.1.0"

#: No network, ever (issue 15): onnxruntime's built-in telemetry (1DS) starts when onnxruntime
#: is imported: it writes a device id and an event store under ~/.cache/Microsoft/DeveloperTools/
#: .onnxruntime/ and sends DNS queries to upload them. This variable, set before onnxruntime is
#: imported, turns it off (measured with strace: 4 DNS connects in 20 s without it, 0 with it,
#: and no files); `engine.inference` also calls `onnxruntime.disable_telemetry_events()`.
#: Forced, not defaulted: a workstation handling patient data makes no network attempt.
ONNXRUNTIME_TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"
os.environ[ONNXRUNTIME_TELEMETRY_ENV] = "1"

#: `import pydicom` imports its example-data downloader, which imports `requests` when it is
#: installed (the dev/cluster extras bring it); urllib3 then warns on stderr that SOCKS support
#: needs PySocks. Nothing here downloads anything (see above), so the warning is noise in the
#: app's and the CLI's stderr; only that warning is silenced.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="SOCKS support in urllib3 requires", module="urllib3")
