"""``matte export``: turn a training checkpoint into an inference weights file.

The weights file (safetensors) holds the model tensors without optimiser state, and its metadata carries
the model config and the provenance a model card needs: stage, steps, data, the training command line and
the last validation metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mattecli.errors import MatteError
from mattecli.modelfiles import checkpoint as ckpt
from mattecli.modelfiles.checkpoint import provenance_from_checkpoint


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    *,
    half: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write inference weights (safetensors + config + provenance) from a checkpoint or run folder.

    Args:
        checkpoint: A ``.pt`` checkpoint or a run folder (its newest checkpoint).
        output: The ``.safetensors`` file to write (atomically).
        half: Store float16 tensors (half the size; inference upcasts as needed).
        overwrite: Replace an existing file instead of refusing.
    """
    from mattecli.modelfiles.loading import net_from_checkpoint

    output = checked_output(output, overwrite)
    _refuse_a_model_name(checkpoint)
    state, path = ckpt.load_checkpoint(checkpoint)
    return save_exported(net_from_checkpoint(state, path), state, path, output, half=half)


def _refuse_a_model_name(checkpoint: str | Path) -> None:
    """``matte export lite -o x.safetensors`` said 'lite: checkpoint or run folder not found'."""
    from mattecli.modelfiles.catalog import find_model

    if Path(checkpoint).expanduser().exists():
        return
    weights = find_model(str(checkpoint))
    if weights is not None:
        raise MatteError(
            f"is a model name, not a training checkpoint: its weights file ({weights}) needs no export "
            "(-o NAME.onnx exports it to ONNX)",
            checkpoint,
        )


def save_exported(
    model: torch.nn.Module, state: dict[str, Any], source: Path, output: Path, *, half: bool = False
) -> Path:
    """Write ``model`` (whose tensors are the checkpoint ``state``'s) with the checkpoint's provenance.

    Inference weights are float32 (float16 with ``half``) whatever precision the run trained in.
    """
    from mattecli.modelfiles.weights import save_weights

    provenance = provenance_from_checkpoint(state, source)
    return save_weights(model, output, provenance, dtype=torch.float16 if half else torch.float32)


def checked_output(output: str | Path, overwrite: bool) -> Path:
    """The destination of a weights file, refused early (before any loading) if it is misnamed or taken."""
    output = Path(output).expanduser()
    if output.is_dir():
        raise MatteError("is a folder; -o takes the file to write (FILE.safetensors)", output)
    if output.suffix != ".safetensors":
        raise MatteError("the weights file name must end in .safetensors", output)
    if output.exists() and not overwrite:
        raise MatteError("file exists (pass --overwrite to replace it)", output)
    return output
