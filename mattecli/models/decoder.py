"""The segmentation decoder: a top-down path plus an FPN path with four side outputs.

The network has two of these with identical structure and separate weights: the foreground branch predicts
F (probability of foreground), the background branch predicts B (probability of background).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mattecli.models.batchnorm_folding import ConvBNPair
from mattecli.models.encoders import EncoderFeatures


class DecoderOutput(NamedTuple):
    """Side outputs at 1/8, 1/4, 1/2 and 1/1 (sigmoid probabilities, native sizes) and the feature
    at full resolution that feeds the fusion network. ``sides[-1]`` is the branch's probability map."""

    sides: tuple[Tensor, Tensor, Tensor, Tensor]
    feature: Tensor


def _upsample2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class TopDownBlock(nn.Module):
    """Nearest x2 upsample, concatenate the skip (if any), 1x1 conv without bias, BN, ReLU."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in + c_skip, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = _upsample2(x)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return F.relu(self.bn(self.conv(x)))

    def batchnorm_pairs(self) -> list[ConvBNPair]:
        """The conv/BN pair that inference folds (:mod:`mattecli.models.batchnorm_folding`)."""
        return [(self, "conv", "bn")]


class FPNLevel(nn.Module):
    """Lateral 1x1 conv (skipped when widths already match) + upsampled coarser FPN feature, then a 3x3
    conv with bias and no activation; a 1x1 conv + sigmoid gives this level's side output."""

    def __init__(self, c_topdown: int, width: int) -> None:
        super().__init__()
        self.lateral = nn.Conv2d(c_topdown, width, 1) if c_topdown != width else nn.Identity()
        self.smooth = nn.Conv2d(width, width, 3, padding=1)
        self.side = nn.Conv2d(width, 1, 1)

    def forward(self, topdown: Tensor, coarser: Tensor) -> tuple[Tensor, Tensor]:
        feature = self.smooth(self.lateral(topdown) + coarser)
        return feature, torch.sigmoid(self.side(feature))


class Decoder(nn.Module):
    """Top-down path over the five encoder stages, then the FPN path at ``width`` channels.

    Top-down widths are ``max(skip channels, width)``; for the paper (encoder 64, 256, 512, 1792, 1920 and
    width 128) that is 1792 (1/16), 512 (1/8), 256 (1/4), 128 (1/2) and 128 (1/1).
    """

    def __init__(self, encoder_channels: tuple[int, ...], width: int) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = encoder_channels
        widths = [max(c, width) for c in (c4, c3, c2, c1)] + [width]
        skips = (c4, c3, c2, c1, 0)
        blocks, c_in = [], c5
        for c_skip, c_out in zip(skips, widths, strict=True):
            blocks.append(TopDownBlock(c_in, c_skip, c_out))
            c_in = c_out
        self.topdown = nn.ModuleList(blocks)
        self.fpn_start = nn.Conv2d(widths[0], width, 1)
        self.fpn = nn.ModuleList(FPNLevel(c, width) for c in widths[1:])
        self.topdown_channels = tuple(widths)

    def forward(self, features: EncoderFeatures) -> DecoderOutput:
        skips = (features.r4, features.r3, features.r2, features.r1, None)
        x = features.bottleneck
        topdown = []
        for block, skip in zip(self.topdown, skips, strict=True):
            x = block(x, skip)
            topdown.append(x)
        coarser = _upsample2(F.relu(self.fpn_start(topdown[0])))
        sides = []
        for i, level in enumerate(self.fpn):
            feature, side = level(topdown[i + 1], coarser)
            sides.append(side)
            if i < len(self.fpn) - 1:
                coarser = _upsample2(feature)
        return DecoderOutput(tuple(sides), feature)
