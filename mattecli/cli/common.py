"""Helpers shared by the subcommands: consoles, error reporting, option parsing.

Nothing here imports torch: ``matte --help`` must answer in well under a second.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

console = Console(stderr=True, highlight=False)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C so that every cleanup path that removes
    temporary files on Ctrl-C (``except BaseException`` around atomic writes, the video pipeline's
    shutdown) runs for a ``kill`` or a closed SSH session too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def handle_termination_signals() -> None:
    """Treat SIGTERM and SIGHUP like Ctrl-C (where the platform has them); main thread only."""
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, _raise_terminated)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error (no traceback) and return the Exit to raise."""
    console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn user-facing errors into one line on stderr and a non-zero exit.

    MatteError is the project's user-facing error; OSError covers disk-full and permission problems that
    surface outside our own checks. Ctrl-C exits 130 quietly, SIGTERM and SIGHUP (see
    :func:`handle_termination_signals`) 128 + the signal's number, as shells report them; the pipelines have
    removed their temporary files by then.
    """
    from mattecli.errors import MatteError

    try:
        yield
    except MatteError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        raise fail(f"{where}{exc.strerror or exc}") from None
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            console.print(f"stopped by {exc}")
            raise typer.Exit(128 + exc.signum) from None
        console.print("interrupted")
        raise typer.Exit(130) from None


def is_interactive() -> bool:
    """Whether progress bars should be drawn (stderr is a terminal)."""
    return sys.stderr.isatty()


def prefer_sleeping_threads() -> None:
    """Let idle OpenMP threads sleep rather than spin while they wait for work.

    The model's threads share the cores with image decoding, ffmpeg and the pipelines' own threads.
    Spinning, the default, made the model use twice the CPU time per frame on a busy 2-core machine (0.75-1.0 s
    instead of 0.36 s at 720p). Only possible before torch is loaded; an explicit OMP_WAIT_POLICY wins.
    """
    import os

    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


TTA_HELP = "Also matte the mirrored image and average: slightly cleaner mattes, up to twice the time."


def load_matter(
    model: str,
    device: str,
    max_size: int | None,
    quiet: bool,
    refine: bool | None = None,
    tta: bool = False,
):
    """Load the model and say once, at the start, which model runs where and how."""
    from mattecli.device import describe
    from mattecli.inference import Matter

    matter = Matter(model=model, device=device, max_size=max_size, refine=refine, tta=tta)
    if not quiet:
        precision = "fp16" if matter.half else "fp32"
        console.print(
            f"model [bold]{matter.model_name}[/] ({matter.config.name}, {matter.max_size} px) "
            f"on {describe(matter.device)}, {precision}{', mirrored TTA' if matter.tta else ''}"
        )
    return matter
