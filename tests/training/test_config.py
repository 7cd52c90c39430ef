"""training.config: presets, documented fields, overrides."""

import dataclasses
import json

import pytest

from training import config as C


def _flat(cfg):
    out = {}

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, prefix + k + ".")
            else:
                out[prefix + k] = v
    walk(C.to_dict(cfg), "")
    return out


def test_every_field_is_documented():
    docs = C.describe()
    assert len(docs) > 60
    assert all(len(d) > 10 for d in docs.values()), [k for k, d in docs.items() if len(d) <= 10]


def test_paper_preset_has_the_papers_numbers():
    cfg = C.resolve("paper")
    assert (cfg.align.tau, cfg.align.alpha, cfg.align.k, cfg.align.beta) == (0.01, 4.5, 0.075, 3.0)
    assert (cfg.align.peak_lr, cfg.align.batch_size, cfg.align.grad_clip, cfg.align.head_lr_mult) == \
        (1e-4, 256, 2.5, 0.1)
    assert (cfg.teacher.batch_size, cfg.teacher.backbone_lr_mult, cfg.teacher.multi_label) == (64, 0.05, False)
    assert (cfg.finetune.peak_lr, cfg.finetune.start_lr, cfg.finetune.optimizer) == (1e-5, 1e-6, "adam")
    assert cfg.align.optimizer == "adamw" and cfg.ecg.ff_dim == 2048


def test_cpu_differs_from_paper_only_where_documented():
    paper, cpu = _flat(C.resolve("paper")), _flat(C.resolve("cpu"))
    diff = {k for k in paper if paper[k] != cpu[k]} - {"preset"}
    assert diff == set(C.CPU_DIFFERENCES)
    assert all(len(why) > 10 for _, why in C.CPU_DIFFERENCES.values())


def test_overrides_parse_strings_and_reject_unknown(tmp_path):
    cfg = C.resolve("cpu", C.parse_overrides(["align.epochs=3", "align.tau=0.05", "teacher.multi_label=false",
                                              "align.loss=supcma", "seed=4"]))
    assert (cfg.align.epochs, cfg.align.tau, cfg.teacher.multi_label, cfg.align.loss, cfg.seed) == \
        (3, 0.05, False, "supcma", 4)
    with pytest.raises(C.ConfigError, match="Unknown config key"):
        C.resolve("paper", {"align.nope": 1})
    with pytest.raises(C.ConfigError, match="Unknown preset"):
        C.resolve("gpu")
    with pytest.raises(C.ConfigError, match="weighting"):
        C.resolve("paper", {"align.weighting": "cubic"})
    with pytest.raises(C.ConfigError, match="integer"):
        C.resolve("paper", {"align.epochs": 2.5})
    with pytest.raises(C.ConfigError, match="key=value"):
        C.parse_overrides(["align.epochs"])
    C.save_json(cfg, tmp_path / "c.json")
    back = C.from_dict(json.loads((tmp_path / "c.json").read_text()))
    assert dataclasses.asdict(back) == dataclasses.asdict(cfg)
