"""The Late Fusion network and its parts: encoders, decoders, fusion network."""

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
