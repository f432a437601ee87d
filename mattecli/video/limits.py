"""The rule for ``--temporal``, free of numpy so that the command line's defaults and help can use it.

:mod:`mattecli.video.temporal` (which needs numpy) does the smoothing; the strength's default and bounds
live here, where ``matte video --help`` can read them without loading numpy.
"""

from __future__ import annotations

from mattecli.errors import UsageError

#: Smoothing strength used unless the caller says otherwise: halves the still-edge flicker.
DEFAULT_STRENGTH = 0.5
#: The strongest smoothing allowed (``--temporal``): at strength s the average spans about 1 / (1 - s)
#: frames, so above 0.9 a still edge that really changes (a slow fade, a late correction) lags visibly.
MAX_STRENGTH = 0.9


def check_strength(strength: float) -> float:
    """The one rule for ``--temporal`` (the command line checks it before loading the model, the
    pipeline and :class:`~mattecli.video.temporal.TemporalFilter` again): a number from 0 (off) to
    :data:`MAX_STRENGTH`."""
    if not 0.0 <= strength <= MAX_STRENGTH:
        raise UsageError(f"--temporal must be between 0 and {MAX_STRENGTH:g}, got {strength:g}")
    return strength
