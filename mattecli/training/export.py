"""``matte export``: turn a training checkpoint into an inference weights file.

The weights file (safetensors) holds the model tensors without optimiser state, and its metadata carries
the model config and the provenance a model card needs: stage, steps, data, the training command line and
the last validation metrics.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from mattecli import __version__
from mattecli.config import ModelConfig
from mattecli.errors import MatteError
from mattecli.training import checkpoint as ckpt


def provenance_from_checkpoint(state: dict[str, Any], source: Path) -> dict[str, Any]:
    """The facts about how a checkpoint's weights were made, as JSON-ready values."""
    summary = ckpt.checkpoint_summary(state)
    run = summary["run_config"]
    return {
        "mattecli_version": __version__,
        "exported_at": datetime.now().isoformat(timespec="seconds"),
        "checkpoint": str(source),
        "stage": summary["stage"],
        "steps": summary["step"],
        "epochs": round(summary["step"] / max(int(state.get("steps_per_epoch", 1)), 1), 3),
        "data": run.get("data"),
        "val": run.get("val"),
        "size": run.get("size"),
        "batch_size": run.get("batch_size"),
        "seed": run.get("seed"),
        "command": summary["command"],
        "init": summary["init"],
        "metrics": summary["metrics"] or None,
        "run_config": run,
    }


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
    from mattecli.models import LateFusionNet
    from mattecli.training.trainer import load_model_tensors

    output = _checked_output(output, overwrite)
    state, path = ckpt.load_checkpoint(checkpoint)
    config = ModelConfig.from_json(state["model_config"])
    model = LateFusionNet(config)
    load_model_tensors(model, state["model"], str(path))
    return save_exported(model, state, path, output, half=half)


def save_exported(
    model: torch.nn.Module, state: dict[str, Any], source: Path, output: Path, *, half: bool = False
) -> Path:
    """Write ``model`` (whose tensors are the checkpoint ``state``'s) with the checkpoint's provenance.

    Inference weights are float32 (float16 with ``half``) whatever precision the run trained in.
    """
    from mattecli.weights import save_weights

    provenance = provenance_from_checkpoint(state, source)
    return save_weights(model, output, provenance, dtype=torch.float16 if half else torch.float32)


def _checked_output(output: str | Path, overwrite: bool) -> Path:
    """The destination of a weights file, refused early (before any loading) if it is misnamed or taken."""
    output = Path(output).expanduser()
    if output.is_dir():
        raise MatteError("is a folder; -o takes the file to write (FILE.safetensors)", output)
    if output.suffix != ".safetensors":
        raise MatteError("the weights file name must end in .safetensors", output)
    if output.exists() and not overwrite:
        raise MatteError("file exists (pass --overwrite to replace it)", output)
    return output
