"""Exported ONNX files: the graph's contract, the metadata that describes it, and :class:`OnnxNet`.

An exported graph (``matte export MODEL -o model.onnx``, :mod:`mattecli.modelfiles.onnx_export`) takes ``image``:
float32, N x 3 x H x W, RGB in [0, 1], H and W multiples of 32 (batch, height and width are dynamic). The
network normalises the image itself (``(image - mean) / std`` with the config's mean and std), so callers
feed plain [0, 1] RGB. It returns ``alpha`` (N x 1 x H x W in [0, 1]) and, when asked, the branches'
``foreground`` (F) and ``background`` (B) probabilities and the fusion weight ``beta``, all at the input
size. Resizing an image to a valid size and the matte back is the caller's job, as it is
:class:`~mattecli.inference.Matter`'s in PyTorch.

The file is self-describing: its ``metadata_props`` hold the model config (JSON, as in weights files),
the input and output conventions, the normalisation, the mattecli version and the provenance of the weights.
This module holds that format (written by :func:`onnx_metadata`, read by :func:`decode_metadata`) and the
onnxruntime wrapper that runs such a file, apart from the exporter: reading a model
(:mod:`mattecli.modelfiles.loading`) needs only this, and the exporter needs the loader.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mattecli import __version__
from mattecli.errors import MatteError
from mattecli.extras import install_command

SUFFIX = ".onnx"
FORMAT_VERSION = "1"
INPUT_NAME = "image"
#: Output names in graph order; ``alpha`` is the matte, the others the network's intermediate maps.
OUTPUTS = {
    "alpha": "alpha matte, N x 1 x H x W float32 in [0, 1]: beta * F + (1 - beta) * (1 - B)",
    "foreground": "F: the foreground branch's probability of foreground, N x 1 x H x W in [0, 1]",
    "background": "B: the background branch's probability of background, N x 1 x H x W in [0, 1]",
    "beta": "the fusion network's per-pixel blending weight between F and 1 - B, N x 1 x H x W in [0, 1]",
}
#: The command that installs the onnx extra where this mattecli runs (pipx inject ..., or pip).
INSTALL_HINT = install_command("onnx")


def onnx_metadata(config: Any, outputs: Sequence[str], provenance: dict[str, Any]) -> dict[str, str]:
    """The ``metadata_props`` of an exported file: everything a caller needs besides the graph."""
    return {
        "mattecli.format": FORMAT_VERSION,
        "mattecli.version": __version__,
        "mattecli.config": config.to_json(),
        "mattecli.input": json.dumps(
            {
                "name": INPUT_NAME,
                "shape": ["batch", 3, "height", "width"],
                "layout": "NCHW",
                "dtype": "float32",
                "channels": "RGB",
                "range": [0.0, 1.0],
                "multiple_of": 32,
                "suggested_long_side": config.default_size,
            }
        ),
        "mattecli.normalization": json.dumps(
            {
                "applied": "inside the graph: (image - mean) / std per channel; feed [0, 1] RGB as it is",
                "mean": list(config.mean),
                "std": list(config.std),
            }
        ),
        "mattecli.outputs": json.dumps({name: OUTPUTS[name] for name in outputs}),
        "mattecli.provenance": json.dumps(provenance, sort_keys=True, default=str),
    }


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An exported file's metadata, JSON values decoded (``config`` as a ModelConfig)."""
    onnx = import_onnx()
    path = Path(path)
    if not path.is_file():
        raise MatteError("ONNX file not found", path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise MatteError(f"not a readable ONNX file ({_short(exc)})", path) from None
    return decode_metadata({p.key: p.value for p in model.metadata_props}, path)


def decode_metadata(props: dict[str, str], path: str | os.PathLike[str]) -> dict[str, Any]:
    """``metadata_props`` as written by :func:`onnx_metadata` -> values (``config`` as a ModelConfig)."""
    from mattecli.models.config import ModelConfig

    if "mattecli.config" not in props:
        raise MatteError("ONNX file has no mattecli config in its metadata (not exported by mattecli?)", path)
    try:
        decoded: dict[str, Any] = {
            key.removeprefix("mattecli."): value if key in _PLAIN_KEYS else json.loads(value)
            for key, value in props.items()
            if key.startswith("mattecli.")
        }
        decoded["config"] = ModelConfig.from_json(props["mattecli.config"])
    except (ValueError, TypeError) as exc:
        raise MatteError(f"ONNX file has invalid mattecli metadata ({_short(exc)})", path) from None
    return decoded


_PLAIN_KEYS = ("mattecli.format", "mattecli.version")


@dataclass
class OnnxOutput:
    """What :class:`OnnxNet` returns: the maps the file exports (N x 1 x H x W tensors), None for the
    others. ``alpha`` is always there."""

    alpha: Tensor
    foreground: Tensor | None = None
    background: Tensor | None = None
    beta: Tensor | None = None


class OnnxNet:
    """An exported file run by onnxruntime, called like a :class:`~mattecli.models.LateFusionNet`.

    ``net(batch).alpha`` takes and returns what the network does (N x 3 x H x W float32 in [0, 1], sides
    multiples of 32; torch tensors), and ``config`` is the file's model config, so code written for the
    PyTorch network (``Matter._forward``: resizing, tiles, the mirrored ``--tta`` pass) runs it unchanged.
    CPU only. On the bundled model at 512 px it is faster than the PyTorch path (benchmarks/RESULTS.md).

    Args:
        path: A file written by :func:`export_onnx`.
        threads: onnxruntime's intra-op threads (default: torch's thread count, as the PyTorch path uses).
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise MatteError("ONNX file not found", self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Sleeping, not spinning, worker threads: on a shared CPU spinning was 30 % slower
        # (benchmarks/RESULTS.md), and the CLI asks the same of PyTorch's OpenMP threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise MatteError(f"onnxruntime cannot load this file ({_short(exc)})", self.path) from None
        meta = decode_metadata(self.session.get_modelmeta().custom_metadata_map, self.path)
        self.config, self.provenance = meta["config"], meta.get("provenance", {})
        self.output_names = [o.name for o in self.session.get_outputs()]
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != [INPUT_NAME] or "alpha" not in self.output_names:
            raise MatteError(f"ONNX file needs an {INPUT_NAME} input and an alpha output", self.path)

    def __call__(self, image: Tensor) -> OnnxOutput:
        from mattecli.models.late_fusion import check_input_size

        check_input_size(image)
        array = np.ascontiguousarray(image.detach().to("cpu", torch.float32).numpy())
        results = self.session.run(None, {INPUT_NAME: array})
        maps = {name: torch.from_numpy(value) for name, value in zip(self.output_names, results, strict=True)}
        return OnnxOutput(**{name: value for name, value in maps.items() if name in OUTPUTS})

    def eval(self) -> OnnxNet:
        """No train mode to leave; here so that code calling ``net.eval()`` works."""
        return self


def import_onnxruntime() -> Any:
    """onnxruntime, or a one-line error saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise MatteError(f"running ONNX files needs onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


def import_onnx() -> Any:
    """The onnx package, or a one-line error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise MatteError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
