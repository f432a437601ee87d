"""``matte video`` stopped by SIGTERM (``kill``) or SIGHUP (a closed SSH session) in the middle of a run:
the exit status says which signal, nothing appears under the final name, no hidden ``.partial`` file or
folder is left behind and no ffmpeg process outlives the command.

These run the real command in a child process (signals are delivered to the main thread of a real
interpreter, which CliRunner cannot imitate) with a tiny model on a clip long enough that the run is
still going when the signal arrives.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mattecli.video.ffmpeg import ffmpeg_exe

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not Path("/proc/self/cmdline").exists(),
    reason="POSIX signals and /proc (to find the ffmpeg processes) are needed",
)

#: Long enough that a run takes seconds even on a fast machine (the tiny model mattes ~75 frames/s here).
FRAMES = 3000


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """100 s of 64 x 48 test pattern at 30 fps with a tone (the tone makes the encoder read the input)."""
    path = tmp_path_factory.mktemp("long") / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc=size=64x48:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
         "-frames:v", str(FRAMES), "-t", str(FRAMES / 30), "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _ffmpeg_processes(marker: str) -> list[int]:
    """Live (not zombie) ffmpeg processes whose command line mentions ``marker`` (a test's folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and "ffmpeg" in command[0].decode() and marker.encode() in b" ".join(command):
                found.append(int(entry.name))
    return found


def _started(folder: Path, sequence: bool) -> bool:
    """Whether the run is under way: the encoder has written into the hidden partial file or folder."""
    for entry in folder.iterdir():
        if ".partial" not in entry.name:
            continue
        if sequence and entry.is_dir() and any(entry.iterdir()):
            return True
        if not sequence and entry.is_file() and entry.stat().st_size > 0:
            return True
    return False


@pytest.mark.parametrize(
    ("signum", "output"),
    [(signal.SIGTERM, "out.mov"), (signal.SIGTERM, "frames"), (signal.SIGHUP, "out.mov")],
)
def test_signal_stops_the_run_and_cleans_up(long_clip, tiny_weights, tmp_path, signum, output):
    work = tmp_path / "work"
    work.mkdir()
    clip = work / "clip.mp4"
    shutil.copyfile(long_clip, clip)  # the folder's name then marks this test's ffmpeg processes
    out = work / output
    command = [sys.executable, "-m", "mattecli", "video", str(clip), "-o", str(out),
               "--model", str(tiny_weights), "--device", "cpu", "--max-size", "64"]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not _started(work, sequence=output == "frames"):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the run did not start writing"
            time.sleep(0.02)
        running = _ffmpeg_processes(str(work))
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert len(running) == 2  # the decoder and the encoder were at work when the signal came
    time.sleep(0.5)  # an orphaned encoder would still be finishing its file now
    assert not out.exists()
    assert sorted(p.name for p in work.iterdir()) == ["clip.mp4"]  # no hidden .partial left
    assert _ffmpeg_processes(str(work)) == []
    assert child.returncode == 128 + signum, stderr.decode()
    assert f"stopped by {signal.Signals(signum).name}" in stderr.decode()
    assert "Traceback" not in stderr.decode()
