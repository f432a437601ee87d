"""Writing a run's checkpoints while it trains: RNG states, atomic saves, the run folder, pruning.

What a checkpoint holds and how a run folder is laid out and read are
:mod:`mattecli.modelfiles.checkpoint`'s (the file format, which loading a model needs without training);
this module is the training side that writes them.

Files are written atomically (temporary file in the same folder, then ``os.replace``), so a run killed
while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mattecli.atomic import atomic_output, write_text
from mattecli.errors import MatteError
from mattecli.modelfiles.checkpoint import list_checkpoints
from mattecli.training.distributed import broadcast_object

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


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest step checkpoints (keep <= 0 keeps everything)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)
