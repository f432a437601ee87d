"""The options of ``matte train``, ``matte export`` and ``matte average``, each declared once.

Every ``matte train`` setting defaults to None so that the trainer can tell "not given" from "given": a flag
overrides the ``--config`` file, and a resumed run refuses flags that would change what it computes.
:func:`setting` states that once; the Annotated types below are the options more than one command has.
Nothing here imports torch (``matte --help`` stays fast).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mattecli.cli.common import DeviceOption


def setting(*flags: str, metavar: str | None = "N", help: str, **extra: Any) -> Any:
    """A ``matte train`` option whose value is None when it is not given (``N``: a number)."""
    return typer.Option(None, *flags, metavar=metavar, help=help, **extra)


STAGE_HELP = (
    "seg: encoder + both decoders (BN statistics update); fusion: only the fusion network "
    "(the rest frozen, BN in eval); joint: everything, all BN statistics frozen."
)

#: The two loss weights of ``matte train`` (their values here are the paper's, losses.FUSION_WEIGHT_HARD and
#: losses.JOINT_BRANCH_WEIGHT: this module does not import torch, a test keeps the two in step).
FUSION_HARD_WEIGHT_HELP = (
    "Weight of hard pixels (alpha 0/1) in the fusion loss L_u of the fusion and joint stages; transition "
    "pixels weigh 1. The paper's value: 0.1 (default); higher pushes alpha towards 0/1. Must be > 0."
)
JOINT_BRANCH_WEIGHT_HELP = (
    "Weight of the branches' CE + L_d next to L_u in the joint stage. The paper's value: 0.5 (default); "
    "lower lets L_u make the matte crisper where the model is unsure; 0 drops the branch terms."
)

#: ``--device`` as image, video and serve declare it (common.DeviceOption), None when not given.
TrainDeviceOption = Annotated[str | None, DeviceOption.__metadata__[0]]

#: ``matte export`` and ``matte average``: the file to write, and whether an existing one may go.
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")]


def output_option(help: str) -> Any:
    """The required ``-o/--output FILE`` of export and average (each says what it writes)."""
    return typer.Option(..., "-o", "--output", metavar="FILE", help=help)
