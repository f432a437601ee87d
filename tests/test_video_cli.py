"""``matte video`` from the command line, with a tiny random model and a clip made by ffmpeg here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.video import probe
from mattecli.video.ffmpeg import ffmpeg_exe


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """15 frames of 48 x 36 test pattern at 29.97 fps with a tone."""
    path = tmp_path / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc=size=48x36:rate=30000/1001",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-frames:v", "15", "-t", "0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def run(*args: str):
    return CliRunner().invoke(app, ["video", *args])


def model_args(weights: Path) -> list[str]:
    return ["--model", str(weights), "--device", "cpu", "--max-size", "64"]


def test_default_output_is_prores_with_alpha_next_to_the_input(clip, tiny_weights):
    result = run(str(clip), *model_args(tiny_weights))
    assert result.exit_code == 0, result.output
    out = clip.with_name("clip.matte.mov")
    info = probe(out)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("prores", "aac", 48, 36)
    assert "wrote" in result.stderr and "15 frames" in result.stderr and "audio kept" in result.stderr


def test_composite_with_background_colour_to_mp4(clip, tiny_weights, tmp_path):
    out = tmp_path / "out.mp4"
    result = run(str(clip), "--bg", "white", "-o", str(out), "--batch-size", "2", "--temporal", "0",
                 *model_args(tiny_weights))  # fmt: skip
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.duration == pytest.approx(probe(clip).duration, abs=0.05)


def test_part_of_the_clip_as_png_frames_quietly(clip, tiny_weights, tmp_path):
    out = tmp_path / "frames"
    result = run(str(clip), "-o", str(out), "--start", "0.1", "--end", "0.4", "-q", *model_args(tiny_weights))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert 8 <= len(os.listdir(out)) <= 10  # 0.3 s at 29.97 fps


def test_tta_changes_the_mattes_of_the_frames(clip, tiny_weights, tmp_path):
    import numpy as np
    from PIL import Image

    outputs = {}
    for name, extra in (("plain", []), ("tta", ["--tta"])):
        out = tmp_path / name
        result = run(str(clip), "-o", str(out), "--end", "0.2", *extra, *model_args(tiny_weights))
        assert result.exit_code == 0, result.output
        assert ("mirrored TTA" in result.stderr) == bool(extra)
        outputs[name] = [np.asarray(Image.open(p))[..., 3] / 255 for p in sorted(out.iterdir())]
    assert len(outputs["tta"]) == len(outputs["plain"]) >= 5
    assert all(np.abs(a - b).mean() > 0.005 for a, b in zip(outputs["tta"], outputs["plain"], strict=True))


def test_corrupt_input_is_one_line_and_exit_1(tmp_path, tiny_weights):
    bad = tmp_path / "bad.mov"
    bad.write_bytes(b"this is not a video" * 50)
    result = run(str(bad), *model_args(tiny_weights))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "bad.mov: cannot read video" in lines[0]
    assert "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == ["bad.mov", "tiny.safetensors"]


def test_existing_output_is_refused_before_the_model_loads(clip, tmp_path):
    out = tmp_path / "o.webm"
    out.write_bytes(b"precious")
    result = run(str(clip), "-o", str(out), "--model", str(tmp_path / "no-such-model.safetensors"))
    assert result.exit_code == 1
    assert "o.webm: exists (use --overwrite)" in result.stderr
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--temporal", "1.5"], "--temporal must be between 0 and 0.9"),
     (["--batch-size", "0"], "--batch-size must be at least 1"),
     (["-o", "x.mp4"], "has no alpha channel"),
     (["--bg", "not-a-colour"], "not a background")],
)  # fmt: skip
def test_bad_options_are_one_line_errors(clip, option, message):
    result = run(str(clip), *option)
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_module_does_not_import_torch():
    code = "import sys, mattecli.cli.video; print('torch' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
