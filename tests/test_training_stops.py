"""A training run stopped by a signal or killed, then resumed (issue 24): ``matte train`` exits 130 for
Ctrl-C and 143 for SIGTERM (as ``matte image`` and ``matte video`` do) after saving its checkpoint, and a
resumed run's metrics.jsonl holds each step once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mattecli.errors import MatteError
from mattecli.modelfiles.checkpoint import list_checkpoints
from mattecli.models.config import LITE
from mattecli.training import RunConfig, prepare_config, train
from mattecli.training.run_log import drop_records_after, read_metrics

TINY = LITE.replace(name="tiny", decoder_channels=8, fusion_channels=(8, 8), fusion_image_channels=8)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 64 x 64 image/alpha pairs (a bright disc on a dark background) and the tiny config."""
    root = tmp_path_factory.mktemp("stops")
    (root / "data" / "image").mkdir(parents=True)
    (root / "data" / "alpha").mkdir()
    yy, xx = np.mgrid[0:64, 0:64]
    for i in range(4):
        alpha = np.clip((14 + i - np.hypot(xx - 30 - i, yy - 34 + i)) / 4 + 0.5, 0, 1)
        image = alpha[..., None] * (200, 180, 160) + (1 - alpha[..., None]) * 40
        cv2.imwrite(str(root / "data" / "image" / f"s{i}.png"), image.astype(np.uint8))
        cv2.imwrite(str(root / "data" / "alpha" / f"s{i}.png"), (alpha * 255).round().astype(np.uint8))
    (root / "tiny.json").write_text(TINY.to_json())
    torch.set_num_threads(1)
    return root


def _steps(run: Path, kind: str = "train") -> list[int]:
    return [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["type"] == kind]


def test_a_resumed_run_logs_each_step_once(work: Path) -> None:
    """Killed after step 5 with the last checkpoint at step 4 (--stop-after leaves no checkpoint, as a
    SIGKILL does; the kill also tore the last line), then resumed: steps 5 and 6 were logged twice."""
    run = work / "resumed"
    cfg = RunConfig(
        data=str(work / "data"), model_config=str(work / "tiny.json"), pretrained=False, size=64,
        batch_size=2, workers=0, quiet=True, log_every=1, ckpt_every=2, steps=6, val=str(work / "data"),
        val_every=1, out=str(run), seed=1, stop_after=5,
    )  # fmt: skip
    assert train(cfg).stopped_early
    assert [s for s, _ in list_checkpoints(run)] == [2, 4]
    assert _steps(run) == [1, 2, 3, 4, 5]
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as log:
        log.write('{"type": "train", "st')  # a line torn by the kill
    train(prepare_config({"resume": str(run), "quiet": True}))
    assert _steps(run) == [1, 2, 3, 4, 5, 6]
    assert _steps(run, "val") == [1, 2, 3, 4, 5, 6]
    events = [r for r in read_metrics(run / "metrics.jsonl") if r.get("event") in ("start", "resume")]
    assert [(e["event"], e["step"]) for e in events] == [("start", 0), ("resume", 4)]
    assert events[1]["dropped_records"] == 3  # train 5, val 5, the torn line


def test_drop_records_after_keeps_the_file_when_nothing_is_later(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    lines = [{"type": "event", "event": "start", "step": 0}, {"type": "train", "step": 1}]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = log.stat().st_mtime_ns, log.read_text()
    assert drop_records_after(log, 1) == 0
    assert (log.stat().st_mtime_ns, log.read_text()) == before
    assert drop_records_after(tmp_path / "missing.jsonl", 3) == 0


def _train_in_a_child(work: Path, out: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "mattecli", "train", str(work / "data"), "--model-config", str(work / "tiny.json"),
        "--no-pretrained", "--size", "64", "--batch-size", "2", "--steps", "100000", "--log-every", "1",
        "--ckpt-every", "100000", "--threads", "1", "--workers", "0", "-q", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_a_checkpoint_and_exits_like_image_and_video(
    work: Path, tmp_path: Path, signum: int, status: int
) -> None:
    out = tmp_path / "run"
    child = _train_in_a_child(work, out)
    try:
        deadline = time.monotonic() + 240
        while not ((out / "metrics.jsonl").is_file() and _steps(out)):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "training never logged a step"
            time.sleep(0.05)
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    message = stderr.decode()
    assert child.returncode == status, message
    assert "Traceback" not in message
    checkpoints = [step for step, _ in list_checkpoints(out)]
    assert len(checkpoints) == 1 and checkpoints[0] == _steps(out)[-1]  # saved at the step it stopped at
    assert f"continue with: matte train --resume {out}" in " ".join(message.split())
    if signum == signal.SIGTERM:
        assert "stopped by SIGTERM" in message


@pytest.mark.parametrize("below", ["", "sub"])
def test_an_out_that_is_a_file_is_refused_before_training(tmp_path: Path, below: str) -> None:
    """--out notes.txt said 'notes.txt: File exists', after the model and the data were set up."""
    from mattecli.training.checkpointing import new_run_dir

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(MatteError, match=r"notes\.txt: is a file, not a folder; --out names the run folder"):
        new_run_dir(str(notes / below), "seg")
    assert notes.read_text() == "mine"
