"""Inference-time folding of BatchNorm into the preceding convolution.

In eval mode a BatchNorm is a fixed per-channel affine map, so it can be folded into the convolution before it:
one pass over the feature map instead of two. On a CPU, where the lite network is memory-bound, that is a
measurable share of the time (benchmarks/RESULTS.md). The result is numerically the same network (to float
rounding); training must use the unfused one, whose BN statistics still change.

This module knows no layer names. A module whose conv/BN pairs are plain attributes declares them with a
``batchnorm_pairs()`` method, which covers its whole subtree (the encoders, the decoders' top-down blocks);
anywhere else, a Conv2d directly followed by a BatchNorm2d among an ``nn.Sequential``'s children is a pair.
"""

from __future__ import annotations

import itertools
from typing import TypeVar

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: (owner module, conv attribute, BatchNorm attribute): a convolution whose output goes straight into a BN.
ConvBNPair = tuple[nn.Module, str, str]
_Module = TypeVar("_Module", bound=nn.Module)


def conv_bn_pairs(module: nn.Module) -> list[ConvBNPair]:
    """Every conv + BN pair in ``module``'s subtree: as it declares them, else as :func:`find_conv_bn_pairs`
    finds them."""
    declared = getattr(module, "batchnorm_pairs", None)
    if callable(declared):
        return list(declared())
    return find_conv_bn_pairs(module)


def find_conv_bn_pairs(module: nn.Module) -> list[ConvBNPair]:
    """The pairs among ``module``'s own children if it is an ``nn.Sequential``, then those of each child
    (asking children that declare theirs)."""
    pairs: list[ConvBNPair] = []
    if isinstance(module, nn.Sequential):
        children = list(module.named_children())
        for (name, child), (next_name, following) in itertools.pairwise(children):
            if isinstance(child, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
                pairs.append((module, name, next_name))
    for child in module.children():
        pairs += conv_bn_pairs(child)
    return pairs


def fuse_batchnorm(net: _Module) -> _Module:
    """Fold every conv + BN pair of an eval-mode network in place (the BN becomes an Identity)."""
    if net.training:
        raise ValueError("fuse_batchnorm needs an eval-mode network (BN statistics must be fixed)")
    for owner, conv_name, bn_name in conv_bn_pairs(net):
        conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
        if isinstance(bn, nn.BatchNorm2d):
            setattr(owner, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(owner, bn_name, nn.Identity())
    return net
