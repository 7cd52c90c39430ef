"""`cromotex archive`: a real Dask LocalCluster (2 worker processes) over real sample files.

Every Parquet row is compared with `cromotex predict`'s JSON object for the same file
(equal floats, equal errors); a run killed mid-way (SIGKILL) resumes without
duplicates; each worker opens the model bundle once, whatever the number of tasks.

The cluster's workers are started without the test key in their environment or
settings folder: they can open the (test-key-signed) bundle only through the keys the
client passes them (engine.archive.worker.WorkerSpec.trusted_keys).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pq = pytest.importorskip("pyarrow.parquet")

from bundle_factory import REPO, make_bundle  # noqa: E402

from engine.archive.cli import main as archive_main  # noqa: E402
from engine.archive.store import ArchiveStore, parts_dir  # noqa: E402
from engine.archive.worker import WorkerSpec, worker_loads  # noqa: E402
from engine.cli import main as cli_main  # noqa: E402
from engine.constants import PATHOLOGIES  # noqa: E402
from engine.errors import ArchiveError, BundleError  # noqa: E402
from engine.trust import ENV_CONFIG_DIR, ENV_TRUSTED_KEYS  # noqa: E402

DATA = REPO / "tests" / "data"
#: (source files, name in the archive folder); the first of each group is the file scored
SAMPLES = [
    (["ecg/wfdb/ptbxl/00001_lr.hea", "ecg/wfdb/ptbxl/00001_lr.dat"], "ward_a/ptbxl"),
    (["ecg/wfdb/ptb_diagnostic/s0010_re.hea", "ecg/wfdb/ptb_diagnostic/s0010_re.dat",
      "ecg/wfdb/ptb_diagnostic/s0010_re.xyz"], "ward_a/ptb"),
    (["ecg/wfdb/ludb/1.hea", "ecg/wfdb/ludb/1.dat"], "ward_b/2019/ludb"),
    (["ecg/dicom/pydicom_waveform_ecg.dcm"], "ward_b/dicom"),
    (["formats/muse_xml/egm_muse-sinus.xml"], "ward_b/muse"),
]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="module")
def cluster(bundle_dir, tmp_path_factory):
    """A LocalCluster of 2 worker processes that do not trust the test key by themselves."""
    from distributed import Client, LocalCluster

    saved = {k: os.environ.get(k) for k in (ENV_TRUSTED_KEYS, ENV_CONFIG_DIR)}
    os.environ.pop(ENV_TRUSTED_KEYS, None)
    os.environ[ENV_CONFIG_DIR] = str(tmp_path_factory.mktemp("empty_config"))
    try:
        lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    client = Client(lc)
    yield lc, client
    client.close()
    lc.close()


def _archive_folder(root: Path) -> list[str]:
    """Sample ECGs in sub-folders, a truncated DICOM, a chest X-ray PNG without suffix and a
    chest X-ray DICOM; returns the files `cromotex predict` should score, sorted."""
    files = []
    for sources, sub in SAMPLES:
        (root / sub).mkdir(parents=True)
        for s in sources:
            shutil.copy(DATA / s, root / sub / Path(s).name)
        files.append(str(root / sub / Path(sources[0]).name))
    bad = root / "ward_c"
    bad.mkdir()
    (bad / "truncated.dcm").write_bytes((DATA / "ecg/dicom/pydicom_waveform_ecg.dcm").read_bytes()[:3000])
    shutil.copy(DATA / "cxr/png/nih/00000001_000.png", bad / "chest_xray")
    shutil.copy(next((DATA / "cxr/dicom").glob("*.dcm")), bad / "cxr.dcm")
    files += [str(bad / "truncated.dcm"), str(bad / "chest_xray"), str(bad / "cxr.dcm")]
    return sorted(files)


def _predict(files: list[str], bundle_dir: Path, out: Path) -> dict[str, dict]:
    cli_main(["predict", *files, "--models", str(bundle_dir), "--no-progress", "--workers", "1",
              "-o", str(out)])
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [o["file"] for o in objs] == files
    return {o["file"]: o for o in objs}


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out).to_pylist()


def _sha256(path: str) -> str:
    """The header, then each signal file it names, once, in order (name, bytes)."""
    h = hashlib.sha256(Path(path).read_bytes())
    if path.endswith(".hea"):
        lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln and ln[0] != "#"]
        names = dict.fromkeys(ln[0] for ln in lines[1:1 + int(lines[0][1])])
        for name in names:
            h.update(b"\0" + name.encode() + b"\0" + (Path(path).parent / name).read_bytes())
    return h.hexdigest()


def test_rows_equal_cromotex_predict_and_the_model_loads_once_per_worker(
        cluster, bundle_dir, tmp_path, capsys):
    lc, client = cluster
    files = _archive_folder(tmp_path / "archive")
    expected = _predict(files, bundle_dir, tmp_path / "predict.jsonl")
    out = tmp_path / "results.parquet"
    code = archive_main([str(tmp_path / "archive"), "--out", str(out), "--models", str(bundle_dir),
                         "--scheduler", lc.scheduler_address, "--task-size", "1", "--flush-every", "2",
                         "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{len(files)} files: {len(files)} scored (3 could not be scored" in err
    assert not parts_dir(out).exists()
    rows = _rows(out)
    assert [r["path"] for r in rows] == files  # one row per file, sorted by path
    for row in rows:
        obj = expected[row["path"]]
        assert json.loads(row["result_json"]) == obj  # the exact `cromotex predict` object
        assert row["ok"] is obj["ok"] and row["error"] == obj["error"]
        for p in PATHOLOGIES:
            prob = obj["probabilities"][p] if obj["ok"] else None
            assert row[f"probability_{p}"] == prob  # equal floats, not approximately
            assert row[f"positive_{p}"] == (obj["positive"][p] if obj["ok"] else None)
            assert row[f"ood_{p}"] == (obj["ood"][p]["ood"] if obj["ok"] else None)
            assert row[f"call_{p}"] == (obj["call"][p] if obj["ok"] else None)
        assert json.loads(row["quality"] or "null") == obj["quality"]
        assert json.loads(row["device_measurements"] or "null") == obj["device_measurements"]
        assert json.loads(row["measurements"] or "null") == obj["measurements"]
        assert row["bundle_id"] == "test-tiny-0" == obj["model"]["bundle_id"]
        assert row["sha256"] == _sha256(row["path"])
        st = os.stat(row["path"])
        assert row["size"] == st.st_size and row["mtime"] == st.st_mtime
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["00001_lr.hea"]["n_windows"] == 1 and by_name["s0010_re.hea"]["n_windows"] == 3
    assert json.loads(by_name["egm_muse-sinus.xml"]["device_measurements"])["qrs_ms"] > 0
    for bad in ("truncated.dcm", "chest_xray", "cxr.dcm"):
        assert by_name[bad]["ok"] is False and by_name[bad]["error"]
        assert by_name[bad]["probability_edema"] is None
    # 8 one-file tasks on 2 workers: each worker opened the bundle at most once
    loads = client.run(worker_loads)
    assert len(loads) == 2 and 1 <= sum(loads.values()) <= 2 and max(loads.values()) == 1

    # a second run: nothing changed, every file skipped by its hash, the dataset unchanged
    before = out.read_bytes()
    assert archive_main([str(tmp_path / "archive"), "--out", str(out), "--models", str(bundle_dir),
                         "--scheduler", lc.scheduler_address, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"0 scored (0 could not be scored: ok false), {len(files)} already archived" in err
    assert out.read_bytes() == before
    # one file's content changes (the truncated DICOM becomes whole): only it is scored again
    truncated = str(tmp_path / "archive/ward_c/truncated.dcm")
    shutil.copy(DATA / "ecg/dicom/pydicom_waveform_ecg.dcm", truncated)
    assert archive_main([str(tmp_path / "archive"), "--out", str(out), "--models", str(bundle_dir),
                         "--scheduler", lc.scheduler_address, "--no-progress"]) == 0
    assert f"1 scored (0 could not be scored: ok false), {len(files) - 1} already archived" \
        in capsys.readouterr().err
    new = {r["path"]: r for r in _rows(out)}
    assert list(new) == files and new[truncated]["ok"] is True
    assert json.loads(new[truncated]["result_json"]) == \
        _predict([truncated], bundle_dir, tmp_path / "one.jsonl")[truncated]
    assert max(client.run(worker_loads).values()) == 1  # still one load per worker, over 3 runs


def test_a_killed_run_resumes_without_duplicates(cluster, bundle_dir, tmp_path, capsys):
    lc, _ = cluster
    root = tmp_path / "archive"
    n = 120
    for i in range(n):  # many small records, so that the run is still going when it is killed
        d = root / f"patient_{i:03d}"
        d.mkdir(parents=True)
        for name in ("00001_lr.hea", "00001_lr.dat"):
            os.symlink(DATA / "ecg/wfdb/ptbxl" / name, d / name)
    out = tmp_path / "results.parquet"
    argv = [str(root), "--out", str(out), "--models", str(bundle_dir), "--scheduler",
            lc.scheduler_address, "--task-size", "1", "--flush-every", "3", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "archive", *argv], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts = parts_dir(out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not out.exists()  # killed before the end: only parts
    kept = [r for p in sorted(parts.glob("part-*.parquet")) for r in _rows(p)]
    assert 6 <= len(kept) < n
    first_run = {r["path"]: r["scored_at"] for r in kept}

    assert archive_main(argv) == 0
    err = capsys.readouterr().err
    assert f"{n} files: {n - len(first_run)} scored (0 could not be scored: ok false), " \
           f"{len(first_run)} already archived" in err
    rows = _rows(out)
    paths = [r["path"] for r in rows]
    assert len(paths) == n == len(set(paths)) and paths == sorted(paths)
    assert paths == sorted(str(root / f"patient_{i:03d}" / "00001_lr.hea") for i in range(n))
    assert len({r["probability_cardiomegaly"] for r in rows}) == 1  # the same record everywhere
    for r in rows:  # the killed run's rows were kept, not scored again
        if r["path"] in first_run:
            assert r["scored_at"] == first_run[r["path"]]
    assert not parts.exists()


def test_stop_hook_flushes_and_the_next_run_completes(cluster, bundle_dir, tmp_path, capsys):
    from engine.archive.cli import build_archive_parser, run_archive, worker_spec

    lc, client = cluster
    files = _archive_folder(tmp_path / "archive")
    out = tmp_path / "r.parquet"
    args = build_archive_parser().parse_args(
        [str(tmp_path / "archive"), "--out", str(out), "--models", str(bundle_dir), "--task-size", "1",
         "--flush-every", "2", "--no-progress"])
    spec, bundle_id = worker_spec(args)
    assert run_archive(args, client, spec, bundle_id, sys.stderr, stop_after=2) == 130
    assert "interrupted" in capsys.readouterr().err
    assert 2 <= sum(pq.read_metadata(p).num_rows for p in parts_dir(out).glob("*.parquet")) < len(files)
    assert run_archive(args, client, spec, bundle_id, sys.stderr) == 0
    assert [r["path"] for r in _rows(out)] == files


def test_workers_refuse_another_bundle_or_untrusted_keys(bundle_dir, tmp_path):
    from engine.archive.cli import build_archive_parser, worker_spec

    spec, _ = worker_spec(build_archive_parser().parse_args(
        ["x", "--out", str(tmp_path / "o.parquet"), "--models", str(bundle_dir)]))
    assert spec.open().bundle.bundle_id == "test-tiny-0"
    with pytest.raises(ArchiveError, match="not the one the client uses"):
        WorkerSpec(spec.models, spec.device, spec.precision, 1, spec.trusted_keys, "0" * 64).open()
    project_only = tuple(k for k in spec.trusted_keys if k[0] == "CroMoTEX project")
    with pytest.raises(BundleError, match="not in the trust list"):
        WorkerSpec(spec.models, spec.device, spec.precision, 1, project_only, spec.manifest_sha256).open()


def test_an_output_that_is_not_an_archive_is_refused(bundle_dir, tmp_path, capsys):
    import pyarrow as pa

    out = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), out)
    assert archive_main([str(tmp_path), "--out", str(out), "--models", str(bundle_dir)]) == 2
    assert "is not a `cromotex archive` dataset" in capsys.readouterr().err
    with pytest.raises(ArchiveError, match="is a folder"):
        ArchiveStore(tmp_path)


def test_local_threads_cluster_rows_equal_cromotex_predict(bundle_dir, tmp_path, capsys):
    """`--parallel threads`: one in-process Dask worker with 2 threads (the kind `auto` picks on
    a busy machine), quiet monitoring; rows equal `cromotex predict`'s objects."""
    import dask

    from engine.archive.cli import LOCAL_CLUSTER_CONFIG, local_cluster
    from engine.cli import ParallelChoice

    files = _archive_folder(tmp_path / "archive")
    expected = _predict(files, bundle_dir, tmp_path / "predict.jsonl")
    out = tmp_path / "results.parquet"
    code = archive_main([str(tmp_path / "archive"), "--out", str(out), "--models", str(bundle_dir),
                         "--parallel", "threads", "--workers", "2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    rows = _rows(out)
    assert [r["path"] for r in rows] == files
    for row in rows:
        assert json.loads(row["result_json"]) == expected[row["path"]]

    from distributed import Client
    with local_cluster(ParallelChoice("threads", 2)) as lc, Client(lc) as client:
        assert list(client.nthreads().values()) == [2]  # one worker, 2 threads
        (address,) = client.nthreads()
        assert address.startswith("inproc://")  # nothing listens on the network
        worker = next(iter(lc.workers.values()))
        assert "profile" not in worker.periodic_callbacks  # the dashboard's profiler is off
    assert dask.config.get("distributed.worker.profile.enabled") is True  # only for the cluster
    assert LOCAL_CLUSTER_CONFIG["distributed.worker.profile.enabled"] is False


def test_local_plan_follows_predicts_rule_for_a_large_run(monkeypatch):
    from engine.archive.cli import build_archive_parser, local_plan

    parse = build_archive_parser().parse_args
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert local_plan(parse(["r", "--out", "o.parquet", "--workers", "8"])) == ("processes", 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (6.5, 6.5, 6.5))  # 1.5 idle CPUs
    assert local_plan(parse(["r", "--out", "o.parquet", "--workers", "8"])) == ("threads", 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # busy
    assert local_plan(parse(["r", "--out", "o.parquet", "--workers", "8"])) == ("threads", 1)
    assert local_plan(parse(["r", "--out", "o.parquet", "--workers", "3", "--parallel", "processes"])) \
        == ("processes", 3)
