"""DistributedDataParallel end to end: the align and pretrain-ecg stages (both use a
contrastive loss on embeddings gathered from every rank) under
`torchrun --standalone --nproc_per_node 2` on CPU (gloo), tiny preset, tiny phantom
cohort, compared step by step with one process on the same global batches:

- only rank 0 writes checkpoints and outputs;
- the ranks' batches of each step are disjoint shares whose union is the
  one-process batch of that step;
- the loss on the gathered embeddings equals the one-process loss of the global batch;
- the gradient after DDP's all-reduce equals the one-process gradient (this fails by
  a factor of 2 if the gathered loss is not scaled by world_size, see
  `training.stages.common.backward`), and the final weights agree.

Randomness that legitimately differs between ranks is switched off for the
comparison: Transformer dropout and the patch embedding's BatchNorm (per-rank
statistics on CPU, where torch has no SyncBatchNorm; the encoder is built without
them in the worker and the reference) and the augmentations (align.time_augment=false; VCG rotation 0,
scale 1, no time mask for SSL).

Also: `--device cuda` without a GPU fails with StageError, and every stage's --help
lists its options.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.checkpoint import load_checkpoint
from training.stages import align, common, finetune, pretrain_cxr, pretrain_ecg

# The worker runs one stage's main(argv) with recording hooks; run under torchrun
# (WORLD_SIZE=2) or in this process as the one-process reference (`_install_hooks`).
_WORKER = r'''
import os, sys, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hooks import install
rank = int(os.environ.get("RANK", "0"))
stage, record_dir, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
record = install(rank)
from training.stages import align, pretrain_ecg
rc = {"align": align, "pretrain-ecg": pretrain_ecg}[stage].main(argv)
torch.save(record, os.path.join(record_dir, f"record_{rank}.pt"))
sys.exit(rc)
'''

_HOOKS = r'''
import torch
import training.models
import training.optim
from training.stages import common


def install(rank):
    """Patch the stage machinery to record, per step, this rank's batch, loss and
    all-reduced (pre-clipping) gradients, and every checkpoint written."""
    record = {"rank": rank, "batches": [], "losses": [], "grads": [], "saved": []}
    real_encoder = training.models.EcgEncoder
    def encoder(*args, **kwargs):
        # dropout 0, and no BatchNorm: on CPU its statistics are per rank (torch has no
        # CPU SyncBatchNorm; on CUDA common.sync_batchnorm makes them global)
        enc = real_encoder(*args, **{**kwargs, "dropout": 0.0})
        for i, m in enumerate(enc.patch_embed):
            if isinstance(m, torch.nn.BatchNorm1d):
                enc.patch_embed[i] = torch.nn.Identity()
        return enc
    training.models.EcgEncoder = encoder

    real_clip = training.optim.clip_gradients
    def clip(params, max_norm):
        params = list(params)
        record["grads"].append([p.grad.detach().clone() for p in params])
        return real_clip(params, max_norm)
    training.optim.clip_gradients = clip

    real_backward = common.backward
    def backward(loss, ctx, gathered):
        record["losses"].append(float(loss.detach()))
        return real_backward(loss, ctx, gathered)
    common.backward = backward

    for name in ("balanced_batches", "shuffled_batches"):
        real = getattr(common, name)
        def batches(*args, _real=real, **kwargs):
            out = _real(*args, **kwargs)
            record["batches"].append([b.copy() for b in out])
            return out
        setattr(common, name, batches)

    real_save = common.save_checkpoint
    def save(path, state):
        record["saved"].append(str(path))
        return real_save(path, state)
    common.save_checkpoint = save
    return record
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The stage tests' small phantom cohort (every split holds both classes of every label, which
    the stages require), random cached teacher features (align reads only the file), and the
    worker scripts."""
    from test_stages import make_cohort
    root = tmp_path_factory.mktemp("ddp")
    make_cohort(root)
    n = len(common.open_cohort(root / "cohort").split)
    (root / "teacher").mkdir()
    feats = np.random.default_rng(0).standard_normal((n, align.TEACHER_DIM)).astype(np.float32)
    np.save(root / "teacher" / "teacher_features.npy", feats)
    (root / "worker.py").write_text(_WORKER)
    (root / "hooks.py").write_text(_HOOKS)
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(root: Path, stage: str, argv: list[str], record_dir: Path) -> subprocess.CompletedProcess:
    record_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK"}}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--tee", "3", str(root / "worker.py"), stage, str(record_dir), *argv]
    # --standalone picks its own rendezvous port; MASTER_PORT is only a fallback guard
    env["MASTER_PORT"] = str(_free_port())
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def _reference(root: Path, stage: str, argv: list[str], monkeypatch) -> dict:
    """One process, same hooks, in this interpreter (hooks undone by monkeypatch)."""
    import training.models
    import training.optim
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for mod, name in ((training.models, "EcgEncoder"), (training.optim, "clip_gradients"),
                      (common, "backward"), (common, "balanced_batches"), (common, "shuffled_batches"),
                      (common, "save_checkpoint")):
        monkeypatch.setattr(mod, name, getattr(mod, name))  # restored at teardown
    monkeypatch.syspath_prepend(str(root))
    import hooks
    record = hooks.install(0)
    mod = {"align": align, "pretrain-ecg": pretrain_ecg}[stage]
    assert mod.main(argv) == 0
    return record


def _check_against_reference(ranks: list[dict], ref: dict, out2: Path, out1: Path) -> None:
    # checkpoints and outputs from rank 0 only
    assert sorted({Path(p).name for p in ranks[0]["saved"]}) == ["best.pt", "last.pt"]
    assert ranks[1]["saved"] == []
    for name in ("config.json", "history.json", "last.pt", "best.pt"):
        assert (out2 / name).is_file()
    # each epoch: per step, the ranks' shares are disjoint positions of the one-process batch
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == len(ref["batches"]) == 2
    for e, ref_epoch in enumerate(ref["batches"]):
        for s, ref_batch in enumerate(ref_epoch):
            b0, b1 = ranks[0]["batches"][e][s], ranks[1]["batches"][e][s]
            assert len(b0) == len(b1) == len(ref_batch) // 2
            np.testing.assert_array_equal(b0, ref_batch[0::2])
            np.testing.assert_array_equal(b1, ref_batch[1::2])
            np.testing.assert_array_equal(np.sort(np.concatenate([b0, b1])), np.sort(ref_batch))
    # the gathered loss is the global-batch loss, on both ranks, at every step
    assert len(ref["losses"]) == 4
    np.testing.assert_allclose(ranks[0]["losses"], ref["losses"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ranks[1]["losses"], ref["losses"], rtol=1e-5, atol=1e-6)
    # the all-reduced gradient is the one-process gradient (not 1/world_size of it)
    assert len(ranks[0]["grads"]) == len(ref["grads"]) == 4
    for step, ref_grads in enumerate(ref["grads"]):
        g_ref = torch.cat([g.flatten() for g in ref_grads])
        for r in (0, 1):
            g = torch.cat([g.flatten() for g in ranks[r]["grads"][step]])
            assert float((g - g_ref).norm() / g_ref.norm()) < 1e-5, (step, r)
            torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)
    # and training ends with the same weights
    a, b = load_checkpoint(out2 / "last.pt"), load_checkpoint(out1 / "last.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"] == 4
    for name, sd in b["models"].items():
        for k, v in sd.items():
            torch.testing.assert_close(a["models"][name][k], v, rtol=1e-4, atol=1e-5)


def _common_args(env: Path, out: Path) -> list[str]:
    return ["--cohort", str(env / "cohort"), "--out", str(out), "--preset", "tiny", "--device", "cpu",
            "--no-progress"]


def test_align_under_torchrun_matches_one_process(env, tmp_path, monkeypatch):
    extra = ["--teacher", str(env / "teacher"), "--set", "align.time_augment=false"]
    proc = _torchrun(env, "align", _common_args(env, tmp_path / "ddp") + extra, tmp_path / "rec")
    # torchrun's --tee prefixes each rank's lines: the epoch log comes from rank 0 only
    log_lines = (proc.stdout + proc.stderr).splitlines()
    assert any("align epoch 2/2" in line and "0]:" in line for line in log_lines)
    assert not any("align epoch" in line and "1]:" in line for line in log_lines)
    ranks = [torch.load(tmp_path / "rec" / f"record_{r}.pt", weights_only=False) for r in range(2)]
    ref = _reference(env, "align", _common_args(env, tmp_path / "one") + extra, monkeypatch)
    _check_against_reference(ranks, ref, tmp_path / "ddp", tmp_path / "one")
    # the tiny preset clips gradients in this stage, so the scale matters
    assert load_checkpoint(tmp_path / "ddp" / "last.pt")["config"]["align"]["grad_clip"] > 0


def test_ssl_pretraining_under_torchrun_matches_one_process(env, tmp_path, monkeypatch):
    extra = ["--set", "ssl.max_rotation_deg=0", "--set", "ssl.scale_range=[1, 1]",
             "--set", "ssl.mask_fraction=0"]
    _torchrun(env, "pretrain-ecg", _common_args(env, tmp_path / "ddp") + extra, tmp_path / "rec")
    ranks = [torch.load(tmp_path / "rec" / f"record_{r}.pt", weights_only=False) for r in range(2)]
    ref = _reference(env, "pretrain-ecg", _common_args(env, tmp_path / "one") + extra, monkeypatch)
    _check_against_reference(ranks, ref, tmp_path / "ddp", tmp_path / "one")
    # shuffled (without replacement) batches: the ranks' shares are disjoint sets
    for epoch in range(2):
        seen0 = np.concatenate(ranks[0]["batches"][epoch])
        seen1 = np.concatenate(ranks[1]["batches"][epoch])
        assert not set(seen0.tolist()) & set(seen1.tolist())


def test_gathered_loss_scaling_only_when_distributed():
    """`backward` leaves one-process and per-rank-mean losses unscaled."""
    w = torch.ones(3, requires_grad=True)
    common.backward((w * 2).sum(), common.DistContext(), gathered=True)
    torch.testing.assert_close(w.grad, torch.full((3,), 2.0))
    w.grad = None
    common.backward((w * 2).sum(), common.DistContext(rank=0, world_size=2), gathered=False)
    torch.testing.assert_close(w.grad, torch.full((3,), 2.0))


def test_batchnorm_becomes_syncbatchnorm_for_cuda_ddp_only():
    from training.models import EcgEncoder
    enc = EcgEncoder(ff_dim=32)
    keys = list(enc.state_dict())
    assert common.sync_batchnorm(enc, torch.device("cpu")) is enc
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in enc.modules()) == 0
    assert common.sync_batchnorm(enc, torch.device("cuda")) is enc  # converted in place
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in enc.modules()) == 2
    assert list(enc.state_dict()) == keys


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
@pytest.mark.parametrize("stage", [align, pretrain_ecg, pretrain_cxr, finetune])
def test_device_cuda_without_gpu_is_a_stage_error(env, tmp_path, stage):
    argv = _common_args(env, tmp_path / "x")
    argv[argv.index("cpu")] = "cuda"
    argv += {align: ["--teacher", str(env / "teacher")], finetune: ["--init", str(tmp_path / "none.pt")]}.get(stage, [])
    with pytest.raises(common.StageError, match="no CUDA GPU is available.*--device cpu"):
        stage.main(argv)


@pytest.mark.parametrize("stage,own", [(align, ["--teacher", "--init", "--loss", "--weighting"]),
                                       (pretrain_ecg, []), (pretrain_cxr, []), (finetune, ["--init"])])
def test_help_lists_the_options(stage, own, capsys):
    with pytest.raises(SystemExit) as exc:
        stage.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ["--cohort", "--out", "--preset", "--device", "--epochs", "--batch-size", "--seed",
                   "--max-steps", "--resume", "--no-progress", "--set", *own]:
        assert option in text, option
