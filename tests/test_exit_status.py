"""One exit-status rule for every command (issue 24): a usage error exits 2, whether click cannot parse the
value (``--max-size abc``) or mattecli finds it out of range (``--max-size 100``) or two options exclude
each other; every other error (a missing file, a bad model) exits 1. Always one line, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.video.ffmpeg import ffmpeg_exe


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(path)
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=5",
         "-frames:v", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _one_line(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert len(lines) == 1 or (code == 2 and "Usage:" in result.stderr), result.stderr
    assert fragment in result.stderr, result.stderr


IMAGE_USAGE = [
    (["--max-size", "abc"], "Invalid value for '--max-size'"),  # click's own usage error
    (["--max-size", "100"], "--max-size must be a positive multiple of 32, got 100"),
    (["--depth", "12"], "--depth must be 8 or 16, got 12"),
    (["--depth", "16"], "--depth 16 applies to --alpha-only output"),
    (["--alpha-only", "--bg", "white"], "--alpha-only and --bg exclude each other"),
    (["--format", "gif"], "unknown --format gif"),
    (["--device", "toaster"], "unknown device 'toaster'"),
]


@pytest.mark.parametrize(("option", "message"), IMAGE_USAGE)
def test_image_usage_errors_exit_2(photo, tiny_weights, tmp_path, option, message) -> None:
    out = tmp_path / "out"
    result = _invoke("image", str(photo), "-o", f"{out}/", "-m", str(tiny_weights), *option)
    _one_line(result, 2, message)
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--temporal", "1.5"], "--temporal must be between 0 and 0.9, got 1.5"),
     (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
     (["--codec", "gif"], "unknown codec 'gif'"),
     (["--start", "soon"], "--start must be seconds or [[hh:]mm:]ss, got 'soon'")],
)  # fmt: skip
def test_video_usage_errors_exit_2(clip, tiny_weights, tmp_path, option, message) -> None:
    out = tmp_path / "out.mov"
    _one_line(_invoke("video", str(clip), "-o", str(out), "-m", str(tiny_weights), *option), 2, message)
    assert not out.exists()


def test_eval_and_serve_usage_errors_exit_2(photo, tiny_weights, tmp_path) -> None:
    _one_line(_invoke("eval", str(tmp_path), "-m", str(tiny_weights), "--limit", "0"), 2, "--limit must be")
    _one_line(_invoke("serve", "--port", "70000"), 2, "--port must be between 0 and 65535, got 70000")


def test_other_errors_still_exit_1(photo, tiny_weights, tmp_path) -> None:
    _one_line(_invoke("image", str(tmp_path / "missing.png"), "-m", str(tiny_weights)), 1, "missing.png")
    out = tmp_path / "o.png"
    _one_line(
        _invoke("image", str(photo), "-o", str(out), "-m", str(tmp_path / "none.safetensors")), 1, "none"
    )
    assert not out.exists()


def test_the_python_api_still_raises_matte_error() -> None:
    """UsageError is a MatteError: code that catches MatteError keeps working."""
    from mattecli.errors import MatteError, UsageError
    from mattecli.video.limits import check_strength

    with pytest.raises(MatteError) as caught:
        check_strength(2.0)
    assert isinstance(caught.value, UsageError)


def test_a_real_process_exits_2_on_a_usage_error(photo, tmp_path) -> None:
    """The status a shell sees, in a real process: an unparsable value and an out-of-range one alike."""
    import sys

    from conftest import child_env

    for value, said in (("abc", "Invalid value for '--max-size'"), ("100", "--max-size must be a positive")):
        result = subprocess.run(
            [sys.executable, "-m", "mattecli", "image", str(photo), "--max-size", value],
            env=child_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert said in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]
