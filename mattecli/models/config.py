"""Model configurations: one frozen dataclass describes a network variant completely.

A config travels inside every weights file (as JSON in the safetensors metadata), so a weights file alone
rebuilds the right network. ``PAPER`` is the exact configuration of Zhang et al. (CVPR 2019); ``LITE`` is a
narrower CPU-sized variant with an EfficientNet-Lite0 encoder, and ``LITE1`` / ``LITE2`` are the same with
the larger EfficientNet-Lite1 / Lite2 encoders. Names are :mod:`mattecli.modelfiles.catalog`'s: each of
these is registered there (with its weights where it has some); add variants with
:func:`~mattecli.modelfiles.catalog.register_config`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from mattecli.models.encoder_registry import check_encoder_name

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The authors fed RGB in 0..255 minus this mean pixel (no scaling) with their Keras ImageNet weights.
AUTHORS_MEAN_PIXEL = (127.16, 115.92, 106.03)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a :class:`~mattecli.models.LateFusionNet`.

    Attributes:
        name: Variant name, shown by ``matte models``.
        encoder: Backbone, a name registered in :mod:`mattecli.models.encoder_registry`.
        decoder_channels: Width of each decoder's FPN path (128 in the paper). The top-down path uses
            ``max(skip channels, decoder_channels)`` at every stage, as the paper does.
        fusion_channels: Widths of the fusion network's 3x3 conv + BN + ReLU layers (paper: 256, 128, 128,
            64, 256).
        fusion_image_channels: Width of the fusion network's 3x3 conv of the normalised RGB image
            (paper: 128).
        mean, std: Input normalisation applied inside the network to RGB in [0, 1]: ``(x - mean) / std``.
        default_size: Long side, in pixels and a multiple of 32, that inference resizes to by default.
    """

    name: str = "paper"
    encoder: str = "densenet201"
    decoder_channels: int = 128
    fusion_channels: tuple[int, ...] = (256, 128, 128, 64, 256)
    fusion_image_channels: int = 128
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    default_size: int = 800
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        check_encoder_name(self.encoder)
        if self.decoder_channels <= 0 or not self.fusion_channels or min(self.fusion_channels) <= 0:
            raise ValueError("decoder and fusion widths must be positive")
        if self.default_size % 32:
            raise ValueError(f"default_size must be a multiple of 32, got {self.default_size}")
        # Normalise sequences loaded from JSON back to tuples so configs compare equal.
        object.__setattr__(self, "fusion_channels", tuple(int(c) for c in self.fusion_channels))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def to_json(self) -> str:
        """Serialise to a JSON string (stored in weights-file metadata)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        """Rebuild a config from :meth:`to_json` output; unknown keys are rejected."""
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self, **changes: Any) -> ModelConfig:
        """Return a copy with some fields changed (e.g. a tiny test variant)."""
        return dataclasses.replace(self, **changes)


#: The paper's exact configuration: DenseNet-201, 128-wide decoders, fusion 256-128-128-64-256.
PAPER = ModelConfig()

#: The paper's configuration with the authors' own input convention (0..255 minus their mean pixel), for
#: weights converted from their Keras release.
PAPER_AUTHORS_INPUT = PAPER.replace(
    name="paper-authors-input",
    mean=tuple(m / 255.0 for m in AUTHORS_MEAN_PIXEL),
    std=(1 / 255.0, 1 / 255.0, 1 / 255.0),
)

#: CPU-sized variant: EfficientNet-Lite0 encoder, 16-wide decoders and fusion network. Sized so that a
#: 512 px image runs at several images per second on two CPU cores (see benchmarks/RESULTS.md).
LITE = ModelConfig(
    name="lite",
    encoder="efficientnet_lite0",
    decoder_channels=16,
    fusion_channels=(16, 16, 16, 16, 16),
    fusion_image_channels=16,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    default_size=512,
)

#: ``lite`` with the larger EfficientNet-Lite1 encoder (21 blocks instead of 16, same widths): more
#: capacity at about the same feature sizes, for when ``lite`` is the speed floor's bottleneck no more.
LITE1 = LITE.replace(name="lite1", encoder="efficientnet_lite1")

#: ``lite`` with EfficientNet-Lite2 (21 blocks, about 10 % wider: 24, 48, 120, 352 channels).
LITE2 = LITE.replace(name="lite2", encoder="efficientnet_lite2")
