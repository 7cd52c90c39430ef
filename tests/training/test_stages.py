"""The four stages end to end on a tiny phantom cohort (phantom generator -> cohort builder,
tiny preset, CPU), then export + onnxruntime; resume after interruption; determinism; the
CLI entry points."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from training import export as ex
from training.checkpoint import load_checkpoint
from training.cohort import build as cohort_build
from training.config import resolve
from training.phantom import cli as phantom_cli
from training.stages import align, common, finetune, pretrain_cxr, pretrain_ecg


def make_cohort(root: Path) -> Path:
    """A 45-subject phantom v2 (seed 2, split seed 0: every split holds both classes of every
    label, which the stages now require) -> COHORT."""
    assert phantom_cli.main(["--subjects", "45", "--seed", "2", "--out", str(root / "phantom"), "--quiet",
                             "--workers", "1"]) == 0
    assert cohort_build.main(["--mimic-root", str(root / "phantom"), "--out", str(root / "cohort"), "-q"]) == 0
    return root / "cohort"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    cohort = make_cohort(root)
    cfg = resolve("tiny")
    out = {"root": root, "cohort": cohort, "cfg": cfg}
    out["teacher"] = pretrain_cxr.run(cfg, cohort, root / "teacher")
    out["ssl"] = pretrain_ecg.run(cfg, cohort, root / "ssl")
    out["align"] = align.run(cfg, cohort, root / "align", teacher=root / "teacher", init=out["ssl"]["best"])
    out["finetune"] = finetune.run(cfg, cohort, root / "ft", init=out["align"]["best"])
    return out


def test_teacher_caches_features_and_logits(pipeline):
    co = common.open_cohort(pipeline["cohort"])
    feats = np.load(pipeline["teacher"]["features"])
    logits = np.load(pipeline["teacher"]["logits"])
    assert feats.shape == (len(co.split), 1024) and feats.dtype == np.float32
    assert logits.shape == (len(co.split), 3)  # the cpu/tiny preset's multi-label teacher
    assert json.loads(Path(pipeline["teacher"]["teacher"]).read_text())["pathologies"] == \
        ["cardiomegaly", "edema", "pleural_effusion"]
    # the cache equals a fresh forward pass of the best teacher
    state = load_checkpoint(pipeline["teacher"]["best"], stage="pretrain-cxr")
    model = pretrain_cxr.build_teacher(pipeline["cfg"])
    model.load_state_dict(state["models"]["teacher"])
    f, lg = pretrain_cxr.teacher_outputs(model, co, np.array([0, 5]), torch.device("cpu"), 32, 8)
    np.testing.assert_allclose(f, feats[[0, 5]], atol=1e-5)
    np.testing.assert_allclose(lg, logits[[0, 5]], atol=1e-5)


def test_stage_outputs_and_checkpoints(pipeline):
    for stage, name in (("teacher", "pretrain-cxr"), ("ssl", "pretrain-ecg"), ("align", "align"),
                        ("finetune", "finetune")):
        last = load_checkpoint(pipeline[stage]["last"], stage=name)
        assert last["epoch"] == 2 and last["step"] == 4 and last["finished"]
        assert {"optimizer", "rng", "config", "history"} <= set(last)
        assert last["config"]["preset"] == "tiny"
        cfg = json.loads(Path(pipeline[stage]["config"]).read_text())
        assert cfg["ecg"]["ff_dim"] == 32
        assert len(json.loads(Path(pipeline[stage]["history"]).read_text())) == 2
    # alignment started from the SSL encoder, fine-tuning from the aligned one
    assert load_checkpoint(pipeline["align"]["last"])["extra"]["init_stage"] == "pretrain-ecg"
    assert load_checkpoint(pipeline["finetune"]["last"])["extra"]["init_stage"] == "align"
    pred = np.load(pipeline["finetune"]["predictions"])
    co = common.open_cohort(pipeline["cohort"])
    assert pred["test_logit"].shape == (len(co.indices("test")),)
    assert pred["train_embedding"].shape == (len(co.indices("train")), 256)


def test_export_of_the_finetuned_model_runs_in_onnxruntime(pipeline, tmp_path):
    model, cfg = finetune.load_classifier(pipeline["finetune"]["best"])
    x = ex.check_records(pipeline["cohort"], "ecg")
    rep = ex.export_ecg(model, tmp_path / "ecg.onnx", cfg.pathology, 0.5, x)
    assert rep.max_abs_logit_diff <= 1e-4
    sess = ort.InferenceSession(str(tmp_path / "ecg.onnx"), providers=["CPUExecutionProvider"])
    logit, emb = sess.run(["logit", "embedding"], {"ecg": x})
    pred = np.load(pipeline["finetune"]["predictions"])
    np.testing.assert_allclose(logit[:, 0], pred["test_logit"][:len(x)], atol=1e-4)
    assert emb.shape == (len(x), 256)


def test_resume_continues_and_matches_an_uninterrupted_run(pipeline, tmp_path, monkeypatch):
    cohort, init = pipeline["cohort"], pipeline["align"]["best"]
    cfg = resolve("tiny", {"finetune.patience": 0})
    full = finetune.run(cfg, cohort, tmp_path / "full", init=init)
    # interrupt during the second epoch's validation (after epoch 1 was checkpointed)
    real, calls = finetune.predict, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(finetune, "predict", interrupted)
    with pytest.raises(KeyboardInterrupt):
        finetune.run(cfg, cohort, tmp_path / "part", init=init)
    monkeypatch.setattr(finetune, "predict", real)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["epoch"] == 1
    resumed = finetune.run(cfg, cohort, tmp_path / "part", init=init, resume=True)
    a, b = load_checkpoint(full["last"]), load_checkpoint(resumed["last"])
    assert b["epoch"] == 2 and b["step"] == 4 and [h["epoch"] for h in b["history"]] == [1, 2]
    assert b["history"][1]["lr"] == pytest.approx(a["history"][1]["lr"])
    # CPU training is deterministic: the resumed run ends with the same weights
    for k, v in a["models"]["classifier"].items():
        torch.testing.assert_close(b["models"]["classifier"][k], v, rtol=0, atol=1e-6)
    # resuming a finished run returns at once; giving it more epochs continues it
    again = finetune.run(resolve("tiny", {"finetune.patience": 0, "finetune.epochs": 3}), cohort,
                         tmp_path / "part", init=init, resume=True)
    assert load_checkpoint(again["last"])["epoch"] == 3


def test_cli_main_and_errors(pipeline, tmp_path, capsys):
    with pytest.raises(SystemExit):
        finetune.main(["--help"])
    assert "--resume" in capsys.readouterr().out
    rc = align.main(["--cohort", str(pipeline["cohort"]), "--out", str(tmp_path / "a"), "--preset", "tiny",
                     "--teacher", str(pipeline["root"] / "teacher"), "--loss", "supcon", "--epochs", "1",
                     "--max-steps", "1", "--no-progress"])
    assert rc == 0
    state = load_checkpoint(tmp_path / "a" / "last.pt", stage="align")
    assert state["config"]["align"]["loss"] == "supcon" and state["extra"]["init_stage"] == "scratch"
    with pytest.raises(common.StageError, match="pretrain-cxr"):
        align.run(resolve("tiny"), pipeline["cohort"], tmp_path / "b", teacher=tmp_path / "nowhere")
    with pytest.raises(common.StageError, match="no CUDA"):
        if torch.cuda.is_available():
            raise common.StageError("no CUDA (skipped: a GPU is present)")
        common.select_device("cuda")


def test_supcon_ablation_loss_matches_a_naive_loop():
    torch.manual_seed(0)
    ze, zx = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    z = torch.nn.functional.normalize(torch.cat([ze, zx]), dim=1)
    yy = torch.cat([y, y])
    total = 0.0
    for i in range(12):
        others = [a for a in range(12) if a != i]
        denom = torch.logsumexp(torch.stack([z[i] @ z[a] / 0.1 for a in others]), 0)
        pos = [p for p in others if yy[p] == yy[i]]
        total += -sum(z[i] @ z[p] / 0.1 - denom for p in pos) / len(pos)
    assert float(align.supcon(ze, zx, y, 0.1)) == pytest.approx(float(total / 12), abs=1e-5)
