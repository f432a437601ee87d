"""What a training run measures and reports between steps: the log window, skipped files, validation.

:class:`StepWindow` sums the loss parts and timings of the steps between two log lines; :func:`log_window`
averages them over every process and writes one ``train`` record and the live line. :func:`validate`
runs the validation set on the main process (the others wait) and logs one ``val`` record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mattecli.training.distributed import all_reduce_mean, barrier, broadcast_object, gather_objects
from mattecli.training.run_log import RunLogger
from mattecli.training.runconfig import RunConfig
from mattecli.training.stages import set_stage_mode


class StepWindow:
    """Sums over the steps between two log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.samples = 0
        self.seconds = 0.0
        self.data_seconds = 0.0
        self.skipped = 0

    def add(
        self, parts: dict[str, Tensor], data_s: float, step_s: float, samples: int, stepped: bool
    ) -> None:
        for key, value in parts.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.count += 1
        self.samples += samples
        self.seconds += step_s
        self.data_seconds += data_s
        self.skipped += 0 if stepped else 1

    def means(self) -> dict[str, float]:
        return {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}


def log_window(
    logger: RunLogger,
    window: StepWindow,
    *,
    step: int,
    lr: float,
    steps_per_epoch: int,
    world_size: int,
    device: torch.device,
) -> None:
    """One ``train`` record and the live line for the window's steps (means over every process)."""
    values = all_reduce_mean(window.means(), device)
    samples_per_s = window.samples * world_size / max(window.seconds, 1e-9)
    record = {
        "step": step,
        "epoch": round(step / steps_per_epoch, 4),
        "lr": lr,
        **{k: round(v, 6) for k, v in values.items()},
        "samples_per_s": round(samples_per_s, 3),
        "data_wait": round(window.data_seconds / max(window.seconds, 1e-9), 4),
        "skipped_steps": window.skipped,
    }
    logger.record("train", record)
    shown = {k: v for k, v in values.items() if k != "grad_norm"}
    logger.progress(step, {"lr": lr, **shown}, samples_per_s)
    if window.skipped:
        logger.warn(f"{window.skipped} step(s) skipped for non-finite gradients", step=step)


def report_skipped(logger: RunLogger, messages: list[str], step: int, distributed: bool) -> None:
    """Warn about the unreadable files every process met since the last log line (each file once:
    the data package skips a bad file for the rest of the run after reporting it)."""
    everywhere = gather_objects(messages) if distributed else [messages]
    for text in dict.fromkeys(m for ms in everywhere for m in ms):
        logger.warn(f"skipped bad sample {text}", step=step)


def validate(
    model: nn.Module,
    dataset: Any,
    config: RunConfig,
    *,
    device: torch.device,
    run_dir: Path,
    step: int,
    logger: RunLogger,
    is_main: bool,
    previous: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Metrics on the validation set (main process; the others wait), then back to training mode.
    Returns the last validation (``previous`` when there is no validation set), the same on every
    process."""
    result = previous
    if is_main and dataset is not None:
        from mattecli.evaluation import validate_model

        preview = run_dir / "previews" / f"step-{step:07d}.png"
        summary = validate_model(
            model,
            dataset,
            device,
            limit=config.val_limit,
            preview_path=preview if config.previews > 0 else None,
            preview_count=config.previews,
        )
        result = {"step": step, **summary}
        logger.record("val", result)
        shown = " ".join(f"{k}={v:.4g}" for k, v in summary.items() if isinstance(v, float))
        logger.info(f"validation at step {step} ({summary['region']} image): {shown}")
    result = broadcast_object(result)
    set_stage_mode(model, config.stage)
    barrier()
    return result
