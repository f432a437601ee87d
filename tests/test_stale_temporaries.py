"""Hidden temporaries of runs killed outright (SIGKILL: no handler runs) are removed by the next run that
writes the same output, when their process is gone (issue 24); a live run's temporary is left alone.

The killed runs are real child processes: ``matte_video`` with a slow frame function, and a writer that
holds :func:`mattecli.atomic.atomic_output` open.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_scene
from PIL import Image
from typer.testing import CliRunner

from mattecli.atomic import atomic_folder, atomic_output, remove_stale_temporaries
from mattecli.cli.app import app
from mattecli.errors import MatteError
from mattecli.video import matte_video
from mattecli.video.ffmpeg import ffmpeg_exe

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: A child that mattes a clip slowly (one batch every half second) into argv[2].
_SLOW_VIDEO = """
import sys, time
import numpy as np
from mattecli.video import matte_video

def slow(frames):
    time.sleep(0.5)
    return np.full(frames.shape[:3], 0.5, np.float32), None

matte_video(sys.argv[1], sys.argv[2], slow, batch_size=2, temporal=0.0, progress=False)
"""

#: A child that holds a temporary for argv[1] open, says so, and waits to be killed.
_HOLDER = """
import sys, time
from mattecli.atomic import atomic_output

with atomic_output(sys.argv[1]) as temporary:
    temporary.write_bytes(b"half")
    print(temporary.name, flush=True)
    time.sleep(600)
"""


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _half_matte(frames: np.ndarray) -> tuple[np.ndarray, None]:
    return np.full(frames.shape[:3], 0.5, np.float32), None


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=32x24:rate=10",
         "-frames:v", "40", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _kill_when(started, child: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not started():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, f"the child never started {what}"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()


@pytest.mark.parametrize("output", ["out.mov", "frames"])
def test_a_killed_video_runs_temporary_is_removed_by_the_next_run(clip, tmp_path, output):
    work = tmp_path / "work"
    work.mkdir()
    out = work / output
    child = subprocess.Popen([sys.executable, "-c", _SLOW_VIDEO, str(clip), str(out)], stderr=subprocess.PIPE)

    def encoding() -> bool:
        return any(
            (p.is_file() and p.stat().st_size > 0) or (p.is_dir() and any(p.iterdir()))
            for p in work.iterdir()
            if ".partial" in p.name
        )

    _kill_when(encoding, child, "encoding")
    time.sleep(0.5)  # the orphaned encoder finishes with the temporary
    left = _hidden(work)
    assert len(left) == 1 and f".{child.pid}-" in left[0] and ".partial" in left[0]
    assert not out.exists()
    report = matte_video(clip, out, _half_matte, temporal=0.0, progress=False)
    assert report.frames == 40
    assert _hidden(work) == []  # the killed run's temporary is gone, and ours was moved into place
    assert sorted(p.name for p in work.iterdir()) == [output]


def test_a_killed_image_writers_temporary_is_removed_by_the_next_matte_image(tmp_path, tiny_weights):
    # A folder this process has not written to yet: it lists a folder's temporaries once.
    shots = tmp_path / "shots"
    shots.mkdir()
    source = shots / "a.png"
    image, _ = synthetic_scene(48, 64)
    Image.fromarray((image * 255).astype(np.uint8)).save(source)
    out = shots / "a.matte.png"
    child = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    name = child.stdout.readline().strip()
    _kill_when(lambda: True, child, "writing")
    assert _hidden(shots) == [name]
    result = CliRunner().invoke(app, ["image", str(source), "--model", str(tiny_weights), "-q"])
    assert result.exit_code == 0, result.output
    assert _hidden(shots) == []
    with Image.open(out) as written:
        assert written.size == (64, 48) and written.mode == "RGBA"


def test_a_live_runs_temporary_and_other_outputs_temporaries_stay(tmp_path):
    out = tmp_path / "x.png"
    child = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        live = child.stdout.readline().strip()
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
        pid = int(dead.stdout)  # a process that has ended
        host = live.split(".")[2].split("-")[1]
        others = [
            f".y.{pid}-{host}-0123abcd.partial.png",  # another output's
            f".x.{pid}-abcdef-0123abcd.partial.png"
            if host != "abcdef"
            else f".x.{pid}-fedcba-0123abcd.partial.png",
            ".x.0123abcd.partial.png",  # an older version's (owner unknown)
        ]
        for other in others:
            (tmp_path / other).write_bytes(b"x")
        stale = tmp_path / f".x.{pid}-{host}-89abcdef.partial.png"
        stale.write_bytes(b"x")
        assert remove_stale_temporaries(out) == [stale]
        with atomic_output(out, overwrite=True) as temporary:
            temporary.write_bytes(b"done")
        assert out.read_bytes() == b"done"
        assert _hidden(tmp_path) == sorted([live, *others])
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_the_temporary_name_says_which_process_on_which_machine_owns_it(tmp_path):
    with atomic_output(tmp_path / "clip.matte.mov") as temporary:
        assert re.fullmatch(
            rf"\.clip\.matte\.{os.getpid()}-[0-9a-f]{{6}}-[0-9a-f]{{8}}\.partial\.mov", temporary.name
        )


@pytest.mark.parametrize("below", ["out.png", "sub/out.png"])
def test_an_output_below_a_file_says_that_the_file_is_in_the_way(tmp_path: Path, below: str) -> None:
    """-o photo.jpg/out.png said 'photo.jpg: cannot create output folder (File exists)'."""
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not a folder")
    message = r"photo\.jpg: is a file, not a folder: cannot write .*out\.png inside it"
    with pytest.raises(MatteError, match=message), atomic_output(photo / below):
        pass
    with (
        pytest.raises(MatteError, match=r"photo\.jpg: is a file, not a folder"),
        atomic_folder(photo / "frames"),
    ):
        pass
    assert photo.read_bytes() == b"not a folder"
