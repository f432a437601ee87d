"""A real two-process ``torchrun`` (gloo, CPU) matches one process on the same global batch.

The comparison is made exact rather than approximate:
* the seg stage updates BN statistics, so the two processes synchronise them (CpuSyncBatchNorm): both
  runs normalise with the statistics of the same 4 samples;
* its loss is a mean over pixels of equal-sized shards, so DDP's average of the two processes' gradients
  is the gradient of the one-process loss;
* the run is in float64 (``--precision fp64``): a randomly initialised network amplifies float32
  rounding (different summation orders) by orders of magnitude within a few steps, which would hide
  a real mismatch behind a loose tolerance. In float64 the two runs agree to ~1e-12.
The DenseNet-201 encoder is used with narrow decoders, since float64 depthwise convolutions (Lite0) are
very slow on CPUs.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import child_env

from mattecli.modelfiles.checkpoint import load_checkpoint
from mattecli.models.config import PAPER
from mattecli.training import RunConfig, train
from mattecli.training.distributed import CpuSyncBatchNorm
from mattecli.training.run_log import read_metrics

NARROW_DENSENET = PAPER.replace(
    name="narrow-densenet", decoder_channels=8, fusion_channels=(8, 8), fusion_image_channels=8
)


def make_pairs(root: Path, n: int = 8, side: int = 80) -> Path:
    rng = np.random.default_rng(3)
    (root / "image").mkdir(parents=True)
    (root / "alpha").mkdir()
    yy, xx = np.mgrid[0:side, 0:side]
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2) * side
        alpha = np.clip((0.25 * side - np.hypot(xx - cx, yy - cy)) / 5 + 0.5, 0, 1)
        image = alpha[..., None] * rng.uniform(150, 255, 3) + (1 - alpha[..., None]) * rng.uniform(
            0, 90, (side, side, 3)
        )
        cv2.imwrite(str(root / "image" / f"p{i}.png"), image.astype(np.uint8))
        cv2.imwrite(str(root / "alpha" / f"p{i}.png"), (alpha * 255).round().astype(np.uint8))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    data = make_pairs(tmp_path / "data")
    model_config = tmp_path / "narrow.json"
    model_config.write_text(NARROW_DENSENET.to_json())
    settings = dict(
        stage="seg",
        size=32,
        batch_size=4,
        steps=3,
        workers=0,
        seed=11,
        precision="fp64",
        log_every=1,
        ckpt_every=1000,
        pretrained=False,
    )
    torch.set_num_threads(1)
    single = train(
        RunConfig(
            data=str(data), model_config=str(model_config), out=str(tmp_path / "one"), quiet=True, **settings
        )
    )

    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items() if k != "pretrained"]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        "-m",
        "mattecli",
        "train",
        str(data),
        "--model-config",
        str(model_config),
        "--no-pretrained",
        "--out",
        str(tmp_path / "two"),
        "-q",
        *flags,
    ]
    env = child_env(OMP_NUM_THREADS="1")  # the mattecli under test: the wheel with MATTE_REQUIRE_INSTALLED
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one, _ = load_checkpoint(single.checkpoint)
    two, _ = load_checkpoint(tmp_path / "two")
    assert two["world_size"] == 2 and len(two["rng"]) == 2 and two["step"] == 3
    compared = 0
    for key, reference in one["model"].items():
        other = two["model"][key]
        if reference.is_floating_point():
            torch.testing.assert_close(other, reference, rtol=1e-9, atol=1e-11, msg=key)
            compared += 1
        else:
            assert torch.equal(other, reference), key
    assert compared > 100
    # The weights did move (otherwise agreement would prove nothing), and the BN statistics too.
    initial = train_initial_state(model_config)
    moved = [
        k
        for k, v in one["model"].items()
        if v.is_floating_point() and not torch.equal(v, initial[k].double())
    ]
    assert any(k.endswith("running_var") for k in moved) and any(k.endswith("conv.weight") for k in moved)

    # Only rank 0 wrote: one set of training records, one start event that knows both processes.
    records = read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2, 3]
    starts = [r for r in records if r.get("event") == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2
    assert json.loads(two["config"])["batch_size"] == 4


def train_initial_state(model_config: Path) -> dict[str, torch.Tensor]:
    from mattecli.models import LateFusionNet
    from mattecli.models.config import ModelConfig
    from mattecli.training.loader import seed_rngs

    seed_rngs(11)
    return LateFusionNet(ModelConfig.from_json(model_config.read_text())).state_dict()


def test_cpu_sync_batchnorm_is_plain_batchnorm_in_one_process() -> None:
    """Without a process group it must behave exactly like BatchNorm2d (train and eval)."""
    torch.manual_seed(0)
    plain = torch.nn.BatchNorm2d(5, momentum=0.3)
    synced = CpuSyncBatchNorm(5, momentum=0.3)
    synced.load_state_dict(plain.state_dict())
    x = torch.randn(3, 5, 4, 4)
    assert torch.equal(plain(x), synced(x))
    assert torch.equal(plain.running_var, synced.running_var)
    plain.eval()
    synced.eval()
    assert torch.equal(plain(x), synced(x))


@pytest.mark.parametrize("stage", ["seg", "fusion"])
def test_sync_conversion_keeps_state_dict_keys(stage: str) -> None:
    from mattecli.models import LateFusionNet
    from mattecli.models.config import LITE
    from mattecli.training.distributed import convert_sync_batchnorm
    from mattecli.training.stages import bn_training_modules

    tiny = LITE.replace(name="t", decoder_channels=8, fusion_channels=(8,), fusion_image_channels=8)
    model = LateFusionNet(tiny)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for module in bn_training_modules(model, stage):
        convert_sync_batchnorm(module, torch.device("cpu"))
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before)
    synced = (
        {type(m) for m in model.fusion.modules()}
        if stage == "fusion"
        else {type(m) for m in model.encoder.modules()}
    )
    assert CpuSyncBatchNorm in synced
