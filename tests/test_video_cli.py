"""``matte video`` from the command line, with a tiny random model and a clip made by ffmpeg here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from fractions import Fraction
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


def test_padding_and_a_kept_pixel_aspect_ratio_are_said(tiny_weights, tmp_path):
    """Issue 24: an odd-sized anamorphic clip as H.264 is padded by a pixel and keeps its SAR; both said."""
    source = tmp_path / "wide.mkv"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=33x25:rate=25",
         "-frames:v", "3", "-vf", "setsar=25/33:max=1000", "-c:v", "ffv1", str(source)],
        check=True,
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    result = run(str(source), "--bg", "white", "-o", str(out), *model_args(tiny_weights))
    assert result.exit_code == 0, result.output
    message = _plain(result.stderr)
    assert "note: H.264 needs even sides: the 33x25 frames were padded to 34x26" in message
    assert "pixel aspect ratio 25:33 kept" in message
    info = probe(out)
    assert (info.width, info.height, info.sar) == (34, 26, probe(source).sar)
    assert info.sar == Fraction(25, 33)


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


def test_existing_frames_folder_is_refused_and_kept(clip, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "frame_000001.png").write_bytes(b"mine")
    result = run(str(clip), "-o", str(out), "--model", str(tmp_path / "no-such-model.safetensors"))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {out}: exists (use --overwrite)"
    assert os.listdir(out) == ["frame_000001.png"] and (out / "frame_000001.png").read_bytes() == b"mine"


def test_overwrite_replaces_an_existing_output(clip, tiny_weights, tmp_path):
    out = tmp_path / "o.mov"
    out.write_bytes(b"old")
    result = run(str(clip), "-o", str(out), "--overwrite", "-q", *model_args(tiny_weights))
    assert result.exit_code == 0, result.output
    assert probe(out).video_codec == "prores"
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4", "o.mov", "tiny.safetensors"]


def _plain(text: str) -> str:
    """Help text without rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


def test_help_states_the_overwrite_rule_and_every_codec():
    from mattecli.video.formats import CODECS

    result = CliRunner().invoke(app, ["video", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    text = _plain(result.output)
    assert "an existing output is an error (exit 1)" in text
    for name in CODECS:
        assert name in text


def test_temporal_help_states_the_bound():
    import inspect

    from mattecli.cli.video import video_command
    from mattecli.video.limits import MAX_STRENGTH

    option = inspect.signature(video_command).parameters["temporal"].default
    assert f"up to {MAX_STRENGTH:g}" in option.help


def _alphas(folder: Path):
    import numpy as np
    from PIL import Image

    frames = []
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as frame:
            frames.append(np.asarray(frame)[:, :, 3].astype(int))
    return np.stack(frames)


def test_without_temporal_the_matte_is_smoothed_at_strength_one_half(tiny_weights, tmp_path):
    """What the default does, not what the constant says (issue 24 item 7: a default of 0 passed every
    test): on a still, grainy clip, no --temporal gives exactly --temporal 0.5's frames, and they differ
    from --temporal 0's, whose still-edge flicker they reduce."""
    grainy = tmp_path / "grainy.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", "color=c=0x808080:size=48x36:rate=10,drawbox=x=12:y=8:w=24:h=20:color=0xd04030:t=fill,"
               "noise=alls=5:allf=t",
         "-frames:v", "8", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(grainy)],
        check=True,
    )  # fmt: skip
    alphas = {}
    for label, extra in (("default", []), ("half", ["--temporal", "0.5"]), ("off", ["--temporal", "0"])):
        out = tmp_path / label
        result = run(str(grainy), "-o", f"{out}/", "--codec", "png", "-q", *model_args(tiny_weights), *extra)
        assert result.exit_code == 0, result.output
        alphas[label] = _alphas(out)
    assert alphas["default"].shape == (8, 36, 48)
    assert (alphas["default"] == alphas["half"]).all()
    assert (alphas["default"][0] == alphas["off"][0]).all()  # the first frame has nothing to average with
    flicker = {label: abs(a[1:] - a[:-1]).mean() for label, a in alphas.items()}
    assert flicker["off"] > 0, "the clip must make the matte flicker for this test to mean anything"
    assert flicker["default"] < 0.8 * flicker["off"], flicker


@pytest.fixture
def damaged_clip(tmp_path: Path) -> Path:
    """75 frames (2.5 s at 30 fps), index first, cut in the middle: it opens, but half the frames
    are missing."""
    whole = tmp_path / "whole.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc=size=48x36:rate=30", "-frames:v", "75", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "15", "-movflags", "+faststart",
         str(whole)],
        check=True,
    )  # fmt: skip
    damaged = tmp_path / "clip.mp4"
    damaged.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    return damaged


def test_damaged_clip_is_an_error_and_writes_nothing(damaged_clip, tiny_weights, tmp_path):
    result = run(str(damaged_clip), "-q", *model_args(tiny_weights))
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert re.fullmatch(
        rf"error: {re.escape(str(damaged_clip))}: only \d+ of 75 frames could be decoded \(the file is "
        r"damaged or truncated\); --allow-partial writes them",
        message,
    ), message
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4", "tiny.safetensors"]


def test_allow_partial_writes_what_decodes_and_warns(damaged_clip, tiny_weights, tmp_path):
    out = tmp_path / "o.mov"
    result = run(str(damaged_clip), "-o", str(out), "--allow-partial", *model_args(tiny_weights))
    assert result.exit_code == 0, result.output
    match = re.search(r"warning: .*clip.mp4: only (\d+) of 75 frames could be decoded", _plain(result.stderr))
    assert match, result.stderr
    frames = int(match.group(1))
    assert 10 < frames < 73 and f"wrote {out}: {frames} frames" in _plain(result.stderr)
    raw = subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        check=True,
    ).stdout
    assert len(raw) == frames * 48 * 36


@pytest.mark.parametrize(
    ("option", "message", "code"),
    [(["--temporal", "1.5"], "--temporal must be between 0 and 0.9", 2),
     (["--batch-size", "0"], "--batch-size must be at least 1", 2),
     (["-o", "x.mp4"], "has no alpha channel", 1),
     (["--bg", "not-a-colour"], "--bg is not a colour or an image file", 1)],
)  # fmt: skip
def test_bad_options_are_one_line_errors(clip, option, message, code):
    result = run(str(clip), *option)
    assert result.exit_code == code
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_module_does_not_import_torch():
    code = "import sys, mattecli.cli.video; print('torch' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_temporal_rule_needs_no_numpy():
    """The --temporal default and bound that the help shows come from where the pipeline checks them."""
    code = (
        "import sys, mattecli.cli.video, mattecli.video.limits as l; "
        "print('numpy' in sys.modules, l.check_strength(l.MAX_STRENGTH))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "0.9"]
