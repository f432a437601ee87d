"""`matte image` stopped by Ctrl-C, SIGTERM or SIGHUP mid-batch (issue 14 item 7): the exit code says which
signal, and no hidden temporary file (``.NAME.XXXX.partial.png``) is left behind.

The signal is sent while an output is being written (issue 24 item 7: sent at a random moment it landed
between writes, so a cleanup that no longer ran went unnoticed). To make that moment certain, the child
process writes its temporaries slowly: ``open`` is wrapped so that a file whose name holds ``.partial``
takes its bytes 4 KB at a time with a pause between; everything else is mattecli as installed."""

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


#: ``python -m mattecli`` with slow writes of temporaries (see the module docstring).
SLOW_WRITER = """
import builtins, sys, time

real_open = builtins.open


class SlowWriter:
    def __init__(self, stream):
        self.stream = stream

    def write(self, data):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), 4096):
            self.stream.write(view[start : start + 4096])
            self.stream.flush()
            time.sleep(0.02)
        return len(view)

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.close()


def slow_open(file, mode="r", *args, **kwargs):
    stream = real_open(file, mode, *args, **kwargs)
    return SlowWriter(stream) if "w" in mode and ".partial" in str(file) else stream


builtins.open = slow_open
from mattecli.cli.app import main

sys.argv[0] = "matte"
main()
"""


def _wait_for_a_temporary(folder: Path, proc: subprocess.Popen, timeout: float = 240.0) -> Path:
    """The first output's temporary, once some of its bytes are on disk (the write is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        partial = [p for p in folder.glob(".*.partial*")] if folder.is_dir() else []
        if partial and partial[0].stat().st_size > 0:
            return partial[0]
        if proc.poll() is not None:
            pytest.fail(f"matte image ended (exit {proc.returncode}) before writing anything")
        time.sleep(0.005)
    pytest.fail("no output appeared in time")


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"),
     (signal.SIGTERM, 143, "stopped by SIGTERM"),
     (signal.SIGHUP, 129, "stopped by SIGHUP")],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)  # fmt: skip
def test_signal_while_writing_stops_cleanly(
    tmp_path: Path, tiny_weights: Path, signum: signal.Signals, code: int, said: str
) -> None:
    shots = _folder(tmp_path / "shots")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-c",
        SLOW_WRITER,
        "image",
        str(shots),
        "-o",
        str(out),
        "-m",
        str(tiny_weights),
    ]
    # cwd: not the source tree, whose mattecli would shadow the installed one on sys.path[0].
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path) as proc:
        temporary = _wait_for_a_temporary(out, proc)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr.decode()
    assert stderr.decode().splitlines()[-1] == said
    assert "Traceback" not in stderr.decode()
    assert stdout == b""
    written = sorted(out.iterdir())
    assert not temporary.exists()
    assert not [path.name for path in written if path.name.startswith(".") or ".partial" in path.name]
    assert len(written) < IMAGES, "the signal must have arrived mid-run"
    for path in written:  # every file under a final name is complete
        with Image.open(path) as picture:
            picture.load()
            assert picture.mode == "RGBA" and picture.size == (320, 240)
