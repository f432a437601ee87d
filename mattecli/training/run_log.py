"""What a run reports: JSON lines on disk, TensorBoard when available, a live line on the terminal.

``metrics.jsonl`` in the run folder gets one JSON object per line: ``{"type": "train", "step": ...}`` for
training intervals, ``{"type": "val", ...}`` for validations, ``{"type": "event", ...}`` for things such as a
skipped sample or a skipped step. It is appended to (a resumed run continues the same file), easy to load
with pandas or jq, and needs no extra package. A run resumed from the checkpoint of step S first cuts the
file back to that checkpoint (:func:`drop_records_after`): the records of later steps describe training
that the killed run did and that the resumed one repeats, so each step appears once. Only the main process creates a logger with outputs; the
others get a silent one, so the trainer never has to ask which rank it is before logging.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from mattecli.console import MessageConsole

_console = MessageConsole()


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RunLogger:
    """Writes metrics.jsonl (+ TensorBoard) and shows progress.

    Args:
        run_dir: Where metrics.jsonl and tensorboard/ go; None for a silent logger (non-main ranks).
        total_steps: For the progress bar and the ETA.
        quiet: No progress output at all (warnings still print).
        tensorboard: Also write TensorBoard events when ``torch.utils.tensorboard`` imports.
    """

    def __init__(
        self,
        run_dir: Path | None,
        total_steps: int,
        start_step: int = 0,
        *,
        quiet: bool = False,
        tensorboard: bool = True,
    ) -> None:
        self.enabled = run_dir is not None
        self.total_steps = total_steps
        self.quiet = quiet or not self.enabled
        self.path = Path(run_dir) / "metrics.jsonl" if run_dir is not None else None
        self._file = self.path.open("a", encoding="utf-8") if self.path else None
        self._tb = _open_tensorboard(Path(run_dir) / "tensorboard") if run_dir and tensorboard else None
        self._interactive = sys.stderr.isatty() and not self.quiet
        self._progress = None
        self._task = None
        self._start_time = time.perf_counter()
        self._start_step = start_step
        if self._interactive:
            self._open_progress(start_step)

    # ------------------------------------------------------------------------------------ records

    def record(self, kind: str, values: dict[str, Any]) -> None:
        """Append one JSON line (and TensorBoard scalars for numeric values)."""
        if not self.enabled:
            return
        entry = {"type": kind, "time": round(time.time(), 3), **values}
        assert self._file is not None
        self._file.write(json.dumps(entry, sort_keys=False, default=_jsonable) + "\n")
        self._file.flush()
        if self._tb is not None and "step" in values:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    self._tb.add_scalar(f"{kind}/{key}", value, int(values["step"]))

    def warn(self, message: str, **values: Any) -> None:
        """A warning on stderr (even when quiet) and an event line in metrics.jsonl."""
        if not self.enabled:
            return
        self._print(f"[yellow]warning:[/] {message}")
        self.record("event", {"event": "warning", "message": message, **values})

    def info(self, message: str) -> None:
        if self.enabled and not self.quiet:
            self._print(message)

    # ------------------------------------------------------------------------------------ progress

    def progress(self, step: int, values: dict[str, float], samples_per_s: float) -> None:
        """Update the live line (TTY) or print a plain line (logs, pipes) with loss parts and ETA."""
        if self.quiet:
            return
        done = step - self._start_step
        elapsed = time.perf_counter() - self._start_time
        eta = elapsed / done * (self.total_steps - step) if done > 0 else float("nan")
        parts = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        text = f"{samples_per_s:.2f} samples/s ETA {format_duration(eta)} {parts}"
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=text)
        else:
            width = len(str(self.total_steps))
            _console.print(f"step {step:>{width}}/{self.total_steps} {text}", markup=False, soft_wrap=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _open_progress(self, start_step: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("train"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            console=_console,
            transient=False,
        )
        self._task = self._progress.add_task("train", total=self.total_steps, completed=start_step, info="")
        self._progress.start()

    def _print(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message, soft_wrap=True)
        else:
            _console.print(message, soft_wrap=True)


def _open_tensorboard(folder: Path) -> Any:
    """A SummaryWriter, or None when TensorBoard is not installed (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:
        return None
    return SummaryWriter(str(folder))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file (for tests and notebooks)."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def drop_records_after(path: str | Path, step: int) -> int:
    """Cut a metrics.jsonl back to ``step`` (the checkpoint a run resumes from): the first record of a
    later step and every record after it go, and so does a line torn by a kill; returns how many lines
    went. The file is rewritten atomically, and only when something goes."""
    from mattecli.atomic import write_text

    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return 0
    kept = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # torn by the kill that stopped the run
        later = record.get("step") if isinstance(record, dict) else None
        if isinstance(later, (int, float)) and not isinstance(later, bool) and later > step:
            break
        kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped:
        write_text(path, "".join(line + "\n" for line in kept))
    return dropped
