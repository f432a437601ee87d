"""mattecli: alpha mattes from single RGB frames with the Late Fusion CNN (Zhang et al., CVPR 2019).

The package is importable without loading torch; heavy modules are imported on first use so that
``matte --help`` stays fast. The public Python API lives in :mod:`mattecli.inference` (``Matter``),
:mod:`mattecli.image` (reading, writing and batch-matting still images), :mod:`mattecli.video`
(``matte_video``), :mod:`mattecli.models` (``LateFusionNet``), :mod:`mattecli.losses`, :mod:`mattecli.metrics`
and :mod:`mattecli.modelfiles.weights`.
"""

from __future__ import annotations

from mattecli.lazy_exports import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "Matter": "inference",
    "MatteResult": "inference",
    "LateFusionNet": "models",
    "ModelConfig": "models.config",
    "MatteError": "errors",
    "matte_video": "video",
}
# Imported on first use (PEP 562), so that importing mattecli does not import torch.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [*_LAZY, "__version__"]
