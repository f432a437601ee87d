"""Inference folds every conv + BN pair into the conv and keeps the output; each part declares its pairs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mattecli.models import LateFusionNet
from mattecli.models.batchnorm_folding import conv_bn_pairs, fuse_batchnorm
from mattecli.models.config import ModelConfig
from mattecli.models.encoder_registry import encoder_class


def test_batchnorm_folding_keeps_the_output(tiny_config: ModelConfig) -> None:
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


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_encoders_declare_every_conv_bn_pair_but_the_classifier_head(name: str) -> None:
    encoder = encoder_class(name)().eval()
    pairs = conv_bn_pairs(encoder)
    for owner, conv_name, bn_name in pairs:
        conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        assert conv.out_channels == bn.num_features
    # Stem, then per block the depthwise and projection convs and (all but the first stage's) expansion.
    blocks = len(encoder._blocks)
    assert len(pairs) == 1 + 3 * blocks - 1
    folded = {id(getattr(owner, bn)) for owner, _, bn in pairs}
    left = [n for n, m in encoder.named_modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in folded]
    assert left == ["_bn1"] and f"{left[0]}." in encoder.unused_prefixes


def test_densenet_pairs_are_found_in_its_sequential() -> None:
    """DenseNet-201 declares nothing: its one conv -> BN pair is found, its pre-activation BNs are left."""
    encoder = encoder_class("densenet201")().eval()
    assert conv_bn_pairs(encoder) == [(encoder.features, "conv0", "norm0")]


def test_folded_encoders_keep_their_features() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    for name in ("efficientnet_lite0", "densenet201"):
        encoder = encoder_class(name)()
        with torch.no_grad():
            encoder.train()(torch.rand(2, 3, 64, 64))  # non-trivial BN statistics
            encoder.eval()
            expected = encoder(x)
            folded = fuse_batchnorm(copy.deepcopy(encoder))(x)
        for got, want in zip(folded, expected, strict=True):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
