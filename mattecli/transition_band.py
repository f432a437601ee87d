"""The paper's transition band: where the training losses treat alpha as a transition pixel.

Alpha strictly between :data:`LOSS_TRANSITION_LOW` (0.05) and :data:`LOSS_TRANSITION_HIGH` (0.95) is a
*transition* pixel for the losses of Zhang et al. (the thresholds of the authors' code): the fusion loss
weights it fully, the branches' cross-entropy at half, and the data's transition-centred crops
(:mod:`mattecli.data.augment`) are centred on it. The rest is *hard*.

This is a training concept, not inference's certainty band: :mod:`mattecli.certainty` (0.02 / 0.98) says
where a predicted matte is uncertain, for refinement, metrics and video. The two bands differ on purpose
(``benchmarks/HAZE.md`` measures the pixels between them) and are never interchangeable.

Plain numbers and one comparison, no imports: the torch losses and the NumPy data pipeline share it, and
the data pipeline need not import torch's losses for two constants.
"""

from __future__ import annotations

from typing import TypeVar

LOSS_TRANSITION_LOW, LOSS_TRANSITION_HIGH = 0.05, 0.95
"""Alpha strictly between these is a transition pixel for the losses; outside, bounds included, hard."""

_Array = TypeVar("_Array")


def in_loss_transition(alpha: _Array) -> _Array:
    """Boolean map of the transition pixels of ``alpha`` (a NumPy array or a torch tensor, same type back)."""
    return (alpha > LOSS_TRANSITION_LOW) & (alpha < LOSS_TRANSITION_HIGH)  # type: ignore[operator]
