"""Bad input to the commands: one line on stderr that names the file (or the option) and the problem, exit
1, no traceback and nothing written (issue 14 item 17 and the sweep that followed it)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, make_tiny_net, synthetic_scene
from PIL import Image
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.modelfiles.checkpoint import FORMAT
from mattecli.video.ffmpeg import ffmpeg_exe


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def one_error_line(result, *fragments: str, code: int = 1) -> str:
    """The result failed with exit ``code`` (2: a usage error) and a single stderr line that holds every
    fragment."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    image, _ = synthetic_scene(48, 64)
    path = tmp_path / "photo.png"
    Image.fromarray((image * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for folder in ("image", "alpha"):
        (root / folder).mkdir(parents=True)
    image, alpha = synthetic_scene(48, 64)
    Image.fromarray((image * 255).astype(np.uint8)).save(root / "image" / "a.png")
    Image.fromarray((alpha * 255).astype(np.uint8)).save(root / "alpha" / "a.png")
    return root


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=48x36:rate=10",
         "-frames:v", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


# ------------------------------------------------------------------------------------------ --max-size


@pytest.mark.parametrize("value", ["0", "100", "-32"])
def test_image_max_size_must_be_a_positive_multiple_of_32(photo, tiny_weights, tmp_path, value) -> None:
    out = tmp_path / "out.png"
    result = run("image", str(photo), "-o", str(out), "--model", str(tiny_weights), "--max-size", value)
    one_error_line(result, f"--max-size must be a positive multiple of 32, got {value}", code=2)
    assert not out.exists()


def test_video_max_size_names_the_option(clip, tiny_weights, tmp_path) -> None:
    out = tmp_path / "out.mov"
    result = run("video", str(clip), "-o", str(out), "--model", str(tiny_weights), "--max-size", "0")
    one_error_line(result, "--max-size must be a positive multiple of 32, got 0", code=2)
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--max-size", "0"], "--max-size must be a positive multiple of 32, got 0"),
     (["--max-size", "50"], "--max-size must be a positive multiple of 32, got 50"),
     (["--limit", "0"], "--limit must be at least 1, got 0"),
     (["--limit", "-2"], "--limit must be at least 1, got -2")],
)  # fmt: skip
def test_eval_options_are_checked_by_name(labelled, tiny_weights, tmp_path, option, message) -> None:
    out = tmp_path / "results"
    one_error_line(
        run("eval", str(labelled), "--model", str(tiny_weights), "--out", str(out), *option), message, code=2
    )
    assert not out.exists()


# ------------------------------------------------------------------------- files that are not checkpoints


def _jpeg(path: Path) -> Path:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, format="JPEG")
    return path


class Foreign:
    """A class that only this module defines: a pickle of it cannot load without running this code."""


def _pickle_file(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"model": Foreign(), "step": 3}))
    return path


def _checkpoint(path: Path) -> Path:
    """A minimal mattecli training checkpoint of the tiny network."""
    torch.save(
        {"format": FORMAT, "model": make_tiny_net().state_dict(), "model_config": TINY.to_json()}, path
    )
    return path


def _torch_tensors(path: Path) -> Path:
    """A PyTorch file of plain tensors: readable with weights_only, but no mattecli checkpoint."""
    torch.save({"weight": torch.zeros(2, 2)}, path)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(path: Path) -> Path:
    data = _checkpoint(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _torch_object(path: Path) -> Path:
    torch.save({"model": Counter(a=1), "x": Foreign()}, path)
    return path


def _weights(path: Path) -> Path:
    from mattecli.modelfiles.weights import save_weights

    return save_weights(make_tiny_net(), path.with_suffix(".safetensors"))


NOT_CHECKPOINTS = {
    "jpeg": (lambda d: _jpeg(d / "photo.jpg"), "not a training checkpoint (it is a JPEG image)"),
    "renamed jpeg": (lambda d: _jpeg(d / "run.pt"), "not a training checkpoint (it is a JPEG image)"),
    "pickle": (
        lambda d: _pickle_file(d / "model.pt"),
        "holds pickled Python objects, which mattecli never loads",
    ),
    "torch object": (
        lambda d: _torch_object(d / "obj.pt"),
        "holds pickled Python objects, which mattecli never loads",
    ),
    "empty": (lambda d: _write(d / "empty.pt", b""), "is empty"),
    "text": (lambda d: _write(d / "notes.pt", b"hi\n"), "not a training checkpoint"),
    "truncated": (lambda d: _truncated(d / "cut.pt"), "damaged or truncated"),
    "weights file": (lambda d: _weights(d / "model"), "is a weights file, not a training checkpoint"),
}


@pytest.mark.parametrize("kind", NOT_CHECKPOINTS)
def test_export_says_in_one_line_what_the_file_is(tmp_path: Path, kind: str) -> None:
    make, message = NOT_CHECKPOINTS[kind]
    source = make(tmp_path)
    out = tmp_path / "out.safetensors"
    line = one_error_line(run("export", str(source), "-o", str(out)), str(source), message)
    for noise in ("weights_only", "PyTorch 2.6", "(101)", "(105)", "UserWarning"):
        assert noise not in line
    assert not out.exists()


def test_export_of_an_onnx_file_to_weights_gives_the_real_reason(tiny_weights: Path, tmp_path: Path) -> None:
    """It said "not a training checkpoint (it is no format mattecli reads)"."""
    pytest.importorskip("onnx", reason="needs the onnx extra to make the ONNX file")
    from mattecli.modelfiles.onnx_export import export_onnx

    source = export_onnx(tiny_weights, tmp_path / "lite.onnx")
    out = tmp_path / "x.safetensors"
    one_error_line(
        run("export", str(source), "-o", str(out)),
        f"{source}: is an ONNX export: its weights are folded into the graph and cannot be turned back into "
        "a .safetensors file; export the training checkpoint or run folder it was made from",
    )
    assert not out.exists()


def test_export_of_a_real_checkpoint_still_works(tmp_path: Path) -> None:
    out = tmp_path / "out.safetensors"
    result = run("export", str(_checkpoint(tmp_path / "step.pt")), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_no_torch_warning_reaches_the_terminal(tmp_path: Path) -> None:
    """A real process: torch's 'Detected pickle protocol 4' UserWarning used to precede the error line."""
    source = _pickle_file(tmp_path / "model.pt")
    proc = subprocess.run(
        [sys.executable, "-m", "mattecli", "export", str(source), "-o", str(tmp_path / "o.safetensors")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model.pt" in lines[0], proc.stderr


@pytest.mark.parametrize("command", ["average", "train-init", "train-resume", "eval"])
def test_other_commands_that_read_checkpoints_say_the_same(tmp_path: Path, labelled: Path, command) -> None:
    bad = _pickle_file(tmp_path / "bad.pt")
    good = _weights(tmp_path / "good")
    args = {
        "average": ["average", str(bad), str(good), "-o", str(tmp_path / "soup.safetensors")],
        "train-init": ["train", str(labelled), "--init", str(bad), "--out", str(tmp_path / "run")],
        "train-resume": ["train", "--resume", str(bad)],
        "eval": ["eval", str(labelled), "--model", str(bad)],
    }[command]
    one_error_line(run(*args), str(bad), "holds pickled Python objects")


# ------------------------------------------------------------------------- files that are not weights


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda d: _jpeg(d / "model.safetensors"), "not a weights file (it is a JPEG image)"),
     # A mattecli checkpoint is a model too (test_loading.py); a PyTorch file of other tensors is not.
     (lambda d: _torch_tensors(d / "step.pt"), "not a mattecli training checkpoint (a PyTorch file without its fields)"),
     (lambda d: _jpeg(d / "photo.jpg"), "not a model file (it is a JPEG image)"),
     (lambda d: _pickle_file(d / "m.safetensors"), "not a weights file (it is a Python pickle)")],
)  # fmt: skip
def test_a_model_that_is_not_a_weights_file_is_named(photo, tmp_path, make, message) -> None:
    model = make(tmp_path)
    out = tmp_path / "out.png"
    one_error_line(run("image", str(photo), "-o", str(out), "--model", str(model)), str(model), message)
    assert not out.exists()


@pytest.mark.parametrize("command", ["export", "average"])
def test_an_output_that_is_a_folder_is_named_as_one(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    step = _checkpoint(tmp_path / "step.pt")
    sources = [str(step)] if command == "export" else [str(step), str(_weights(tmp_path / "w"))]
    line = one_error_line(run(command, *sources, "-o", str(folder)), str(folder))
    assert "is a folder" in line and "FILE.safetensors" in line
    assert list(folder.iterdir()) == []
