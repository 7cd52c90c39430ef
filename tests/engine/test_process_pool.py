"""Files scored in worker processes (`engine.process_pool`, `cromotex predict --parallel
processes`): the same bytes as threads, input order, and a run that survives a worker that
dies (killed from outside, or crashing on one file every time)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys

import pytest
from bundle_factory import REPO, make_bundle

from engine.batch import FILES_PER_TASK, InputItem, files_per_task, load_and_score
from engine.cli import (PROCESS_MIN_FILE_CPUS, PROCESS_MIN_FILES, PROCESS_MIN_IDLE_CPUS,
                        build_predict_parser, choose_parallel, main, parallel_plan)
from engine.constants import PATHOLOGIES
from engine.inference import Predictor
from engine.process_pool import WORKER_DIED, PredictorSpec, ProcessScorer, score_in_worker

GOOD = ("tests/data/ecg/wfdb/ptbxl/00001_lr.hea", "tests/data/ecg/wfdb/ludb/1.hea",
        "tests/data/ecg/wfdb_mat/cinc2021/HR06000.hea", "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm")

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="kills a worker with SIGKILL")


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle")


@pytest.fixture(scope="module")
def reference(bundle_dir):
    """Probabilities of each GOOD file scored in this process, one file at a time."""
    predictor = Predictor(bundle_dir, threads=1, parallel_models=False)
    return {f: load_and_score(predictor, InputItem(str(REPO / f))) for f in GOOD}


def crash_on_marked_files(items: list[InputItem]):
    """A worker task that kills its process when a file's name contains 'crash' (as a
    native decoder crash would), and scores the files normally otherwise."""
    if any("crash" in os.path.basename(item.path) for item in items):
        os._exit(3)
    return score_in_worker(items)


def probabilities(result) -> dict[str, float]:
    return {p: v.probability for p, v in result.predictions.items()}


def test_processes_give_the_same_bytes_as_threads(bundle_dir, tmp_path):
    bad = tmp_path / "bad.hea"
    bad.write_text("not a header\n")
    files = [str(REPO / f) for f in GOOD] + [str(bad)]
    outs = {}
    for mode in ("threads", "processes"):
        out = tmp_path / f"{mode}.jsonl"
        code = main(["predict", *files, "--models", str(bundle_dir), "--no-progress",
                     "--workers", "2", "--parallel", mode, "-o", str(out)])
        assert code == 1  # one input could not be scored
        outs[mode] = out.read_bytes()
    assert outs["processes"] == outs["threads"]
    lines = [json.loads(line) for line in outs["processes"].splitlines()]
    assert [o["file"] for o in lines] == files
    assert [o["ok"] for o in lines] == [True] * len(GOOD) + [False]
    assert "bad.hea" in lines[-1]["file"] and lines[-1]["error"]


def test_scorer_keeps_input_order_and_is_reusable(bundle_dir, reference):
    predictor = Predictor(bundle_dir, threads=1, parallel_models=False)
    items = [InputItem(str(REPO / GOOD[k % len(GOOD)])) for k in range(10)]
    with ProcessScorer(PredictorSpec.of(predictor), workers=2, prefetch=3) as scorer:
        assert scorer.start() > 0
        for _ in range(2):  # a second run reuses the started workers
            results = list(scorer.score(items))
            assert [r.file for r in results] == [i.path for i in items]
            for k, r in enumerate(results):
                assert r.ok and probabilities(r) == probabilities(reference[GOOD[k % len(GOOD)]])
        assert scorer.restarts == 0


@posix_only
def test_a_worker_killed_mid_run_loses_no_file(bundle_dir, reference):
    predictor = Predictor(bundle_dir, threads=1, parallel_models=False)
    items = [InputItem(str(REPO / GOOD[k % len(GOOD)])) for k in range(24)]
    results = []
    # one file per task, so that killing a worker after 2 results leaves work in flight
    with ProcessScorer(PredictorSpec.of(predictor), workers=2, task_size=1) as scorer:
        scorer.start()
        for r in scorer.score(items):
            if len(results) == 2:  # as the out-of-memory killer would
                os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
            results.append(r)
        assert scorer.restarts >= 1
    assert [r.file for r in results] == [i.path for i in items]
    for k, r in enumerate(results):
        assert r.ok, r.error
        assert probabilities(r) == probabilities(reference[GOOD[k % len(GOOD)]])


@posix_only
def test_a_file_that_kills_its_worker_every_time_is_skipped(bundle_dir, reference, tmp_path):
    crash = tmp_path / "crash_me.hea"
    crash.write_text("whatever\n")
    predictor = Predictor(bundle_dir, threads=1, parallel_models=False)
    names = [GOOD[0], str(crash), GOOD[1], GOOD[2]]
    items = [InputItem(n if os.path.isabs(n) else str(REPO / n)) for n in names]
    with ProcessScorer(PredictorSpec.of(predictor), workers=2, task=crash_on_marked_files) as scorer:
        results = list(scorer.score(items))
    assert [r.file for r in results] == [i.path for i in items]
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error == WORKER_DIED
    for r, name in zip([results[0], results[2], results[3]], [GOOD[0], GOOD[1], GOOD[2]]):
        assert probabilities(r) == probabilities(reference[name])
        assert set(probabilities(r)) == set(PATHOLOGIES)


def test_auto_rule_processes_need_idle_cpus_and_enough_files():
    """`choose_parallel(cpus, load1, n_inputs, workers)`: the measured rule (engine.cli)."""
    P, T = "processes", "threads"

    def mode(*a):
        return choose_parallel(*a).mode
    # idle 2-CPU machine: 2 threads; processes only from 4,000 files (break-even 2,000-4,400)
    assert choose_parallel(2, 0.0, 3_999, 2) == (T, 2)
    assert choose_parallel(2, 0.0, 4_000, 2) == (P, 2)
    # partly loaded: 1-2 idle CPUs, 2 threads and never processes
    assert choose_parallel(2, 0.5, 1_000_000, 2) == (T, 2)
    assert choose_parallel(2, 1.0, 1_000_000, 2) == (T, 2)
    # under one idle CPU: one thread (processes 1.85x, 2 threads no faster than 1 there)
    assert choose_parallel(2, 1.01, 10, 2) == (T, 1)
    assert choose_parallel(2, 5.6, 1_000_000, 2) == (T, 1)
    assert choose_parallel(16, 20.0, 100_000, 16) == (T, 1)
    # 16 CPUs: idle CPUs x files >= 8,000
    assert choose_parallel(16, 0.0, 499, 16) == (T, 16)
    assert choose_parallel(16, 0.0, 500, 16) == (P, 16)
    assert mode(16, 8.0, 999, 16) == T and mode(16, 8.0, 1_000, 16) == P  # 8 idle: 1,000 files
    assert choose_parallel(16, 14.5, 100_000, 16) == (T, 16)  # 1.5 idle CPUs
    # the workers cap the CPUs used: 2 workers on an idle 16-CPU machine count as 2
    assert mode(16, 0.0, 3_999, 2) == T and mode(16, 0.0, 4_000, 2) == P
    # one worker: one thread; no load average (Windows): taken as idle
    assert choose_parallel(16, 0.0, 1_000_000, 1) == (T, 1)
    assert choose_parallel(4, None, 2_000, 4) == (P, 4)
    assert choose_parallel(4, None, 1_999, 4) == (T, 4)
    # the CLI looks at enough inputs for the largest threshold the rule can ask for (2 CPUs)
    assert PROCESS_MIN_FILES * PROCESS_MIN_IDLE_CPUS >= PROCESS_MIN_FILE_CPUS


def test_parallel_plan_reads_this_machines_cpus_and_load(monkeypatch):
    parse = build_predict_parser().parse_args
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert parallel_plan(parse(["x", "--workers", "8"]), 1_000) == ("processes", 8)
    assert parallel_plan(parse(["x", "--workers", "8"]), 999) == ("threads", 8)
    assert parallel_plan(parse(["x", "--workers", "1"]), 10_000) == ("threads", 1)
    assert parallel_plan(parse(["x", "--workers", "8", "--batch", "16"]), 10_000) == ("threads", 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (15.5, 15.0, 15.0))  # busy: one thread
    assert parallel_plan(parse(["x", "--workers", "8"]), 10_000) == ("threads", 1)

    def no_loadavg():
        raise OSError("not on this platform")
    monkeypatch.setattr(os, "getloadavg", no_loadavg)  # taken as idle
    assert parallel_plan(parse(["x", "--workers", "8"]), 1_000) == ("processes", 8)
    # explicit modes ignore the rule and keep --workers
    assert parallel_plan(parse(["x", "--workers", "1", "--parallel", "processes"]), 1) == ("processes", 1)
    assert parallel_plan(parse(["x", "--workers", "8", "--parallel", "threads"]), 10_000) == ("threads", 8)


def test_tasks_are_smaller_when_a_small_run_would_leave_workers_idle():
    assert files_per_task(None, 2) == FILES_PER_TASK
    assert files_per_task(10_000, 16) == FILES_PER_TASK
    assert files_per_task(10, 2) == 5 and files_per_task(3, 8) == 1 and files_per_task(0, 2) == 1


def test_processes_with_batch_is_a_usage_error(bundle_dir, capsys):
    assert main(["predict", str(REPO / GOOD[0]), "--models", str(bundle_dir), "--batch", "8",
                 "--parallel", "processes"]) == 2
    assert "--parallel threads" in capsys.readouterr().err



def _sleep(seconds: float) -> None:
    import time
    time.sleep(seconds)


def test_stop_sees_an_exited_worker_as_stopped_even_when_it_cannot_poll_it(monkeypatch):
    """The pool's management thread joins the workers too; when it reaps one first,
    `Process.is_alive()` here can say True for an exited process (waitpid fails with ECHILD
    and poll() gives None). The stop logic waits on sentinels, which cannot say that."""
    from engine.process_pool import _still_running

    ctx = multiprocessing.get_context("spawn")
    done, stuck = ctx.Process(target=_sleep, args=(0.0,)), ctx.Process(target=_sleep, args=(30.0,))
    done.start()
    stuck.start()
    try:
        done.join(20)
        done._popen.returncode = None  # as if reaped by another thread, unseen here
        monkeypatch.setattr(done._popen, "poll", lambda *a: None)
        assert done.is_alive()  # the lie the old stop logic believed
        assert _still_running([done, stuck], 0.5) == [stuck]  # the truth, after 0.5 s
    finally:
        stuck.terminate()
        stuck.join(5)
    assert _still_running([stuck], 5.0) == []


def test_closing_a_scorer_terminates_nobody(bundle_dir, caplog):
    with ProcessScorer(PredictorSpec(str(bundle_dir), "cpu", "fp32", 1), workers=2) as scorer:
        results = list(scorer.score(InputItem(str(REPO / f)) for f in GOOD * 4))
    assert [r.ok for r in results] == [True] * len(GOOD) * 4
    assert "did not stop" not in caplog.text
