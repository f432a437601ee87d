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

#: ``--device`` as image, video and serve declare it (common.DeviceOption), None when not given.
TrainDeviceOption = Annotated[str | None, DeviceOption.__metadata__[0]]

#: ``matte export`` and ``matte average``: the file to write, and whether an existing one may go.
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")]


def output_option(help: str) -> Any:
    """The required ``-o/--output FILE`` of export and average (each says what it writes)."""
    return typer.Option(..., "-o", "--output", metavar="FILE", help=help)
