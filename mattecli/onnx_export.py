"""``matte export MODEL -o model.onnx``: the network as an ONNX graph, for runtimes other than PyTorch.

The graph takes ``image``: float32, N x 3 x H x W, RGB in [0, 1], H and W multiples of 32 (batch, height and
width are dynamic). The network normalises the image itself (``(image - mean) / std`` with the config's
mean and std), so callers feed plain [0, 1] RGB. It returns ``alpha`` (N x 1 x H x W in [0, 1]) and, when
asked, the branches' ``foreground`` (F) and ``background`` (B) probabilities and the fusion weight
``beta``, all at the input size. Resizing an image to a valid size and the matte back is the caller's job,
as it is :class:`~mattecli.inference.Matter`'s in PyTorch.

The file is self-describing: its ``metadata_props`` hold the model config (JSON, as in weights files),
the input and output conventions, the normalisation, the mattecli version and the provenance of the weights.

BatchNorm is folded into the convolutions first, as inference does (:mod:`mattecli.models.fuse`), and the
encoder's TensorFlow-style "same" padding is made static: for inputs whose sides are multiples of 32 every
strided convolution sees an even size, where that padding does not depend on the size. The graph is then
plain convolutions with no shape arithmetic, which also keeps the TorchScript exporter (``dynamo=False``)
from freezing the trace size into the padding.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mattecli import __version__
from mattecli.atomic import atomic_output
from mattecli.errors import MatteError

SUFFIX = ".onnx"
OPSET = 17
FORMAT_VERSION = "1"
INPUT_NAME = "image"
#: Output names in graph order; ``alpha`` is the matte, the others the network's intermediate maps.
OUTPUTS = {
    "alpha": "alpha matte, N x 1 x H x W float32 in [0, 1]: beta * F + (1 - beta) * (1 - B)",
    "foreground": "F: the foreground branch's probability of foreground, N x 1 x H x W in [0, 1]",
    "background": "B: the background branch's probability of background, N x 1 x H x W in [0, 1]",
    "beta": "the fusion network's per-pixel blending weight between F and 1 - B, N x 1 x H x W in [0, 1]",
}
INSTALL_HINT = "pip install 'mattecli[onnx]'"
_DIMS = {0: "batch", 2: "height", 3: "width"}


def parse_outputs(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"alpha,beta"``, ``"all"`` or a sequence of names -> output names in graph order (alpha first)."""
    if spec is None:
        return ("alpha",)
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n) for n in spec]
    names = [n for n in names if n]
    if names == ["all"]:
        return tuple(OUTPUTS)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown or not names:
        choices = ", ".join(OUTPUTS)
        raise MatteError(f"unknown ONNX output {(unknown or [''])[0]!r} (choose from {choices}, or all)")
    return tuple(n for n in OUTPUTS if n in names)


def export_onnx(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    outputs: str | Sequence[str] | None = None,
    overwrite: bool = False,
    half: bool = False,
) -> Path:
    """Write ``model`` as an ONNX file (atomically) and return its path.

    Args:
        model: A ``.safetensors`` weights file, a model name (``default``, ``lite``, see ``matte models``),
            a training run folder (its newest checkpoint) or a ``.pt`` checkpoint.
        output: The ``.onnx`` file to write.
        outputs: Graph outputs: ``alpha`` (default), or names from :data:`OUTPUTS` (``"alpha,beta"``,
            ``"all"``).
        overwrite: Replace an existing file instead of refusing.
        half: Refused: ONNX files are float32 (``--half`` is for ``.safetensors`` weights).
    """
    output = _checked_output(output, overwrite)
    names = parse_outputs(outputs)
    if half:
        raise MatteError("--half is for .safetensors weights; ONNX files hold float32", output)
    onnx = _import_onnx()
    net, provenance = load_model(model)
    graph = onnx.load_from_string(_trace(exportable(net, names), names))
    _describe(graph, net.config, names, provenance)
    onnx.checker.check_model(graph)
    with atomic_output(output, overwrite=overwrite) as temporary:
        onnx.save_model(graph, str(temporary))
    return output


def load_model(spec: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The eval-mode network and its provenance, from a weights file, a model name or a training run.

    Reuses the loaders of ``matte image --model`` (registry + weights file) and of ``matte export``
    (checkpoint), so their checks and error messages apply unchanged.
    """
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_dir() or path.suffix == ".pt":
        return _load_checkpoint(path)
    if not path.exists() and os.sep in text and path.suffix != ".safetensors":
        raise MatteError(
            "model not found (give a .safetensors file, a model name, a run folder or a .pt checkpoint)",
            path,
        )
    from mattecli.registry import resolve_model
    from mattecli.weights import load_weights

    weights = resolve_model(text)
    net = load_weights(weights)
    provenance = {
        "mattecli_version": __version__,
        "exported_at": _now(),
        "model": text,
        "weights_file": weights.name,
        "weights": getattr(net, "provenance", {}),
    }
    return net, provenance


def _load_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """As :func:`mattecli.training.export_checkpoint` loads it, with the same provenance."""
    from mattecli.config import ModelConfig
    from mattecli.models import LateFusionNet
    from mattecli.training import checkpoint as ckpt
    from mattecli.training.export import provenance_from_checkpoint
    from mattecli.training.trainer import load_model_tensors

    state, found = ckpt.load_checkpoint(path)
    net = LateFusionNet(ModelConfig.from_json(state["model_config"]))
    load_model_tensors(net, state["model"], str(found))
    return net.eval(), provenance_from_checkpoint(state, found)


class ExportGraph(nn.Module):
    """The network with tuple outputs (ONNX graphs return tensors, not dataclasses)."""

    def __init__(self, net: nn.Module, outputs: Sequence[str]) -> None:
        super().__init__()
        self.net = net
        self.outputs = tuple(outputs)

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        result = self.net(image)
        return tuple(getattr(result, name) for name in self.outputs)


class StaticSamePadConv2d(nn.Module):
    """A :class:`~mattecli.models.encoders.SamePadConv2d` with its padding fixed for inputs whose sides are
    multiples of its stride: there "same" padding is ``max((k - 1) * d + 1 - s, 0)`` in total, the extra
    pixel after. Symmetric padding goes into the convolution itself, asymmetric padding into one constant
    pad before it."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        pads: list[int] = []
        for k, s, d in zip(
            reversed(conv.kernel_size), reversed(conv.stride), reversed(conv.dilation), strict=True
        ):
            total = max((k - 1) * d + 1 - s, 0)
            pads += [total // 2, total - total // 2]
        symmetric = pads[0] == pads[1] and pads[2] == pads[3]
        self.pads = None if symmetric else pads
        self.conv = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            (pads[2], pads[0]) if symmetric else 0,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
        )
        self.conv.load_state_dict(conv.state_dict())

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, self.pads) if self.pads else x)


def exportable(net: nn.Module, outputs: Sequence[str] = ("alpha",)) -> ExportGraph:
    """A copy of ``net`` ready to trace: eval mode, BatchNorm folded, static padding, tuple outputs."""
    from mattecli.models.batchnorm_folding import fuse_batchnorm

    net = fuse_batchnorm(copy.deepcopy(net).float().eval())
    _make_padding_static(net)
    return ExportGraph(net, outputs).eval()


def _make_padding_static(module: nn.Module) -> None:
    from mattecli.models.encoders import SamePadConv2d

    for name, child in module.named_children():
        if isinstance(child, SamePadConv2d):
            setattr(module, name, StaticSamePadConv2d(child))
        else:
            _make_padding_static(child)


def _trace(graph: ExportGraph, outputs: Sequence[str]) -> bytes:
    """The serialised ONNX model (TorchScript exporter: fast, no onnxscript needed)."""
    # Batch 2 and unequal sides, so that no size is mistaken for another while tracing.
    dummy = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # Tracer warnings (the input-size check is traced as constant) and the exporter's deprecation
        # notice are about the tracing, not the user's model.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (dummy,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(outputs),
            dynamic_axes={name: _DIMS for name in (INPUT_NAME, *outputs)},
            do_constant_folding=True,
        )
    return buffer.getvalue()


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
    onnx = _import_onnx()
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
    from mattecli.config import ModelConfig

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
        ort = _import_onnxruntime()
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


def _describe(graph: Any, config: Any, outputs: Sequence[str], provenance: dict[str, Any]) -> None:
    graph.producer_name = "mattecli"
    graph.producer_version = __version__
    graph.doc_string = (
        f"mattecli Late Fusion CNN ({config.name}). Input {INPUT_NAME}: float32 N x 3 x H x W, RGB in [0, 1], "
        f"H and W multiples of 32 (normalised inside). Outputs: {', '.join(outputs)}, N x 1 x H x W in [0, 1]."
    )
    del graph.metadata_props[:]
    for key, value in onnx_metadata(config, outputs, provenance).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value


def _checked_output(output: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse a misnamed or taken destination before any loading or tracing."""
    output = Path(output).expanduser()
    if output.suffix.lower() != SUFFIX:
        raise MatteError(f"the ONNX file name must end in {SUFFIX}", output)
    if output.is_dir():
        raise MatteError("is a folder; give a file name to write to", output)
    if output.exists() and not overwrite:
        raise MatteError("file exists (pass --overwrite to replace it)", output)
    return output


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MatteError(f"running ONNX files needs onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MatteError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
