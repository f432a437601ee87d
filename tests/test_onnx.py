"""ONNX export: the graph's outputs equal PyTorch's at several sizes, the file describes itself, bad
inputs are one-line errors. onnxruntime runs the exported files (the ``onnx`` and ``test`` extras)."""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, make_tiny_net
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.errors import MatteError
from mattecli.modelfiles.loading import locate
from mattecli.modelfiles.onnx_export import OUTPUTS, export_onnx, parse_outputs, read_onnx_metadata
from mattecli.modelfiles.weights import load_weights

# Looked up, not imported: importing onnxruntime starts a thread, and the suite's other tests fork
# (data packing, loaders) before this file runs. Each test imports what it uses.
pytestmark = pytest.mark.skipif(
    find_spec("onnx") is None or find_spec("onnxruntime") is None,
    reason="needs the onnx extra",
)

SIZES = [(1, 64, 64), (2, 96, 128), (1, 160, 96), (2, 64, 32)]


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def pytorch_outputs(net: torch.nn.Module, image: np.ndarray) -> dict[str, np.ndarray]:
    """The unfused network's maps: the reference the folded ONNX graph must reproduce."""
    with torch.no_grad():
        result = net(torch.from_numpy(image))
    return {name: getattr(result, name).numpy() for name in OUTPUTS}


def random_images(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, 3, height, width), dtype=np.float32)


def invoke(*args: str):
    return CliRunner().invoke(app, ["export", *args])


# ------------------------------------------------------------------------------------ equivalence


def test_tiny_model_alpha_matches_pytorch_at_several_sizes(tiny_weights: Path, tmp_path: Path) -> None:
    out = export_onnx(tiny_weights, tmp_path / "tiny.onnx")
    net, run = load_weights(tiny_weights), session(out)
    assert [i.name for i in run.get_inputs()] == ["image"]
    assert [o.name for o in run.get_outputs()] == ["alpha"]
    assert run.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    for batch, height, width in SIZES:
        image = random_images(batch, height, width)
        (alpha,) = run.run(None, {"image": image})
        reference = pytorch_outputs(net, image)["alpha"]
        assert alpha.shape == (batch, 1, height, width) and alpha.dtype == np.float32
        assert np.abs(alpha - reference).max() < 1e-3, (batch, height, width)
        assert reference.std() > 0.01  # a matte with structure, not a constant that anything matches


def test_all_outputs_are_named_and_match_pytorch(tiny_weights: Path, tmp_path: Path) -> None:
    out = export_onnx(tiny_weights, tmp_path / "all.onnx", outputs="all")
    net, run = load_weights(tiny_weights), session(out)
    assert [o.name for o in run.get_outputs()] == ["alpha", "foreground", "background", "beta"]
    image = random_images(2, 96, 64, seed=3)
    found = dict(zip(OUTPUTS, run.run(None, {"image": image}), strict=True))
    for name, reference in pytorch_outputs(net, image).items():
        assert np.abs(found[name] - reference).max() < 1e-3, name
    # alpha is beta * F + (1 - beta) * (1 - B) in the graph too.
    blended = found["beta"] * found["foreground"] + (1 - found["beta"]) * (1 - found["background"])
    assert np.abs(found["alpha"] - blended).max() < 1e-5


def test_outputs_can_be_chosen_and_come_in_graph_order(tiny_weights: Path, tmp_path: Path) -> None:
    out = export_onnx(tiny_weights, tmp_path / "two.onnx", outputs="beta, alpha")
    assert [o.name for o in session(out).get_outputs()] == ["alpha", "beta"]
    assert parse_outputs(None) == ("alpha",)
    assert parse_outputs(["foreground"]) == ("foreground",)
    with pytest.raises(MatteError, match=r"unknown ONNX output 'matte' \(choose from alpha, foreground"):
        parse_outputs("alpha,matte")


def test_batchnorm_is_folded_and_padding_is_static(tiny_weights: Path, tmp_path: Path) -> None:
    import onnx

    graph = onnx.load(str(export_onnx(tiny_weights, tmp_path / "tiny.onnx")))
    ops = {node.op_type for node in graph.graph.node}
    assert "BatchNormalization" not in ops
    # No shape arithmetic: the padding of the TensorFlow-style convolutions is constant.
    assert not ops & {"Shape", "Gather", "Ceil"}, ops


def test_metadata_states_config_input_normalisation_version_and_provenance(
    tiny_weights: Path, tmp_path: Path
) -> None:
    import onnx

    out = export_onnx(tiny_weights, tmp_path / "tiny.onnx", outputs="alpha,beta")
    meta = read_onnx_metadata(out)
    assert meta["config"] == TINY
    assert meta["format"] == "1" and meta["version"] == __import__("mattecli").__version__
    assert meta["input"]["shape"] == ["batch", 3, "height", "width"]
    assert meta["input"]["dtype"] == "float32" and meta["input"]["range"] == [0.0, 1.0]
    assert meta["input"]["channels"] == "RGB" and meta["input"]["multiple_of"] == 32
    assert meta["normalization"]["mean"] == list(TINY.mean) and meta["normalization"]["std"] == list(TINY.std)
    assert list(meta["outputs"]) == ["alpha", "beta"]
    assert meta["provenance"]["weights"] == {"purpose": "tests"}
    assert meta["provenance"]["weights_file"] == "tiny.safetensors"
    raw = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(raw["mattecli.config"]) == json.loads(TINY.to_json())
    assert "[0, 1]" in onnx.load(str(out)).doc_string


def test_bundled_default_model_matches_pytorch(tmp_path: Path) -> None:
    result = invoke("default", "-o", str(tmp_path / "default.onnx"))
    assert result.exit_code == 0, result.output
    net = load_weights(locate("default").path)
    image = random_images(1, 96, 64, seed=5)
    (alpha,) = session(tmp_path / "default.onnx").run(None, {"image": image})
    assert np.abs(alpha - pytorch_outputs(net, image)["alpha"]).max() < 1e-3
    assert read_onnx_metadata(tmp_path / "default.onnx")["config"].name == "lite"


# ------------------------------------------------------------------------------------ CLI, sources


def test_cli_exports_a_weights_file_and_all_outputs(tiny_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.onnx"
    result = invoke(str(tiny_weights), "-o", str(out), "--onnx-outputs", "all")
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    assert [o.name for o in session(out).get_outputs()] == list(OUTPUTS)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_cli_exports_a_training_run_folder_with_its_provenance(tmp_path: Path) -> None:
    import cv2

    from mattecli.training import RunConfig, train

    data = tmp_path / "data"
    for folder in ("image", "alpha"):
        (data / folder).mkdir(parents=True)
    for i in range(2):
        image, alpha = __import__("conftest").synthetic_scene(64, 64, seed=i)
        cv2.imwrite(str(data / "image" / f"s{i}.png"), (image * 255).astype(np.uint8))
        cv2.imwrite(str(data / "alpha" / f"s{i}.png"), (alpha * 255).astype(np.uint8))
    (tmp_path / "tiny.json").write_text(TINY.to_json())
    settings = dict(data=str(data), model_config=str(tmp_path / "tiny.json"), pretrained=False, size=64)
    run = train(
        RunConfig(**settings, batch_size=2, workers=0, quiet=True, steps=2, out=str(tmp_path / "run"), seed=1)
    )
    out = tmp_path / "run.onnx"
    result = invoke(str(run.run_dir), "-o", str(out))
    assert result.exit_code == 0, result.output
    meta = read_onnx_metadata(out)
    assert meta["provenance"]["stage"] == "seg" and meta["provenance"]["steps"] == 2
    state = torch.load(run.checkpoint, weights_only=True)["model"]
    net = make_tiny_net()
    net.load_state_dict(state)
    image = random_images(1, 64, 96, seed=7)
    (alpha,) = session(out).run(None, {"image": image})
    assert np.abs(alpha - pytorch_outputs(net.eval(), image)["alpha"]).max() < 1e-3


# ------------------------------------------------------------------------------------ errors


def test_missing_models_are_one_line_errors(tmp_path: Path) -> None:
    out = tmp_path / "x.onnx"
    for model, message in [
        (str(tmp_path / "nothing.safetensors"), "weights file not found"),
        (str(tmp_path / "runs" / "joint"), "model not found"),
        (str(tmp_path / "step-1.pt"), "checkpoint or run folder not found"),
        ("no-such-model", "unknown model 'no-such-model'"),
    ]:
        result = invoke(model, "-o", str(out))
        assert result.exit_code == 1, (model, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_wrong_suffix_existing_output_and_half_are_refused(tiny_weights: Path, tmp_path: Path) -> None:
    with pytest.raises(MatteError, match=r"model\.onx: the ONNX file name must end in \.onnx"):
        export_onnx(tiny_weights, tmp_path / "model.onx")
    out = tmp_path / "model.onnx"
    out.write_bytes(b"mine")
    result = invoke(str(tiny_weights), "-o", str(out))
    assert result.exit_code == 1 and "exists" in result.output and "--overwrite" in result.output
    assert out.read_bytes() == b"mine"
    half = invoke(str(tiny_weights), "-o", str(out), "--half", "--overwrite")
    assert half.exit_code == 2 and "--half is for .safetensors" in half.output
    assert out.read_bytes() == b"mine"
    replaced = invoke(str(tiny_weights), "-o", str(out), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert read_onnx_metadata(out)["config"] == TINY
    bad = invoke(str(tiny_weights), "-o", str(tmp_path / "b.onnx"), "--onnx-outputs", "alpha,trimap")
    assert bad.exit_code == 2 and "unknown ONNX output 'trimap'" in bad.output
    assert not (tmp_path / "b.onnx").exists()


def test_without_onnx_installed_the_error_says_what_to_install(
    tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` meets when it is not installed
    result = invoke(str(tiny_weights), "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: ONNX export needs the onnx package: {sys.executable} -m pip install 'onnx>=1.15' 'onnxruntime>=1.17'"
    ]
    assert not (tmp_path / "m.onnx").exists()


def test_a_file_that_is_not_onnx_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"\x00 not a protobuf \xff" * 3)
    with pytest.raises(MatteError, match=r"fake\.onnx: (not a readable ONNX file|ONNX file has no)"):
        read_onnx_metadata(fake)


# ------------------------------------------------------------------------------------ onnxruntime backend


def test_onnx_net_is_called_like_the_network(tiny_weights: Path, tmp_path: Path) -> None:
    from mattecli.modelfiles.onnx_export import OnnxNet

    net = OnnxNet(export_onnx(tiny_weights, tmp_path / "t.onnx", outputs="alpha,beta"))
    assert net.config == TINY and net.eval() is net and net.provenance["weights"] == {"purpose": "tests"}
    image = random_images(2, 64, 96, seed=11)
    result = net(torch.from_numpy(image).contiguous(memory_format=torch.channels_last))
    reference = pytorch_outputs(load_weights(tiny_weights), image)
    assert isinstance(result.alpha, torch.Tensor) and result.alpha.shape == (2, 1, 64, 96)
    assert np.abs(result.alpha.numpy() - reference["alpha"]).max() < 1e-3
    assert np.abs(result.beta.numpy() - reference["beta"]).max() < 1e-3
    assert result.foreground is None and result.background is None
    with pytest.raises(ValueError, match="not a multiple of 32"):
        net(torch.rand(1, 3, 64, 70))


def test_matter_gives_the_same_matte_through_onnxruntime(tiny_weights: Path, tmp_path: Path) -> None:
    """What Matter would do with an ONNX file: its PyTorch network swapped for OnnxNet, all else equal
    (resizing, tiled refinement, the mirrored --tta pass)."""
    from conftest import synthetic_scene

    from mattecli.inference import Matter
    from mattecli.modelfiles.onnx_export import OnnxNet

    onnx_net = OnnxNet(export_onnx(tiny_weights, tmp_path / "tiny.onnx"))
    image, _ = synthetic_scene(150, 230, seed=4)
    for options in ({}, {"tta": True}, {"refine": True, "tile_size": 96}):
        matter = Matter(tiny_weights, device="cpu", max_size=64, **options)
        reference = matter.predict_alpha(image)
        matter.net = onnx_net
        alpha = matter.predict_alpha(image)
        assert alpha.shape == (150, 230) and reference.std() > 0.01
        assert np.abs(alpha - reference).max() < 1e-3, options


def test_onnx_net_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx

    from mattecli.modelfiles.onnx_export import OnnxNet

    with pytest.raises(MatteError, match=r"nothing\.onnx: ONNX file not found"):
        OnnxNet(tmp_path / "nothing.onnx")
    foreign = tmp_path / "foreign.onnx"
    onnx.save_model(
        onnx.helper.make_model(
            onnx.helper.make_graph(
                [onnx.helper.make_node("Identity", ["x"], ["y"])],
                "g",
                [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
            )
        ),
        str(foreign),
    )
    with pytest.raises(MatteError, match=r"foreign\.onnx: ONNX file has no mattecli config"):
        OnnxNet(foreign)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MatteError) as caught:
        OnnxNet(foreign)
    assert str(caught.value) == (
        f"running ONNX files needs onnxruntime: {sys.executable} -m pip install 'onnx>=1.15' 'onnxruntime>=1.17'"
    )


def test_matter_and_matte_image_take_an_onnx_file(tiny_weights: Path, tmp_path: Path) -> None:
    """``Matter(model="x.onnx")`` and ``matte image --model x.onnx`` run the file through onnxruntime and give
    the PyTorch matte; a GPU device is refused in one line."""
    from conftest import synthetic_scene
    from PIL import Image

    from mattecli.inference import Matter
    from mattecli.modelfiles.onnx_export import OnnxNet

    onnx_file = export_onnx(tiny_weights, tmp_path / "tiny.onnx")
    image, _ = synthetic_scene(96, 160, seed=2)
    through_onnx = Matter(onnx_file, max_size=64)
    assert isinstance(through_onnx.net, OnnxNet) and through_onnx.device.type == "cpu"
    reference = Matter(tiny_weights, device="cpu", max_size=64).predict_alpha(image)
    assert np.abs(through_onnx.predict_alpha(image) - reference).max() < 1e-3
    with pytest.raises(MatteError, match=r"CPU|CUDA"):  # refused here either way: no GPU, or not the CPU
        Matter(onnx_file, device="cuda")

    photo = tmp_path / "photo.png"
    Image.fromarray((image * 255).round().astype(np.uint8)).save(photo)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(
        app, ["image", str(photo), "--model", str(onnx_file), "--max-size", "64", "-o", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as written:
        assert written.mode == "RGBA" and written.size == (160, 96)
