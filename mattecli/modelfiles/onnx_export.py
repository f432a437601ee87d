"""``matte export MODEL -o model.onnx``: the network as an ONNX graph, for runtimes other than PyTorch.

What the graph takes and returns, and the metadata that makes the file self-describing, are
:mod:`mattecli.modelfiles.onnx_model`'s (which also runs such files: :class:`OnnxNet`, re-exported here); the model
to export comes from :mod:`mattecli.modelfiles.loading` (a name, a weights file, a checkpoint or a run folder).

BatchNorm is folded into the convolutions first, as inference does (:mod:`mattecli.models.batchnorm_folding`), and the
encoder's TensorFlow-style "same" padding is made static: for inputs whose sides are multiples of 32 every
strided convolution sees an even size, where that padding does not depend on the size. The graph is then
plain convolutions with no shape arithmetic, which also keeps the TorchScript exporter (``dynamo=False``)
from freezing the trace size into the padding.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mattecli import __version__
from mattecli.atomic import atomic_output
from mattecli.errors import MatteError, UsageError
from mattecli.modelfiles.onnx_model import (  # the file format; OnnxNet and its helpers stay importable from here
    FORMAT_VERSION,
    INPUT_NAME,
    INSTALL_HINT,
    OUTPUTS,
    SUFFIX,
    OnnxNet,
    OnnxOutput,
    decode_metadata,
    import_onnx,
    onnx_metadata,
    read_onnx_metadata,
)

__all__ = [
    "FORMAT_VERSION",
    "INPUT_NAME",
    "INSTALL_HINT",
    "OPSET",
    "OUTPUTS",
    "SUFFIX",
    "ExportGraph",
    "OnnxNet",
    "OnnxOutput",
    "StaticSamePadConv2d",
    "decode_metadata",
    "export_onnx",
    "exportable",
    "network_to_export",
    "onnx_metadata",
    "parse_outputs",
    "read_onnx_metadata",
]

OPSET = 17
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
        raise UsageError(f"unknown ONNX output {(unknown or [''])[0]!r} (choose from {choices}, or all)")
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
            a training run folder (its newest checkpoint, else its ``model.safetensors``: the one rule of
            :func:`~mattecli.modelfiles.checkpoint.run_model_file`) or a ``.pt`` checkpoint.
        output: The ``.onnx`` file to write.
        outputs: Graph outputs: ``alpha`` (default), or names from :data:`OUTPUTS` (``"alpha,beta"``,
            ``"all"``).
        overwrite: Replace an existing file instead of refusing.
        half: Refused: ONNX files are float32 (``--half`` is for ``.safetensors`` weights).
    """
    output = _checked_output(output, overwrite)
    names = parse_outputs(outputs)
    if half:
        raise UsageError("--half is for .safetensors weights; ONNX files hold float32", output)
    onnx = import_onnx()
    net, provenance = network_to_export(model)
    graph = onnx.load_from_string(_trace(exportable(net, names), names))
    _describe(graph, net.config, names, provenance)
    onnx.checker.check_model(graph)
    with atomic_output(output, overwrite=overwrite) as temporary:
        onnx.save_model(graph, str(temporary))
    return output


def network_to_export(spec: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The eval-mode network and the provenance to write into the ONNX file, from anything
    :func:`mattecli.modelfiles.loading.load_model` takes except an ONNX file (the graph is traced from PyTorch).

    A checkpoint or run folder carries its training provenance (stage, steps, data, as ``matte export``
    writes into a weights file); a name or weights file is recorded with the weights' own provenance.
    """
    from mattecli.modelfiles import loading

    loaded = loading.load_model(spec)
    if loaded.kind == loading.ONNX:
        raise MatteError("is an ONNX file already; export from its weights file or checkpoint", loaded.path)
    if loaded.kind in (loading.CHECKPOINT, loading.RUN):
        return loaded.net, loaded.provenance
    provenance = {
        "mattecli_version": __version__,
        "exported_at": _now(),
        "model": os.fspath(spec),
        "weights_file": loaded.path.name,
        "weights": loaded.provenance,
    }
    return loaded.net, provenance


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


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
