"""Inference-time folding of BatchNorm into the preceding convolution.

In eval mode a BatchNorm is a fixed per-channel affine map, so it can be folded into the convolution before it:
one pass over the feature map instead of two. On a CPU, where the lite network is memory-bound, that is a
measurable share of the time (benchmarks/RESULTS.md). The result is numerically the same network (to float
rounding); training must use the unfused one, whose BN statistics still change.
"""

from __future__ import annotations

import itertools

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mattecli.models.decoder import TopDownBlock
from mattecli.models.encoders import MBConvBlock
from mattecli.models.late_fusion import LateFusionNet


def _pairs(net: LateFusionNet) -> list[tuple[nn.Module, str, str]]:
    """(owner module, conv attribute, bn attribute) for every conv directly followed by a BN."""
    pairs: list[tuple[nn.Module, str, str]] = []
    encoder = net.encoder
    if hasattr(encoder, "_conv_stem"):
        pairs.append((encoder, "_conv_stem", "_bn0"))
    for module in net.modules():
        if isinstance(module, MBConvBlock):
            if module.has_expansion:
                pairs.append((module, "_expand_conv", "_bn0"))
            pairs += [(module, "_depthwise_conv", "_bn1"), (module, "_project_conv", "_bn2")]
        elif isinstance(module, TopDownBlock):
            pairs.append((module, "conv", "bn"))
        elif isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (name, child), (next_name, following) in itertools.pairwise(children):
                if isinstance(child, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
                    pairs.append((module, name, next_name))
    return pairs


def fuse_batchnorm(net: LateFusionNet) -> LateFusionNet:
    """Fold every conv + BN pair of an eval-mode network in place (the BN becomes an Identity)."""
    if net.training:
        raise ValueError("fuse_batchnorm needs an eval-mode network (BN statistics must be fixed)")
    for owner, conv_name, bn_name in _pairs(net):
        conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
        if isinstance(bn, nn.BatchNorm2d):
            setattr(owner, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(owner, bn_name, nn.Identity())
    return net
