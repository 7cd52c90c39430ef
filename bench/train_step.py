"""Throughput of the align stage's training step (forward + backward + optimiser).

For the paper architecture (feed-forward 2048) and the cpu preset (512), on
synthetic in-memory data shaped like a cohort (memory-mapped .npy in a temp
folder, as the stages read it): samples/s of the whole step, and the share of
the step spent in the data path (reading the batch rows + time augmentation +
teacher-feature lookup). Target: data path < 10% of the step.

    python bench/train_step.py [--device cpu|cuda] [--batch 32] [--steps 5] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from training.augment import time_augment
from training.config import resolve
from training.optim import clip_gradients, make_optimizer, param_groups, set_lr
from training.stages import common
from training.stages.align import AlignNet, alignment_loss


def bench(preset: str, device: torch.device, batch: int, steps: int, workdir: Path) -> dict:
    cfg = resolve(preset)
    n = max(4 * batch, 256)
    rng = np.random.default_rng(0)
    np.save(workdir / "ecg.npy", rng.uniform(-1, 1, (n, 12, 1000)).astype(np.float32))
    ecg = np.load(workdir / "ecg.npy", mmap_mode="r")
    feats = rng.normal(size=(n, 1024)).astype(np.float32)
    labels = (rng.random(n) < 0.3).astype(np.int64)
    torch.manual_seed(0)
    net = AlignNet(common.make_encoder(cfg), cfg.align.proj_dim).to(device).train()
    a = cfg.align
    opt = make_optimizer(a.optimizer, param_groups([(net.encoder, 1.0), (net.g_ecg, 0.1), (net.g_cxr, 0.1)],
                                                   a.peak_lr, a.weight_decay), a.peak_lr, a.weight_decay)
    gen = torch.Generator().manual_seed(0)
    t_data = t_total = 0.0
    for s in range(steps + 1):  # step 0 is warm-up, not timed
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        idx = rng.integers(0, n, batch)
        x = time_augment(common.ecg_batch(ecg, idx, torch.device("cpu")), gen).to(device)
        f = torch.from_numpy(feats[idx]).to(device)
        y = torch.from_numpy(labels[idx]).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        set_lr(opt, a.peak_lr)
        z_e, z_x = net(x, f)
        loss = alignment_loss(cfg, z_e, z_x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(list(net.parameters()), a.grad_clip)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if s > 0:
            t_data += t1 - t0
            t_total += t2 - t0
    return {"preset": preset, "ff_dim": cfg.ecg.ff_dim, "batch": batch, "steps": steps,
            "samples_per_s": steps * batch / t_total, "step_s": t_total / steps, "data_share": t_data / t_total}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--presets", nargs="+", default=["paper", "cpu"])
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = common.select_device(args.device)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'preset':<8}{'ff_dim':>7}{'batch':>7}{'samples/s':>12}{'step s':>9}{'data path':>11}")
    with tempfile.TemporaryDirectory() as d:
        for preset in args.presets:
            r = bench(preset, device, args.batch, args.steps, Path(d))
            print(f"{r['preset']:<8}{r['ff_dim']:>7}{r['batch']:>7}{r['samples_per_s']:>12.1f}"
                  f"{r['step_s']:>9.3f}{100 * r['data_share']:>10.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
