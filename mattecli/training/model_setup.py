"""Setting up a run's network: which model config it trains, and the network with its first weights.

The config is a registered name (``lite``, ``paper``) or a JSON file, changed by the run's width settings
(``--decoder-channels`` and friends), or the one the ``--init`` model holds, which width settings must
then describe. The first weights are ImageNet's for a new encoder (:func:`build_model`) or the ``--init``
model's, read by the shared loader (:func:`mattecli.modelfiles.loading.read_tensors`: a weights file, a training
checkpoint or a run folder) and loaded with the same strict checks as inference
(:func:`mattecli.modelfiles.weights.load_state`). Kept apart from the training loop so that code which only needs a
network (export, evaluation) never imports the trainer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from mattecli.errors import MatteError
from mattecli.modelfiles.catalog import get_config
from mattecli.models.config import ModelConfig
from mattecli.training.runconfig import RunConfig


def resolve_model_config(name_or_file: str) -> ModelConfig:
    """A registered config name (``lite``, ``paper``) or a JSON file holding a ModelConfig."""
    if name_or_file.endswith(".json") or os.sep in name_or_file:
        path = Path(name_or_file)
        if not path.is_file():
            raise MatteError("model config file not found", path)
        try:
            return ModelConfig.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, TypeError) as exc:
            raise MatteError(f"not a valid model config ({exc})", path) from None
    try:
        return get_config(name_or_file)
    except ValueError as exc:
        raise MatteError(str(exc)) from None


_WIDTH_LABELS = {
    "decoder_channels": "decoder width",
    "fusion_channels": "fusion widths",
    "fusion_image_channels": "fusion image width",
}


def apply_widths(model_config: ModelConfig, run: RunConfig) -> ModelConfig:
    """The model config with the run's width settings applied (the same object when there are none).

    ``fusion_channels`` is one width for every fusion layer or a list with one per layer. The name gets a
    suffix saying what changed: ``-w24`` when all three widths became 24, else ``-d24``, ``-f32`` (or
    ``-f32x16``) and ``-i16`` for the decoder, fusion and fusion-image widths that were set.
    """
    wanted = _wanted_widths(model_config, run)
    if not wanted:
        return model_config
    changed = model_config.replace(**wanted)
    return changed.replace(name=f"{model_config.name}-{_width_suffix(wanted)}")


def _wanted_widths(model_config: ModelConfig, run: RunConfig) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    if run.decoder_channels is not None:
        wanted["decoder_channels"] = int(run.decoder_channels)
    if run.fusion_channels is not None:
        value = run.fusion_channels
        layers = len(model_config.fusion_channels)
        wanted["fusion_channels"] = (
            tuple(value) if isinstance(value, list | tuple) else (int(value),) * layers
        )
    if run.fusion_image_channels is not None:
        wanted["fusion_image_channels"] = int(run.fusion_image_channels)
    return wanted


def _width_suffix(wanted: dict[str, Any]) -> str:
    fusion = wanted.get("fusion_channels")
    if len(wanted) == 3 and len(set(fusion)) == 1:
        width = fusion[0]
        if wanted["decoder_channels"] == width == wanted["fusion_image_channels"]:
            return f"w{width}"
    parts = []
    if "decoder_channels" in wanted:
        parts.append(f"d{wanted['decoder_channels']}")
    if fusion is not None:
        parts.append("f" + (str(fusion[0]) if len(set(fusion)) == 1 else "x".join(map(str, fusion))))
    if "fusion_image_channels" in wanted:
        parts.append(f"i{wanted['fusion_image_channels']}")
    return "-".join(parts)


def check_init_widths(model_config: ModelConfig, run: RunConfig, source: str) -> None:
    """Width settings must describe the model that --init holds (they cannot reshape trained weights)."""
    for key, want in _wanted_widths(model_config, run).items():
        have = getattr(model_config, key)
        if want != have:
            shown = lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
            raise MatteError(
                f"{_WIDTH_LABELS[key]} {shown(want)} asked for, but the --init model holds {shown(have)}",
                source,
            )


def load_init_weights(path: str) -> tuple[dict[str, Tensor], ModelConfig, dict[str, Any]]:
    """Model tensors, config and provenance of the ``--init`` model (see :func:`mattecli.modelfiles.loading.read_tensors`)."""
    from mattecli.modelfiles.loading import read_tensors

    found = read_tensors(path)
    return found.tensors, found.config, found.provenance


def load_model_tensors(model: nn.Module, tensors: dict[str, Tensor], source: str) -> None:
    """Load ``--init`` or ``--resume`` tensors strictly (:func:`mattecli.modelfiles.weights.load_state`), without its
    NaN scan: a resumed run restores exactly what it saved."""
    from mattecli.modelfiles.weights import load_state

    load_state(model, tensors, source, check_finite=False)


def build_model(config: ModelConfig, pretrained: bool) -> nn.Module:
    """A LateFusionNet, with ImageNet encoder weights when asked (a one-line error if unavailable)."""
    from mattecli.models import LateFusionNet

    try:
        return LateFusionNet(config, pretrained_encoder=pretrained)
    except MatteError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160]
        raise MatteError(
            f"cannot load ImageNet weights for the {config.encoder} encoder ({reason}); "
            "train with --no-pretrained or start from --init WEIGHTS"
        ) from None
