"""`matte image` and an input's own transparency (kept by default, --ignore-input-alpha), and the progress
of the full-resolution tiles of one large image (a bar on a terminal, nothing elsewhere)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import make_tiny_net, synthetic_scene
from PIL import Image
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.photo.outputs import OutputOptions
from mattecli.photo.pipeline import run_jobs
from mattecli.photo.planning import plan_jobs

runner = CliRunner()


def _half_transparent(path: Path) -> Path:
    image, _ = synthetic_scene(48, 64)
    rgba = np.dstack([(image * 255 + 0.5).astype(np.uint8), np.full((48, 64), 255, np.uint8)])
    rgba[:, :32, 3] = 0  # the left half was cut away already
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def _alpha(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGBA"))[..., 3] if picture.mode != "L" else np.asarray(picture)


def test_input_transparency_is_kept_unless_ignored(tmp_path: Path, tiny_weights: Path) -> None:
    source = _half_transparent(tmp_path / "cut.png")
    for extra, name in (([], "kept.png"), (["--alpha-only"], "kept-matte.png")):
        result = runner.invoke(
            app, ["image", str(source), "-o", str(tmp_path / name), "--model", str(tiny_weights), *extra]
        )
        assert result.exit_code == 0, result.output
        alpha = _alpha(tmp_path / name)
        assert (alpha[:, :32] == 0).all(), "transparent in the input stays transparent"
        assert alpha[:, 32:].max() > 0
    result = runner.invoke(
        app,
        [
            "image",
            str(source),
            "-o",
            str(tmp_path / "rgb.png"),
            "--ignore-input-alpha",
            "--model",
            str(tiny_weights),
        ],
    )
    assert result.exit_code == 0, result.output
    ignored = _alpha(tmp_path / "rgb.png")
    assert ignored[:, :32].max() > 10, "the RGB alone is matted: the network's own matte shows there"
    np.testing.assert_array_equal(ignored[:, 32:], _alpha(tmp_path / "kept.png")[:, 32:])


def test_help_explains_the_input_alpha_flag() -> None:
    result = runner.invoke(app, ["image", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert (
        "By default an input's own transparency is kept: pixels transparent in the input stay transparent; this flag mattes the RGB alone."
        in text
    )


def test_run_jobs_reports_each_tile_of_a_large_image(tmp_path: Path) -> None:
    from mattecli.inference import Matter

    source = tmp_path / "big.png"
    image, _ = synthetic_scene(150, 200)
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(source)
    matter = Matter(
        make_tiny_net(spread=20.0), device="cpu", max_size=64, tile_size=64, refine=True, refinement="tiles"
    )
    calls: list[tuple[int, int]] = []
    options = OutputOptions()
    jobs = plan_jobs([str(source)], tmp_path / "out.png", options)
    summary = run_jobs(matter, jobs, options, on_tile=lambda done, total: calls.append((done, total)))
    assert summary.done == 1
    total = calls[-1][1]
    assert total > 1 and calls == [(done, total) for done in range(1, total + 1)]


def test_tile_progress_bar_on_a_terminal_only(tmp_path: Path, tiny_weights: Path) -> None:
    source = tmp_path / "big.png"
    image, _ = synthetic_scene(200, 1100)  # two tiles of 1024 px
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(source)
    command = [
        sys.executable,
        "-m",
        "mattecli",
        "image",
        str(source),
        "--model",
        str(tiny_weights),
        "--refine",
    ]
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [*command, "-o", str(tmp_path / "tty.png")],
            stderr=follower,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0, shown.decode(errors="replace")
    # The default refinement (guided, in the band) counts its 256 px windows: 5 of them meet the band here.
    assert b"refining" in shown and re.search(rb"(?<!\d)(\d+)/\1(?!\d)", shown)
    piped = subprocess.run([*command, "-o", str(tmp_path / "pipe.png")], capture_output=True, timeout=300)
    assert piped.returncode == 0 and b"refining" not in piped.stderr


def test_an_output_name_too_long_fails_that_image_only(tmp_path: Path) -> None:
    """In a folder, an image whose NAME.matte.png is over the file system's 255 bytes ended the whole
    batch with 'File name too long': no summary, and the images after it never ran."""
    from mattecli.inference import Matter

    shots = tmp_path / "shots"
    shots.mkdir()
    image, _ = synthetic_scene(24, 32)
    pixels = (image * 255 + 0.5).astype(np.uint8)
    for name in ("a.png", "n" * 250 + ".png", "z.png"):
        Image.fromarray(pixels).save(shots / name)
    matter = Matter(make_tiny_net(), device="cpu", max_size=64)
    options = OutputOptions()
    summary = run_jobs(matter, plan_jobs([str(shots)], None, options), options)
    assert summary.done == 2 and (shots / "z.matte.png").exists()
    assert [
        (path.name[:3], reason.endswith(".matte.png: File name too long")) for path, reason in summary.failed
    ] == [("nnn", True)]
