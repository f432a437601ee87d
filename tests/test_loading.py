"""The one model loader (mattecli.modelfiles.loading): weights files, exported ONNX files, training checkpoints and
run folders load the same network, and anything else is refused in one line that says what it is.

The checkpoints come from a real two-step training run of the tiny config (a few seconds on a CPU)."""

from __future__ import annotations

import pickle
import shutil
from collections import Counter
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY, synthetic_scene
from PIL import Image
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.errors import MatteError
from mattecli.modelfiles.loading import CHECKPOINT, ONNX, RUN, WEIGHTS, load_model, locate, read_tensors
from mattecli.modelfiles.weights import load_weights

needs_onnx = pytest.mark.skipif(
    find_spec("onnx") is None or find_spec("onnxruntime") is None,
    reason="needs the onnx extra",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """A finished tiny run: checkpoints/step-0000001.pt, step-0000002.pt and model.safetensors."""
    from mattecli.training import RunConfig, train

    root = tmp_path_factory.mktemp("loading")
    data = root / "data"
    for folder in ("image", "alpha"):
        (data / folder).mkdir(parents=True)
    for i in range(2):
        image, alpha = synthetic_scene(64, 64, seed=i)
        cv2.imwrite(str(data / "image" / f"s{i}.png"), (image * 255).astype(np.uint8))
        cv2.imwrite(str(data / "alpha" / f"s{i}.png"), (alpha * 255).astype(np.uint8))
    (root / "tiny.json").write_text(TINY.to_json())
    torch.set_num_threads(1)
    config = RunConfig(
        data=str(data),
        model_config=str(root / "tiny.json"),
        pretrained=False,
        size=64,
        batch_size=2,
        workers=0,
        quiet=True,
        steps=2,
        ckpt_every=1,
        out=str(root / "run"),
        seed=1,
    )
    return train(config)


def alpha_of(net, seed: int = 0) -> torch.Tensor:
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return net(image).alpha


def copy_run(run, destination: Path, *, export: bool) -> Path:
    """The run folder copied, with or without its exported model.safetensors."""
    shutil.copytree(run.run_dir, destination)
    if not export:
        (destination / "model.safetensors").unlink()
    return destination


# ------------------------------------------------------------------------------------ the four kinds


def test_a_weights_file_and_a_name_load_as_weights(tiny_weights: Path) -> None:
    loaded = load_model(tiny_weights)
    assert (loaded.kind, loaded.path, loaded.config) == (WEIGHTS, tiny_weights, TINY)
    assert loaded.provenance == {"purpose": "tests"} and not loaded.net.training
    assert torch.equal(alpha_of(loaded.net), alpha_of(load_weights(tiny_weights)))
    named = locate("default")
    assert named.kind == WEIGHTS and named.path.name == "lite.safetensors"


def test_a_checkpoint_loads_the_network_the_run_exported(run) -> None:
    loaded = load_model(run.checkpoint)
    assert (loaded.kind, loaded.path) == (CHECKPOINT, run.checkpoint)
    assert loaded.config.name == TINY.name and not loaded.net.training
    assert loaded.provenance["stage"] == "seg" and loaded.provenance["steps"] == 2
    assert loaded.provenance["checkpoint"] == str(run.checkpoint)
    assert torch.equal(alpha_of(loaded.net), alpha_of(load_weights(run.weights)))


def test_a_run_folder_gives_its_newest_checkpoint_or_else_its_export(run, tmp_path: Path) -> None:
    """One rule for every reader (inference, --init, matte average): the newest checkpoint, which loads
    the same network as the export and keeps the classifier head; the export when no checkpoint is left."""
    newest = load_model(run.run_dir)
    assert (newest.kind, newest.path) == (RUN, run.checkpoint)
    assert newest.provenance["steps"] == 2
    assert torch.equal(alpha_of(newest.net), alpha_of(load_weights(run.weights)))
    found = read_tensors(run.run_dir)
    assert (found.kind, found.path) == (RUN, run.checkpoint)
    assert "encoder._fc.weight" in found.tensors and found.provenance["checkpoint"] == str(run.checkpoint)
    assert "encoder._fc.weight" not in read_tensors(run.weights).tensors
    exported_only = copy_run(run, tmp_path / "exported", export=True)
    shutil.rmtree(exported_only / "checkpoints")
    exported = load_model(exported_only)
    assert (exported.kind, exported.path) == (RUN, exported_only / "model.safetensors")
    assert torch.equal(alpha_of(exported.net), alpha_of(newest.net))
    assert read_tensors(exported_only).path == exported_only / "model.safetensors"


def test_the_newest_of_several_checkpoints_wins(run, tmp_path: Path) -> None:
    """A resumed run that has not finished: its newest checkpoint is later than its export."""
    resumed = copy_run(run, tmp_path / "resumed", export=True)
    later = resumed / "checkpoints" / "step-0000003.pt"
    shutil.copy(resumed / "checkpoints" / "step-0000002.pt", later)
    assert locate(resumed).path == later
    assert read_tensors(resumed).path == later


@needs_onnx
def test_an_exported_onnx_file_loads_as_onnx(tiny_weights: Path, tmp_path: Path) -> None:
    from mattecli.modelfiles.onnx_export import OnnxNet, export_onnx

    onnx_file = export_onnx(tiny_weights, tmp_path / "tiny.onnx")
    loaded = load_model(onnx_file)
    assert isinstance(loaded.net, OnnxNet) and (loaded.kind, loaded.config) == (ONNX, TINY)
    assert loaded.provenance["weights"] == {"purpose": "tests"}
    reference = alpha_of(load_weights(tiny_weights))
    assert (alpha_of(loaded.net) - reference).abs().max() < 1e-3
    with pytest.raises(MatteError, match=r"tiny\.onnx: ONNX models run on the CPU"):
        load_model(onnx_file, device="meta")
    with pytest.raises(MatteError, match=r"tiny\.onnx: is an ONNX export"):
        read_tensors(onnx_file)
    with pytest.raises(MatteError, match=r"tiny\.onnx: is an ONNX file already"):
        export_onnx(onnx_file, tmp_path / "again.onnx")


# ------------------------------------------------------------------------------------ bad inputs


def _jpeg(path: Path) -> Path:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, format="JPEG")
    return path


BAD = {
    "jpeg": (lambda d: _jpeg(d / "photo.jpg"), "photo.jpg: not a model file (it is a JPEG image)"),
    "jpeg as weights": (lambda d: _jpeg(d / "m.safetensors"), "not a weights file (it is a JPEG image)"),
    "jpeg as onnx": (lambda d: _jpeg(d / "m.onnx"), "m.onnx: not an ONNX model (it is a JPEG image)"),
    "jpeg as checkpoint": (lambda d: _jpeg(d / "m.pt"), "not a training checkpoint (it is a JPEG image)"),
    "pickle": (
        lambda d: d / "model.pkl" if (d / "model.pkl").write_bytes(pickle.dumps(Counter(a=1))) else None,
        "model.pkl: not a mattecli checkpoint: it holds pickled Python objects",
    ),
    "text": (
        lambda d: d / "notes.txt" if (d / "notes.txt").write_text("hi\n") else None,
        "notes.txt: not a model file mattecli reads",
    ),
    "empty onnx": (lambda d: (d / "e.onnx").touch() or d / "e.onnx", "e.onnx: is empty, not an ONNX model"),
    "empty folder": (
        lambda d: (d / "empty").mkdir() or d / "empty",
        "empty: folder holds no model (a run folder has model.safetensors or checkpoints/step-*.pt)",
    ),
    "missing weights": (lambda d: d / "gone.safetensors", "gone.safetensors: weights file not found"),
    "missing checkpoint": (lambda d: d / "step.pt", "step.pt: checkpoint or run folder not found"),
    "missing onnx": (lambda d: d / "gone.onnx", "gone.onnx: ONNX file not found"),
    "missing folder": (lambda d: d / "runs" / "x", "x: model not found (give a model name"),
}


@pytest.mark.parametrize("case", BAD)
def test_what_is_no_model_is_named_in_one_line(tmp_path: Path, case: str) -> None:
    make, message = BAD[case]
    source = make(tmp_path)
    for load in (load_model, read_tensors):
        with pytest.raises(MatteError) as error:
            load(source)
        assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(MatteError, match=r"unknown model 'nope' \(known: .*lite.*run folder"):
        load_model("nope")


# ------------------------------------------------------------------------------------ command line


def _matte(photo: Path, model: Path, out: Path) -> np.ndarray:
    result = CliRunner().invoke(
        app, ["image", str(photo), "--model", str(model), "--alpha-only", "-o", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(out))


def test_matte_image_takes_a_checkpoint_and_a_run_folder(run, tmp_path: Path) -> None:
    image, _ = synthetic_scene(64, 96, seed=3)
    photo = tmp_path / "photo.png"
    Image.fromarray((image * 255).astype(np.uint8)).save(photo)
    exported = _matte(photo, run.weights, tmp_path / "exported.png")
    from_checkpoint = _matte(photo, run.checkpoint, tmp_path / "checkpoint.png")
    from_run = _matte(photo, run.run_dir, tmp_path / "run.png")
    bare = _matte(photo, copy_run(run, tmp_path / "bare", export=False), tmp_path / "bare.png")
    assert exported.shape == (64, 96) and exported.std() > 0
    for matte in (from_checkpoint, from_run, bare):
        assert np.array_equal(matte, exported)


def test_matte_eval_takes_a_run_folder(run, tmp_path: Path) -> None:
    data = Path(run.run_dir).parent / "data"
    result = CliRunner().invoke(app, ["eval", str(data), "--model", str(run.run_dir), "-q"])
    assert result.exit_code == 0, result.output
    assert f"model {run.run_dir} (tiny" in " ".join(result.output.split())


def test_matte_image_names_a_file_that_is_no_model(tmp_path: Path) -> None:
    image, _ = synthetic_scene(32, 32)
    photo = tmp_path / "photo.png"
    Image.fromarray((image * 255).astype(np.uint8)).save(photo)
    result = CliRunner().invoke(
        app, ["image", str(photo), "--model", str(photo), "-o", str(tmp_path / "o.png")]
    )
    assert result.exit_code == 1 and not (tmp_path / "o.png").exists()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {photo}: not a model file (it is a PNG image)"], result.stderr


def test_loading_a_run_folder_does_not_import_training(run) -> None:
    """Issue 25 item 1: the checkpoint format and the run-folder rule are model files; loading a run
    folder (as Matter does) must not pull in the trainer, run config, averaging or export."""
    import subprocess
    import sys

    code = (
        "import sys; from mattecli.modelfiles.loading import load_model; "
        f"load_model({str(run.run_dir)!r}); "
        "print(sorted(m for m in sys.modules if m.startswith('mattecli.training')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
