"""`matte image` stopped by SIGTERM or SIGHUP mid-batch (issue 14 item 7): the exit code says which signal,
and no hidden temporary file (``.NAME.XXXX.partial.png``) is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_scene
from PIL import Image

IMAGES = 16


def _folder(folder: Path) -> Path:
    folder.mkdir()
    for index in range(IMAGES):
        image, _ = synthetic_scene(240, 320, seed=index)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{index:02d}.png")
    return folder


def _wait_for_first_output(folder: Path, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.is_dir() and any(folder.glob("[0-9]*.png")):
            return
        if proc.poll() is not None:
            pytest.fail(f"matte image ended (exit {proc.returncode}) before writing anything")
        time.sleep(0.01)
    pytest.fail("no output appeared in time")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_mid_batch_stops_cleanly(tmp_path: Path, tiny_weights: Path, signum: signal.Signals) -> None:
    shots = _folder(tmp_path / "shots")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "mattecli",
        "image",
        str(shots),
        "-o",
        str(out),
        "--model",
        str(tiny_weights),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        _wait_for_first_output(out, proc)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr.decode()
    assert f"stopped by {signum.name}" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert stdout == b""
    written = sorted(out.iterdir())
    assert not [path.name for path in written if path.name.startswith(".") or ".partial" in path.name]
    assert 1 <= len(written) < IMAGES, "the signal must have arrived mid-run"
    for path in written:  # every file under a final name is complete
        with Image.open(path) as picture:
            picture.load()
            assert picture.mode == "RGBA" and picture.size == (320, 240)
