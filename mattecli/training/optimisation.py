"""The optimiser, its learning-rate schedule and the GradScaler of a training run.

The paper trains with SGD (momentum, L2 weight decay in the optimiser); AdamW is the default here. The rate
follows the authors' triangular cycles (:mod:`mattecli.training.schedule`) after an optional hold at
``lr_min``: the first ``lr_hold`` steps, during which a time-budgeted run measures its speed.
"""

from __future__ import annotations

import torch
from torch import nn

from mattecli.training.runconfig import RunConfig
from mattecli.training.schedule import TriangularCyclicLR


def build_optimisation(
    config: RunConfig,
    trainable: list[nn.Parameter],
    device: torch.device,
    precision: str,
    steps_per_epoch: int,
) -> tuple[torch.optim.Optimizer, TriangularCyclicLR, torch.amp.GradScaler]:
    """(optimiser, schedule, scaler) for the trainable parameters; the scaler is on for fp16 only."""
    low, high = config.lr_range()
    decay = config.optimizer_weight_decay if config.weight_decay == "paper" else 0.0
    if config.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            trainable, lr=low, momentum=config.momentum, weight_decay=decay
        )
    else:
        # The fused kernel updates every tensor in a few launches instead of several per tensor: on a
        # GPU, where this small network's step is a few thousand short kernels, that is a real share.
        fused = device.type == "cuda" or None
        optimizer = torch.optim.AdamW(trainable, lr=low, weight_decay=decay, fused=fused)
    half_cycle = config.half_cycle_steps or max(1, round(config.half_cycle_epochs * steps_per_epoch))
    schedule = TriangularCyclicLR(optimizer, low, high, half_cycle)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return optimizer, schedule, scaler


def apply_lr(optimizer: torch.optim.Optimizer, schedule: TriangularCyclicLR, step: int, hold: int) -> float:
    """Set the rate for the step after ``step`` completed ones: ``lr_min`` during the hold, then the
    cycles (counted from the hold's end). Returns the rate."""
    if step >= hold:
        return schedule.apply(step - hold)
    for group in optimizer.param_groups:
        group["lr"] = schedule.low
    return schedule.low
