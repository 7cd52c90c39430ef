"""Socket guard for tests/test_no_network.py (issue 15, item 5).

Put this folder on PYTHONPATH and set CROMOTEX_SOCKET_GUARD_LOG to a file: every Python
interpreter started with them (the CLI, its worker processes, the app) imports this module
at start-up, and from then on every attempt to reach the network through Python's socket
module (name lookups, connect / connect_ex / sendto / sendmsg on a non-local socket) is
refused with OSError and recorded, one JSON line per attempt, in that file.

Local sockets (AF_UNIX: Qt, multiprocessing, the name-service cache) are not the network:
they are allowed and recorded with "local": true. Native code that makes its own system
calls (onnxruntime's telemetry) is not seen here; the test checks its footprint (files
under the cache folder) instead, and bench/trace_network.sh traces the system calls.
"""

import json
import os
import socket
import traceback

_LOG = os.environ.get("CROMOTEX_SOCKET_GUARD_LOG")


def _record(call: str, detail: object, local: bool = False) -> None:
    entry = {"call": call, "detail": repr(detail), "local": local, "pid": os.getpid(),
             "stack": traceback.format_stack(limit=10)[:-2]}
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def _refuse(call: str, detail: object) -> OSError:
    _record(call, detail)
    return OSError(f"socket guard: network access refused ({call} {detail!r})")


def _lookup(name: str):
    real = getattr(socket, name)

    def guarded(*args, **kwargs):
        raise _refuse(name, args[:2])
    guarded.__wrapped__ = real
    return guarded


def _method(name: str):
    real = getattr(socket.socket, name)

    def guarded(self, *args, **kwargs):
        if self.family == getattr(socket, "AF_UNIX", None):
            _record(name, args[:1], local=True)
            return real(self, *args, **kwargs)
        raise _refuse(name, args[-1:] if name in ("sendto", "sendmsg") else args[:1])
    guarded.__wrapped__ = real
    return guarded


if _LOG:
    for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
        setattr(socket, _name, _lookup(_name))
    for _name in ("connect", "connect_ex", "sendto", "sendmsg"):
        setattr(socket.socket, _name, _method(_name))
    _record("guard-installed", None, local=True)
