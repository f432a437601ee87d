"""Weights files: safetensors with the model config and provenance in the metadata.

A weights file alone rebuilds the right network: its metadata holds ``mattecli.config`` (the
:class:`~mattecli.models.config.ModelConfig` as JSON), ``mattecli.provenance`` (JSON: how the weights were made)
and ``mattecli.format`` (the file format version). safetensors never executes code on load, unlike pickle,
so files from strangers are safe to open. A file whose tensors or config do not match is refused with a
one-line :class:`~mattecli.errors.MatteError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mattecli.atomic import atomic_output
from mattecli.errors import MatteError
from mattecli.models.config import ModelConfig

FORMAT_VERSION = "1"
_CONFIG_KEY = "mattecli.config"
_PROVENANCE_KEY = "mattecli.provenance"
_FORMAT_KEY = "mattecli.format"


def is_unused_tensor(key: str, encoder: str | None = None) -> bool:
    """Whether ``key`` belongs to the encoder's ImageNet classifier head, which matting never runs (weights
    files leave it out; training checkpoints keep it). ``encoder`` names the backbone; without it the
    prefixes of every registered encoder count."""
    from mattecli.models.late_fusion import unused_tensor_prefixes

    return key.startswith(unused_tensor_prefixes(encoder))


def inference_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict without the encoder's unused classifier head, made contiguous."""
    encoder = model.config.encoder
    return {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not is_unused_tensor(k, encoder)
    }


def save_weights(
    model: nn.Module,
    path: str | Path,
    provenance: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write inference weights atomically (temporary file, then rename).

    Args:
        model: A :class:`~mattecli.models.LateFusionNet` (its ``config`` goes into the metadata).
        path: Destination ``.safetensors`` file.
        provenance: Free-form facts about how the weights were made (data, commands, steps, metrics).
        dtype: Store floating-point tensors in this dtype (e.g. ``torch.float16`` to halve the file).
    """
    from safetensors.torch import save_file

    path = Path(path)
    tensors = inference_state_dict(model)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    metadata = {
        _FORMAT_KEY: FORMAT_VERSION,
        _CONFIG_KEY: model.config.to_json(),
        _PROVENANCE_KEY: json.dumps(provenance or {}, sort_keys=True),
    }
    with atomic_output(path, overwrite=True) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


#: What :func:`file_kind` calls the formats mattecli reads itself.
EMPTY, SAFETENSORS, PYTORCH, PICKLE = (
    "an empty file",
    "a safetensors file",
    "a PyTorch file",
    "a Python pickle",
)
#: Leading bytes of files that people pass by mistake (a photo for a model, a renamed download).
_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"\x1aE\xdf\xa3", "a Matroska or WebM video"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", PYTORCH),  # a ZIP archive, the container torch.save writes
)


def file_kind(path: str | Path) -> str | None:
    """What a file is, from its first bytes (None: not recognised), to say so in an error message.

    safetensors files start with the little-endian length of a JSON header, then the header's ``{``;
    pickles (torch's legacy format, or plain Python ones) start with the PROTO opcode 0x80.
    """
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return EMPTY
    size = Path(path).stat().st_size
    if len(head) > 8 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < size:
        return SAFETENSORS
    if head[4:8] == b"ftyp":
        return "an MP4 or MOV video"
    if head[:4] == b"RIFF":
        return {b"WEBP": "a WebP image", b"AVI ": "an AVI video", b"WAVE": "a WAV file"}.get(
            head[8:12], "a RIFF file"
        )
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return PICKLE if head[0] == 0x80 else None


def read_metadata(path: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    """Config and provenance of a weights file, without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise MatteError("weights file not found", path)
    kind = file_kind(path)
    if kind != SAFETENSORS:
        raise MatteError(_not_weights(kind), path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as exc:
        raise MatteError(f"damaged or truncated safetensors file ({_short(exc)})", path) from None
    if _CONFIG_KEY not in metadata:
        raise MatteError("weights file has no mattecli config in its metadata", path)
    try:
        config = ModelConfig.from_json(metadata[_CONFIG_KEY])
        provenance = json.loads(metadata.get(_PROVENANCE_KEY, "{}"))
    except (ValueError, TypeError) as exc:
        raise MatteError(f"weights file has an invalid config ({_short(exc)})", path) from None
    return config, provenance


def read_weights(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], ModelConfig, dict[str, Any]]:
    """The tensors, config and provenance of a weights file, checked as far as the file alone allows."""
    from safetensors.torch import load_file

    path = Path(path)
    config, provenance = read_metadata(path)
    try:
        tensors = load_file(str(path), device=str(map_location))
    except Exception as exc:
        raise MatteError(f"weights file is corrupted ({_short(exc)})", path) from None
    return tensors, config, provenance


def load_weights(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Build the network described by a weights file and load its tensors (strictly).

    Returns a :class:`~mattecli.models.LateFusionNet` in eval mode with ``provenance`` attached.
    """
    from mattecli.models import LateFusionNet

    tensors, config, provenance = read_weights(path, map_location)
    model = LateFusionNet(config)
    load_state(model, tensors, Path(path))
    model.provenance = provenance
    return model.eval()


def load_state(
    model: nn.Module, tensors: dict[str, torch.Tensor], source: str | Path, *, check_finite: bool = True
) -> None:
    """Load ``tensors`` into ``model`` strictly, as every loader does (weights files, checkpoints, --init).

    Every tensor of the model must be there with its shape, except the encoder's unused classifier head
    (weights files leave it out, checkpoints keep it), and nothing else may be; each is cast to the
    model's dtype (a float16 file loads into float32). ``check_finite`` refuses NaN or infinite values.
    A mismatch is a one-line :class:`~mattecli.errors.MatteError` naming ``source``.
    """
    expected = model.state_dict()
    config = getattr(model, "config", None)
    encoder = getattr(config, "encoder", None)
    missing = sorted(k for k in expected if k not in tensors and not is_unused_tensor(k, encoder))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise MatteError(f"tensors do not match the config: {'; '.join(parts)}", source)
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise MatteError(
                f"tensor {key} has shape {tuple(value.shape)}, config needs {tuple(expected[key].shape)}",
                source,
            )
        if check_finite and value.is_floating_point() and not torch.isfinite(value).all():
            raise MatteError(f"tensor {key} contains NaN or infinite values", source)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=False)


def _not_weights(kind: str | None) -> str:
    if kind == PYTORCH:
        return "is a PyTorch file, not a weights file (matte export turns a training checkpoint into one)"
    if kind == EMPTY:
        return "is empty, not a weights file"
    return f"not a weights file (it is {kind})" if kind else "not a valid safetensors weights file"


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
