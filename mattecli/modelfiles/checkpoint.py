"""Training checkpoints and run folders: the file format, and which file a run folder stands for.

A checkpoint holds the model, optimiser, schedule and GradScaler states, the step counter (from which the
epoch and the position inside it follow, since every step consumes one global batch), every process's RNG
states and the run configuration. It is stored with ``torch.save`` but only ever read with
``torch.load(weights_only=True)``, which cannot execute code: so everything in it is a tensor or a plain
container of numbers and strings (RNG states as tensors, configs as JSON strings). :func:`training_state`
is the one place that says which keys a checkpoint holds.

A run folder (what ``matte train`` writes) holds ``checkpoints/step-NNNNNNN.pt`` while it trains and
``model.safetensors`` at the end. **A run folder stands for its newest checkpoint, or for its
``model.safetensors`` when it has no checkpoints** (:func:`run_model_file`), whoever reads it: ``--model``,
``matte export``, ``--init``, ``--resume``, ``matte average``. The newest checkpoint is never older than the
export (the export is written from the final checkpoint's network, at the same step), loads the same
network, and holds more: the encoder's classifier head, the optimiser state and the run's provenance.
So one rule serves every reader, inference included; the export stands in when the checkpoints were
deleted or a run folder was copied without them.

Writing checkpoints during a run (RNG capture, atomic saves, pruning) is
:mod:`mattecli.training.checkpointing`'s; this module needs no training code, so loading a model from a run
folder does not import the trainer.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from mattecli import __version__
from mattecli.errors import MatteError

FORMAT = 1
#: A run folder's layout: ``checkpoints/step-NNNNNNN.pt`` while it trains, ``model.safetensors`` at the end.
CHECKPOINT_DIR = "checkpoints"
WEIGHTS_NAME = "model.safetensors"
_NAME = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}.pt"


#: The keys of a checkpoint that hold tensors or per-process states, not facts about the run.
_BULKY_KEYS = ("model", "optimizer", "rng")


def training_state(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    step: int,
    steps_per_epoch: int,
    rng_states: list[dict[str, Any]],
    world_size: int,
    stage: str,
    config_json: str,
    model_config_json: str,
    command: str | None,
    init_provenance: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
) -> dict[str, Any]:
    """Everything a checkpoint holds (format :data:`FORMAT`): the states to continue the run exactly, and
    the facts about it (stage, configs, command, --init provenance, last validation) for its export."""
    return {
        "format": FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "step": step,
        "epoch": step // steps_per_epoch,
        "position": step % steps_per_epoch,
        "steps_per_epoch": steps_per_epoch,
        "rng": [_cpu_rng(s) for s in rng_states],
        "world_size": world_size,
        "stage": stage,
        "config": config_json,
        "model_config": model_config_json,
        "command": command or "",
        "init": json.dumps(init_provenance or {}, default=str),
        "metrics": json.dumps(metrics or {}),
        "saved_at": datetime.now().isoformat(timespec="seconds"),
    }


def run_facts(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's metadata without its tensors (kept for the provenance of the final export)."""
    return {k: v for k, v in state.items() if k not in _BULKY_KEYS}


def _cpu_rng(state: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}


# ----------------------------------------------------------------------------------------- run folders


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint file belongs to (the folder above ``checkpoints/``, or its own)."""
    folder = checkpoint.parent
    return folder.parent if folder.name == CHECKPOINT_DIR else folder


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoints, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def run_model_file(folder: Path) -> Path:
    """The file a run folder stands for: its newest checkpoint, else its ``model.safetensors`` (see the
    module docstring for why)."""
    checkpoints = list_checkpoints(folder)
    if checkpoints:
        return checkpoints[-1][1]
    weights = Path(folder) / WEIGHTS_NAME
    if weights.is_file():
        return weights
    raise MatteError(
        f"folder holds no model (a run folder has {WEIGHTS_NAME} or {CHECKPOINT_DIR}/step-*.pt)", folder
    )


def resolve_checkpoint(path_or_run: str | Path) -> Path:
    """A checkpoint file itself, or the newest checkpoint of a run folder (:func:`run_model_file`, for a
    reader that needs a checkpoint: ``--resume``, ``matte export``)."""
    path = Path(path_or_run).expanduser()
    if path.is_dir():
        if not list_checkpoints(path):
            raise MatteError(f"run folder has no checkpoints (expected {CHECKPOINT_DIR}/step-*.pt)", path)
        return run_model_file(path)
    if not path.is_file():
        raise MatteError("checkpoint or run folder not found", path)
    return path


def load_checkpoint(path_or_run: str | Path) -> tuple[dict[str, Any], Path]:
    """Read a checkpoint safely (weights_only) and check that it is one of ours.

    Whatever else the file is (a photo, a weights file, a pickle of Python objects, a truncated
    download), the error is one line that says so, not torch's paragraph about ``weights_only``.
    """
    import pickle
    import warnings

    from mattecli.modelfiles.weights import EMPTY, PICKLE, PYTORCH, SAFETENSORS, file_kind

    path = resolve_checkpoint(path_or_run)
    kind = file_kind(path)
    if kind == SAFETENSORS:
        raise MatteError("is a weights file, not a training checkpoint (it needs no export)", path)
    if kind == EMPTY:
        raise MatteError("is empty, not a training checkpoint", path)
    if kind is None and path.suffix.lower() == ".onnx":
        raise MatteError(
            "is an ONNX export: its weights are folded into the graph and cannot be turned back into a "
            ".safetensors file; export the training checkpoint or run folder it was made from",
            path,
        )
    if kind not in (PYTORCH, PICKLE):
        raise MatteError(f"not a training checkpoint (it is {kind or 'no format mattecli reads'})", path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise before the real error
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise MatteError(
            "not a mattecli checkpoint: it holds pickled Python objects, which mattecli never loads "
            "(they could run code)",
            path,
        ) from None
    except Exception:
        raise MatteError("damaged or truncated checkpoint (torch cannot read it)", path) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise MatteError("not a mattecli training checkpoint (a PyTorch file without its fields)", path)
    return state, path


def checkpoint_summary(state: dict[str, Any]) -> dict[str, Any]:
    """The facts about a checkpoint that provenance and ``matte export`` report."""
    return {
        "stage": state.get("stage"),
        "step": int(state.get("step", 0)),
        "epoch": int(state.get("epoch", 0)),
        "run_config": json.loads(state.get("config", "{}")),
        "command": state.get("command"),
        "metrics": json.loads(state.get("metrics", "{}")),
        "init": json.loads(state.get("init") or "{}") or None,
    }


def provenance_from_checkpoint(state: dict[str, Any], source: Path) -> dict[str, Any]:
    """The facts about how a checkpoint's weights were made, as JSON-ready values (what ``matte export``
    writes into a weights file, and what loading a checkpoint reports)."""
    summary = checkpoint_summary(state)
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
