"""The Late Fusion network and its parts: encoders, decoders, fusion network.

The names below resolve on first use (PEP 562), so that importing a torch-free submodule
(:mod:`mattecli.models.encoder_registry`, which :mod:`mattecli.models.config` needs) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mattecli.models.late_fusion import (
        STRIDE,
        LateFusionNet,
        LateFusionOutput,
        blend,
        check_input_size,
        count_parameters,
    )

__all__ = [
    "STRIDE",
    "LateFusionNet",
    "LateFusionOutput",
    "blend",
    "check_input_size",
    "count_parameters",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("mattecli.models.late_fusion"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
