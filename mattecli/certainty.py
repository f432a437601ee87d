"""Where a matte is certain: the one definition of "soft" alpha, shared by refinement, metrics and video.

Alpha at or below :data:`SOFT_LOW` counts as certainly background and at or above :data:`SOFT_HIGH` as
certainly foreground; strictly between the two it is soft (an edge, hair, haze). Full-resolution
refinement re-predicts the soft band (:func:`mattecli.tiling.uncertain_band`),
:func:`mattecli.metrics.soft_share` measures how much of a region is soft, and the video flicker measure
looks only at soft pixels (:mod:`mattecli.video.temporal`). Plain numbers, no imports: any module may use
them.
"""

from __future__ import annotations

SOFT_LOW, SOFT_HIGH = 0.02, 0.98
"""Alpha strictly between these is soft (uncertain); outside, including the bounds, it is certain."""
