"""Training the Late Fusion CNN: the three stages of the paper, checkpoints, resuming, multi-process runs.

Entry points: :func:`train` (one stage, start to exported weights), :class:`RunConfig` (every setting),
:func:`prepare_config` (flags + TOML file, or a checkpoint when resuming) and :func:`export_checkpoint`.
The command line is ``matte train`` / ``matte export``.
"""

from mattecli.training.export import export_checkpoint
from mattecli.training.runconfig import STAGES, RunConfig
from mattecli.training.trainer import TrainResult, prepare_config, train

__all__ = ["STAGES", "RunConfig", "TrainResult", "export_checkpoint", "prepare_config", "train"]
