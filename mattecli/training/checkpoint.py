"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the model, optimiser, schedule and GradScaler states, the step counter (from which the
epoch and the position inside it follow, since every step consumes one global batch), every process's RNG
states and the run configuration. It is stored with ``torch.save`` but only ever read with
``torch.load(weights_only=True)``, which cannot execute code: so everything in it is a tensor or a plain
container of numbers and strings (RNG states as tensors, configs as JSON strings).

Files are written atomically (temporary file in the same folder, then ``os.replace``), so a run killed
while saving leaves the previous checkpoint intact. :func:`training_state` is the one place that says
which keys a checkpoint holds; the run folder's layout (``checkpoints/step-NNNNNNN.pt``) is here too.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mattecli import __version__
from mattecli.atomic import atomic_output, write_text
from mattecli.errors import MatteError
from mattecli.training.distributed import broadcast_object

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


# ----------------------------------------------------------------------------------------- RNG states


def capture_rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) RNG states as tensors and numbers."""
    version, keys, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python_version": int(version),
        "python": torch.tensor(keys, dtype=torch.int64),
        "python_gauss": gauss,
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_gauss": float(np_state[4]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(
        (int(state["python_version"]), tuple(int(k) for k in state["python"].tolist()), state["python_gauss"])
    )
    np.random.set_state(
        (
            "MT19937",
            state["numpy"].numpy().astype(np.uint32),
            int(state["numpy_pos"]),
            int(state["numpy_has_gauss"]),
            float(state["numpy_gauss"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in states])


# ----------------------------------------------------------------------------------------- files


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """torch.save to a temporary file beside ``path``, then rename it into place."""
    with atomic_output(path, overwrite=True) as temporary:
        torch.save(obj, temporary)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Replace a text file atomically (run.toml beside the checkpoints)."""
    return write_text(path, text, overwrite=True)


def new_run_dir(out: str | None, stage: str) -> Path:
    """The folder of a new run: ``--out``, else ``runs/STAGE-YYYYmmdd-HHMMSS`` (rank 0's choice on every
    process). A folder that already has checkpoints is refused: it belongs to a run to resume."""
    if out:
        run_dir = Path(out).expanduser()
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path("runs") / f"{stage}-{stamp}"
    run_dir = Path(broadcast_object(str(run_dir)))
    for folder in (run_dir, *run_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise MatteError("is a file, not a folder; --out names the run folder to create", folder)
            break
    if list_checkpoints(run_dir):
        raise MatteError(
            "run folder already has checkpoints; continue it with --resume, or pick another --out",
            run_dir,
        )
    return run_dir


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


def resolve_checkpoint(path_or_run: str | Path) -> Path:
    """A checkpoint file itself, or the newest checkpoint of a run folder."""
    path = Path(path_or_run).expanduser()
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise MatteError(f"run folder has no checkpoints (expected {CHECKPOINT_DIR}/step-*.pt)", path)
        return found[-1][1]
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

    from mattecli.weights import EMPTY, PICKLE, PYTORCH, SAFETENSORS, file_kind

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


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest step checkpoints (keep <= 0 keeps everything)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)


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
