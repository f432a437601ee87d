"""The authors' triangular cyclic learning rate (Smith 2017, as in the Keras ``CyclicLR`` callback).

The rate climbs linearly from ``low`` to ``high`` over one half cycle, falls back over the next, and repeats;
the first step uses ``low``. The schedule is a pure function of the step, so resuming a run needs nothing
but the step counter; :meth:`state_dict` exists so checkpoints record the schedule's settings.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer


class TriangularCyclicLR:
    """lr(step) = low + (high - low) * max(0, 1 - |step / half - 2 * cycle + 1|), cycle = floor(1 + step / (2 half)).

    Args:
        optimizer: Its param groups get the rate at every :meth:`apply`.
        low, high: The rate at the bottom and at the top of a cycle.
        half_cycle_steps: Steps from bottom to top (the authors use two epochs).
    """

    def __init__(self, optimizer: Optimizer, low: float, high: float, half_cycle_steps: int) -> None:
        if half_cycle_steps < 1:
            raise ValueError("half_cycle_steps must be at least 1")
        self.optimizer = optimizer
        self.low = float(low)
        self.high = float(high)
        self.half_cycle_steps = int(half_cycle_steps)

    def lr_at(self, step: int) -> float:
        cycle = math.floor(1 + step / (2 * self.half_cycle_steps))
        x = abs(step / self.half_cycle_steps - 2 * cycle + 1)
        return self.low + (self.high - self.low) * max(0.0, 1.0 - x)

    def apply(self, step: int) -> float:
        """Set the rate for the optimiser step that follows ``step`` completed steps; return it."""
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "half_cycle_steps": self.half_cycle_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.low = float(state["low"])
        self.high = float(state["high"])
        self.half_cycle_steps = int(state["half_cycle_steps"])
