"""Weights files round-trip bit-exactly and refuse anything that does not match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY, make_tiny_net

from mattecli.errors import MatteError
from mattecli.modelfiles.weights import inference_state_dict, load_weights, read_metadata, save_weights
from mattecli.models import LateFusionNet


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    net = make_tiny_net(seed=3)
    path = save_weights(net, tmp_path / "m.safetensors", {"data": "synthetic", "steps": 5})
    loaded = load_weights(path)
    original, restored = inference_state_dict(net), inference_state_dict(loaded)
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key
    assert loaded.config == TINY
    assert loaded.provenance == {"data": "synthetic", "steps": 5}
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x).alpha, loaded(x).alpha)


def test_metadata_alone_rebuilds_the_config(tmp_path: Path) -> None:
    path = save_weights(make_tiny_net(), tmp_path / "m.safetensors", {"k": "v"})
    config, provenance = read_metadata(path)
    assert config == TINY and provenance == {"k": "v"}


def test_half_precision_file_is_smaller_and_loads_as_float32(tmp_path: Path) -> None:
    net = make_tiny_net()
    full = save_weights(net, tmp_path / "f32.safetensors")
    half = save_weights(net, tmp_path / "f16.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_weights(half)
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values() if v.is_floating_point())


def test_no_partial_file_on_failure(tmp_path: Path) -> None:
    class Broken(LateFusionNet):
        def state_dict(self, *args, **kwargs):  # type: ignore[override]
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        save_weights(Broken(TINY), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_mismatched_config_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = save_weights(make_tiny_net(), tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    wider = TINY.replace(decoder_channels=16)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"mattecli.config": wider.to_json()})
    with pytest.raises(MatteError, match=r"bad\.safetensors: tensor .* has shape"):
        load_weights(tmp_path / "bad.safetensors")


def test_missing_tensor_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = save_weights(make_tiny_net(), tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"mattecli.config": TINY.to_json()})
    with pytest.raises(MatteError, match="1 missing"):
        load_weights(tmp_path / "bad.safetensors")


def test_corrupted_file_is_refused(tmp_path: Path) -> None:
    path = save_weights(make_tiny_net(), tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(MatteError, match=r"truncated\.safetensors"):
        load_weights(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(MatteError, match="not a valid safetensors"):
        load_weights(garbage)


def test_file_without_config_or_with_bad_config_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(MatteError, match="no mattecli config"):
        load_weights(tmp_path / "plain.safetensors")
    meta = {"mattecli.config": json.dumps({"name": "x", "encoder": "nope"})}
    save_file({"x": torch.zeros(1)}, str(tmp_path / "odd.safetensors"), metadata=meta)
    with pytest.raises(MatteError, match="invalid config"):
        load_weights(tmp_path / "odd.safetensors")


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    net = make_tiny_net()
    with torch.no_grad():
        net.fusion.head.weight.fill_(float("nan"))
    path = save_weights(net, tmp_path / "nan.safetensors")
    with pytest.raises(MatteError, match="NaN"):
        load_weights(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MatteError, match="not found"):
        load_weights(tmp_path / "nope.safetensors")


def test_written_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        path = save_weights(make_tiny_net(), tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_file_kind_names_what_people_pass_by_mistake(tmp_path: Path) -> None:
    from PIL import Image

    from mattecli.modelfiles.weights import EMPTY, PICKLE, PYTORCH, SAFETENSORS, file_kind

    weights = save_weights(make_tiny_net(), tmp_path / "m.safetensors")
    torch.save({"a": torch.zeros(2)}, tmp_path / "c.pt")
    (tmp_path / "p.pkl").write_bytes(__import__("pickle").dumps({"a": 1}))
    (tmp_path / "e.bin").write_bytes(b"")
    (tmp_path / "t.txt").write_text("hello there\n")
    image = Image.new("RGB", (4, 4))
    image.save(tmp_path / "i.jpg")
    image.save(tmp_path / "i.png")
    image.save(tmp_path / "i.webp")
    assert file_kind(weights) == SAFETENSORS
    assert file_kind(tmp_path / "c.pt") == PYTORCH
    assert file_kind(tmp_path / "p.pkl") == PICKLE
    assert file_kind(tmp_path / "e.bin") == EMPTY
    assert file_kind(tmp_path / "t.txt") is None
    assert file_kind(tmp_path / "i.jpg") == "a JPEG image"
    assert file_kind(tmp_path / "i.png") == "a PNG image"
    assert file_kind(tmp_path / "i.webp") == "a WebP image"


def test_exporting_a_model_name_says_it_needs_no_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """matte export lite -o x.safetensors said 'lite: checkpoint or run folder not found'."""
    from mattecli.training.export import export_checkpoint

    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        MatteError, match=r"^lite: is a model name, not a training checkpoint: its weights file"
    ):
        export_checkpoint("lite", tmp_path / "x.safetensors")
    with pytest.raises(MatteError, match="checkpoint or run folder not found"):
        export_checkpoint("no-such-run", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
