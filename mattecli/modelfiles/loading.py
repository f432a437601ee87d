"""Turning a model source into a network: the one loader behind ``--model``, ``matte eval``, ``matte export``
and ``matte train --init``, so that each accepts the same sources and refuses a wrong one with the same line.

=========================================  ==============  ===========================================
source                                     kind            read by
=========================================  ==============  ===========================================
a name (``lite``, ``default``, a cached)   ``weights``     :mod:`mattecli.modelfiles.catalog` finds its file
``FILE.safetensors``                       ``weights``     :func:`mattecli.modelfiles.weights.read_weights`
``FILE.onnx`` (from ``matte export``)      ``onnx``        :class:`mattecli.modelfiles.onnx_model.OnnxNet`
``FILE.pt`` (``checkpoints/step-*.pt``)    ``checkpoint``  :func:`mattecli.modelfiles.checkpoint.load_checkpoint`
``RUN/`` (a ``matte train`` folder)        ``run``         its newest checkpoint, else ``model.safetensors``
=========================================  ==============  ===========================================

A file is judged by its first bytes where its format has a signature (safetensors, the ZIP container that
``torch.save`` writes) and by its suffix otherwise, so a weights file named ``.pt`` still loads, and a photo
or a pickle passed as a model is refused by the reader its name claims, saying what the file really is.

A run folder gives its newest checkpoint, or its ``model.safetensors`` when it has no checkpoints: the
one rule of :func:`mattecli.modelfiles.checkpoint.run_model_file`, the same for inference and for
:func:`read_tensors` (``--init``, ``matte average``). Errors name the file that was read, so for a run
folder they say which of its files it was.

Module imports are light (no torch): torch, the network and the readers are imported when a model is
located, since then it is about to be loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mattecli.errors import MatteError
from mattecli.modelfiles import catalog

if TYPE_CHECKING:
    import torch

    from mattecli.models.config import ModelConfig

#: What a source is (``kind``) and how the file read for it is stored (``format``, never ``run``).
WEIGHTS, ONNX, CHECKPOINT, RUN = "weights", "onnx", "checkpoint", "run"
_SUFFIX_FORMATS = {
    ".safetensors": WEIGHTS,
    ".onnx": ONNX,
    ".pt": CHECKPOINT,
    ".pth": CHECKPOINT,
    ".ckpt": CHECKPOINT,
}
_NOT_FOUND = {
    WEIGHTS: "weights file not found",
    ONNX: "ONNX file not found",
    CHECKPOINT: "checkpoint or run folder not found",
}
_SOURCES = "a model name, a .safetensors or .onnx file, a training checkpoint (.pt) or a run folder"


@dataclass(frozen=True)
class ModelSource:
    """Where a model is: the text given, its ``kind``, and the file to read with its ``format``."""

    text: str
    kind: str
    format: str
    path: Path


@dataclass
class LoadedModel:
    """A network ready for inference and what is known about it.

    ``net`` is a :class:`~mattecli.models.LateFusionNet` in eval mode, or for an ONNX file an
    :class:`~mattecli.modelfiles.onnx_model.OnnxNet` (called the same way). ``provenance`` is how the weights were
    made: a weights or ONNX file's own record, for a checkpoint what ``matte export`` would write into
    one (stage, steps, data, command, last validation). ``path`` is the file read.
    """

    net: Any
    config: ModelConfig
    provenance: dict[str, Any]
    kind: str
    path: Path


@dataclass
class ModelTensors:
    """A model's tensors and config without a network: ``--init`` builds its own, ``matte average`` mixes
    several. A checkpoint's provenance is its summary (:func:`~mattecli.modelfiles.checkpoint.checkpoint_summary`)
    and path, which a run records as where it started."""

    tensors: dict[str, torch.Tensor]
    config: ModelConfig
    provenance: dict[str, Any]
    kind: str
    path: Path


def locate(source: str | os.PathLike[str]) -> ModelSource:
    """Which file ``source`` means and how it is stored, without loading it (one-line errors).

    A name wins over a file or folder of that name in the current folder (:mod:`mattecli.modelfiles.catalog`).
    A run folder means its newest checkpoint, else its export
    (:func:`~mattecli.modelfiles.checkpoint.run_model_file`).
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if not catalog.looks_like_path(text):
        named = catalog.find_model(text)
        if named is not None:
            return ModelSource(text, WEIGHTS, WEIGHTS, named)
        if not path.exists():
            raise catalog.unknown_model(text)
    if path.is_dir():
        from mattecli.modelfiles.checkpoint import run_model_file

        file = run_model_file(path)
        return ModelSource(text, RUN, format_of(file), file)
    if not path.is_file():
        claimed = _SUFFIX_FORMATS.get(path.suffix.lower())
        raise MatteError(_NOT_FOUND.get(claimed, f"model not found (give {_SOURCES})"), path)
    file_format = format_of(path)
    return ModelSource(text, file_format, file_format, path)


def format_of(path: Path) -> str:
    """``weights``, ``onnx`` or ``checkpoint`` for a model file, by content where it has a signature,
    else by suffix (whose reader then says what the file is); anything else is refused here."""
    from mattecli.modelfiles.weights import EMPTY, PICKLE, PYTORCH, SAFETENSORS, file_kind

    content = file_kind(path)
    if content == SAFETENSORS:
        return WEIGHTS
    if content == PYTORCH:
        return CHECKPOINT
    claimed = _SUFFIX_FORMATS.get(path.suffix.lower())
    if claimed == ONNX and content is not None:  # ONNX files have no signature; these kinds do
        raise MatteError(
            "is empty, not an ONNX model" if content == EMPTY else f"not an ONNX model (it is {content})",
            path,
        )
    if claimed is not None:
        return claimed
    if content == PICKLE:
        return CHECKPOINT  # which load_checkpoint refuses, saying why
    if content is None:
        raise MatteError(f"not a model file mattecli reads (give {_SOURCES})", path)
    raise MatteError(f"not a model file (it is {content})", path)


def load_model(source: str | os.PathLike[str] | ModelSource, device: Any = "cpu") -> LoadedModel:
    """The network ``source`` names (see the module docstring), in eval mode on ``device``.

    ONNX files run on the CPU only; another device is refused.
    """

    where = source if isinstance(source, ModelSource) else locate(source)
    if where.format == ONNX:
        check_onnx_device(device, where.path)
        from mattecli.modelfiles.onnx_model import OnnxNet

        net = OnnxNet(where.path)
        return LoadedModel(net, net.config, net.provenance, where.kind, where.path)
    if where.format == WEIGHTS:
        from mattecli.modelfiles.weights import load_weights

        net = load_weights(where.path)
    else:
        from mattecli.modelfiles.checkpoint import load_checkpoint, provenance_from_checkpoint

        state, path = load_checkpoint(where.path)
        net = net_from_checkpoint(state, path)
        net.provenance = provenance_from_checkpoint(state, path)
    return LoadedModel(net.to(device).eval(), net.config, net.provenance, where.kind, where.path)


def check_onnx_device(device: Any, path: Path) -> None:
    """Refuse running an ONNX file anywhere but on the CPU (onnxruntime's CPU provider is what mattecli
    runs), in one line naming the file: the one statement of that rule."""
    import torch

    if torch.device(device).type != "cpu":
        raise MatteError(f"ONNX models run on the CPU (onnxruntime), not {device}", path)


def read_tensors(source: str | os.PathLike[str]) -> ModelTensors:
    """The tensors, config and provenance ``source`` holds, for a network built elsewhere; a run folder
    gives its newest checkpoint (which keeps the encoder's classifier head), as it does for inference."""
    where = locate(source)
    if where.format == ONNX:
        raise MatteError(
            "is an ONNX export (its weights are folded into the graph); give its weights file or checkpoint",
            where.path,
        )
    if where.format == WEIGHTS:
        from mattecli.modelfiles.weights import read_weights

        tensors, config, provenance = read_weights(where.path)
        return ModelTensors(tensors, config, provenance, where.kind, where.path)
    from mattecli.modelfiles.checkpoint import checkpoint_summary, load_checkpoint

    state, path = load_checkpoint(where.path)
    provenance = {"checkpoint": str(path), **checkpoint_summary(state)}
    return ModelTensors(state["model"], _checkpoint_config(state, path), provenance, where.kind, path)


def net_from_checkpoint(state: dict[str, Any], path: Path) -> torch.nn.Module:
    """The eval-mode network of a loaded training checkpoint (its config and tensors, strictly checked)."""
    from mattecli.modelfiles.weights import load_state
    from mattecli.models import LateFusionNet

    net = LateFusionNet(_checkpoint_config(state, path))
    load_state(net, state["model"], path)
    return net.eval()


def _checkpoint_config(state: dict[str, Any], path: Path) -> ModelConfig:
    from mattecli.models.config import ModelConfig

    try:
        return ModelConfig.from_json(state["model_config"])
    except (KeyError, ValueError, TypeError) as exc:
        raise MatteError(f"checkpoint has no valid model config ({exc})", path) from None
