"""Training the Late Fusion CNN: the three stages of the paper, checkpoints, resuming, multi-process runs.

Entry points: :func:`train` (one stage, start to exported weights), :class:`RunConfig` (every setting),
:func:`prepare_config` (flags + TOML file, or a checkpoint when resuming), :func:`export_checkpoint` and
:func:`average_weights`.
The command line is ``matte train`` / ``matte export`` / ``matte average``.
"""

from mattecli.training.averaging import average_weights
from mattecli.training.export import export_checkpoint
from mattecli.training.runconfig import STAGES, RunConfig, prepare_config
from mattecli.training.trainer import TrainResult, train

__all__ = [
    "STAGES",
    "RunConfig",
    "TrainResult",
    "average_weights",
    "export_checkpoint",
    "prepare_config",
    "train",
]
