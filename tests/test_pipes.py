"""`matte image` in a pipe (issue 16 §3): one image in on stdin, the result out on stdout, messages on stderr.

Real processes and real pipes (``sys.executable -m mattecli``), so what is tested is what a shell sees:
stdout carries the image bytes and nothing else.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_scene
from PIL import Image

HEIGHT, WIDTH = 48, 64


def _png_bytes(mode: str = "RGB") -> bytes:
    image, _ = synthetic_scene(HEIGHT, WIDTH)
    picture = Image.fromarray((image * 255 + 0.5).astype(np.uint8)).convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _matte(*args: str, stdin: bytes | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mattecli", "image", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        **kwargs,
    )


def _decoded(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def test_stdin_to_stdout_gives_the_same_cut_out_as_files(tmp_path: Path, tiny_weights: Path) -> None:
    data = _png_bytes()
    proc = _matte("-", "-o", "-", "--model", str(tiny_weights), stdin=data)
    assert proc.returncode == 0, proc.stderr.decode()
    picture = _decoded(proc.stdout)
    assert picture.format == "PNG" and picture.mode == "RGBA" and picture.size == (WIDTH, HEIGHT)
    # Messages went to stderr (the model line), none to stdout.
    assert b"model" in proc.stderr
    source = tmp_path / "in.png"
    source.write_bytes(data)
    assert _matte(str(source), "-o", str(tmp_path / "out.png"), "--model", str(tiny_weights)).returncode == 0
    with Image.open(tmp_path / "out.png") as from_file:
        expected = np.asarray(from_file)
    np.testing.assert_array_equal(np.asarray(picture), expected)
    alpha = expected[..., 3]
    assert alpha.max() - alpha.min() > 30, "a matte with structure, not a constant"


def test_stdin_without_output_writes_stdout_in_the_format_asked_for(tiny_weights: Path) -> None:
    proc = _matte(
        "-", "--alpha-only", "--format", "jpg", "--model", str(tiny_weights), "-q", stdin=_png_bytes()
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    picture = _decoded(proc.stdout)
    assert picture.format == "JPEG" and picture.mode == "L" and picture.size == (WIDTH, HEIGHT)
    proc = _matte(
        "-", "--bg", "white", "--format", "webp", "--model", str(tiny_weights), stdin=_png_bytes("L")
    )
    assert proc.returncode == 0, proc.stderr.decode()
    picture = _decoded(proc.stdout)
    assert picture.format == "WEBP" and picture.mode == "RGB" and picture.size == (WIDTH, HEIGHT)


def test_file_to_stdout_and_stdin_to_file(tmp_path: Path, tiny_weights: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(_png_bytes())
    proc = _matte(str(source), "-o", "-", "--model", str(tiny_weights))
    assert proc.returncode == 0, proc.stderr.decode()
    assert _decoded(proc.stdout).mode == "RGBA"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "tiny.safetensors"]
    target = tmp_path / "from-pipe.png"
    proc = _matte("-", "-o", str(target), "--model", str(tiny_weights), stdin=_png_bytes())
    assert proc.returncode == 0 and proc.stdout == b"", proc.stderr.decode()
    with Image.open(target) as picture:
        assert picture.mode == "RGBA" and picture.size == (WIDTH, HEIGHT)
    # Stdin is one file named on the command line: an existing output is an error.
    proc = _matte("-", "-o", str(target), "--model", str(tiny_weights), stdin=_png_bytes())
    assert proc.returncode == 1 and b"exists (use --overwrite)" in proc.stderr


def test_garbage_on_stdin_is_one_line_on_stderr_and_nothing_on_stdout(tiny_weights: Path) -> None:
    proc = _matte("-", "-o", "-", "--model", str(tiny_weights), stdin=b"this is not an image\n" * 10)
    assert proc.returncode == 1
    assert proc.stdout == b""
    lines = [line for line in proc.stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: <stdin>: not an image")


def test_empty_stdin_is_an_error(tiny_weights: Path) -> None:
    proc = _matte("-", "--model", str(tiny_weights), stdin=b"")
    assert proc.returncode == 1 and proc.stdout == b""
    assert b"<stdin>: is empty" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-", "-o", "-", "--preview"], b"--preview needs a file or folder output"),
        (["-", "also.png", "-o", "out/"], b"- (stdin) must be the only input"),
    ],
)
def test_refusals(tiny_weights: Path, args: list[str], message: bytes) -> None:
    proc = _matte(*args, "--model", str(tiny_weights), stdin=_png_bytes())
    assert proc.returncode == 1 and proc.stdout == b""
    assert message in proc.stderr


def test_image_bytes_are_never_written_to_a_terminal(tmp_path: Path, tiny_weights: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(_png_bytes())
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mattecli", "image", str(source), "-o", "-", "--model", str(tiny_weights)],
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=300,
        )
        os.set_blocking(leader, False)
        try:
            shown = os.read(leader, 65536)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 1
    assert b"will not write image bytes to a terminal" in proc.stderr
    assert shown == b""


def test_a_reader_that_stops_early_is_one_line_not_a_traceback(tmp_path: Path, tiny_weights: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(_png_bytes())
    command = [
        sys.executable,
        "-m",
        "mattecli",
        "image",
        str(source),
        "-o",
        "-",
        "--model",
        str(tiny_weights),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()  # like `| head -c0`: nobody reads the image
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=300)
    assert code == 1
    assert "Traceback" not in stderr and "broken pipe" in stderr
