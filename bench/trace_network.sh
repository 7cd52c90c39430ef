#!/usr/bin/env bash
# Network system calls of `cromotex predict` and of the app's self-test (issue 15, item 5),
# seen by strace, for native code too (onnxruntime's telemetry is native: a Python socket guard
# cannot see it). Needs strace; tests/test_no_network.py does not.
#
#   bench/trace_network.sh [SECONDS_IDLE]      # from the repository root
#
# Each run is traced with `strace -f -e trace=connect,sendto,sendmsg`; HOME points at an empty
# folder. After the work, the CLI run idles SECONDS_IDLE (default 20) inside the process so that
# periodic uploads have time to start. Prints, per run, the connect() calls by address family
# (AF_INET/AF_INET6 = network; AF_UNIX = local) and the files left under the empty HOME.
# Measured on 2026-12-03, before ORT_DISABLE_TELEMETRY: 4 AF_INET connects to port 53 (DNS) and 2
# to the name-service cache in 20 s of an idle onnxruntime session, and
# .cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}; after: none.
set -euo pipefail
idle=${1:-20}
command -v strace >/dev/null || { echo "strace not found"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # name, command...
  local name=$1; shift
  local home="$tmp/$name-home"
  mkdir -p "$home"
  HOME="$home" XDG_CACHE_HOME="$home/.cache" CROMOTEX_REVIEW_CONFIG_DIR="$tmp/$name-config" \
    QT_QPA_PLATFORM=offscreen strace -f -qq -e trace=connect,sendto,sendmsg -o "$tmp/$name.trace" "$@" \
    >/dev/null 2>"$tmp/$name.err" || { echo "$name failed:"; tail -5 "$tmp/$name.err"; }
  local net; net=$(grep -cE 'sa_family=AF_INET6?' "$tmp/$name.trace" || true)
  local unix; unix=$(grep -c 'sa_family=AF_UNIX' "$tmp/$name.trace" || true)
  echo "$name: network (AF_INET/AF_INET6) calls: $net; local (AF_UNIX) calls: $unix"
  { grep -E 'sa_family=AF_INET6?' "$tmp/$name.trace" || true; } | head -5 | sed 's/^/  /'
  echo "  files under HOME: $(cd "$home" && find . -type f | tr '\n' ' ')"
}
run cli python3 -c "
import sys, time
from engine.cli import main
code = main(['predict', 'tests/data/ecg/wfdb/ptbxl/00001_lr.hea', '--workers', '1', '--no-progress'])
time.sleep($idle)
sys.exit(code)"
run selftest python3 -m app.main --self-test --report "$tmp/report.json"
