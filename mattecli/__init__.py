"""mattecli: alpha mattes from single RGB frames with the Late Fusion CNN (Zhang et al., CVPR 2019).

The package is importable without loading torch; heavy modules are imported on first use so that
``matte --help`` stays fast. The public Python API lives in :mod:`mattecli.inference` (``Matter``),
:mod:`mattecli.image` (reading, writing and batch-matting still images), :mod:`mattecli.video`
(``matte_video``), :mod:`mattecli.models` (``LateFusionNet``), :mod:`mattecli.losses`, :mod:`mattecli.metrics`
and :mod:`mattecli.weights`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Matter": "mattecli.inference",
    "MatteResult": "mattecli.inference",
    "LateFusionNet": "mattecli.models",
    "ModelConfig": "mattecli.config",
    "MatteError": "mattecli.errors",
    "matte_video": "mattecli.video",
}


def __getattr__(name: str) -> Any:
    """Import public names lazily (PEP 562) so that importing mattecli does not import torch."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mattecli' has no attribute {name!r}")


__all__ = [*_LAZY, "__version__"]
