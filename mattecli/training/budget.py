"""The time budget (``--time-budget``): a short probe measures the speed, then the run's length is fixed.

A budgeted run starts with an undecided length and holds the learning rate at ``lr_min`` while
:class:`Probe` times its first steps; once the probe is over the trainer plans whole learning-rate cycles
that fit the time left (:func:`plan_budget`) and :func:`decided_config` rewrites
the run's configuration as if that length had been configured from the start, so a resume of it behaves
like any fixed-length run.
"""

from __future__ import annotations

import time
from dataclasses import replace

from mattecli.training.runconfig import RunConfig

#: The length of a time-budgeted run without --steps until its probe has decided it.
UNDECIDED_STEPS = 10**9
#: Share of the time left after the probe that the planned cycles may fill: the speed can drift after the
#: probe (the data workers' queue, filled during the warm-up, drains; a shared machine gets busier), and a
#: run that overruns is stopped off its learning rate's low point.
BUDGET_MARGIN = 0.95


class Probe:
    """Times the first steps of a time-budgeted run: the first third is warm-up (compilation, cuDNN's
    algorithm search, the data workers' first batches), the rest measures steps/s."""

    def __init__(self, start_step: int, probe_steps: int) -> None:
        self.started = time.perf_counter()
        self.warm_step = start_step + max(1, probe_steps // 3)
        self.last_step = start_step + probe_steps
        self.warm_time: float | None = None

    def observe(self, step: int) -> float | None:
        """Call after each step; returns the measured steps/s once the probe is over, else None."""
        now = time.perf_counter()
        if step == self.warm_step:
            self.warm_time = now
        if step < self.last_step or self.warm_time is None:
            return None
        return (step - self.warm_step) / max(now - self.warm_time, 1e-9)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def seconds_left(config: RunConfig, elapsed: float) -> float:
    """The time the planned cycles may fill: what is left of the budget, less the safety margin."""
    assert config.time_budget is not None
    return (config.time_budget - elapsed) * BUDGET_MARGIN


def decided_config(config: RunConfig, step: int, half: int, total: int) -> RunConfig:
    """The budgeted run's configuration once the probe has decided its length: ``total`` steps, cycles of
    ``2 * half`` steps after a hold that ends at ``step``, a checkpoint at every low point."""
    return replace(
        config,
        steps=total,
        epochs=None,
        half_cycle_steps=half,
        lr_hold_steps=step,
        ckpt_every=2 * half,
        time_budget=None,
    )


def budget_event(config: RunConfig, step: int, rate: float, elapsed: float, half: int, total: int) -> dict:
    """The ``budget`` event of the metrics log: what the probe measured and what was decided."""
    return {
        "event": "budget",
        "step": step,
        "steps_per_s": round(rate, 4),
        "samples_per_s": round(rate * config.batch_size, 2),
        "elapsed_s": round(elapsed, 2),
        "budget_s": config.time_budget,
        "half_cycle_steps": half,
        "total_steps": total,
    }


def budget_message(config: RunConfig, rate: float, elapsed: float, half: int, total: int) -> str:
    """The one line the run prints when its length is decided."""
    assert config.time_budget is not None
    return (
        f"time budget: {rate * config.batch_size:.1f} samples/s after {elapsed:.0f} s of "
        f"{config.time_budget:.0f}; {config.budget_cycles} cycle(s) of {2 * half} steps, {total} steps in all"
    )


def plan_budget(
    rate: float, seconds_left: float, hold: int, cycles: int, max_steps: int | None = None
) -> tuple[int, int]:
    """(half-cycle steps, total steps) for ``cycles`` whole learning-rate cycles after ``hold`` steps.

    ``rate`` is the measured speed (steps/s) and ``seconds_left`` what remains of the time budget; the
    cycles share the steps that fit, ending at a low point. At least one step per half cycle is kept, so
    an exhausted budget still ends on a low point; ``max_steps`` caps the total.
    """
    half = int(max(rate, 0.0) * max(seconds_left, 0.0) // (2 * cycles))
    if max_steps is not None:
        half = min(half, (max_steps - hold) // (2 * cycles))
    half = max(1, half)
    return half, hold + 2 * cycles * half
