"""Helpers shared by the subcommands: consoles, error reporting, option parsing.

Nothing here imports torch: ``matte --help`` must answer in well under a second.
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from typer.core import TyperCommand

from mattecli.console import MessageConsole

console = MessageConsole()  # lines wrap only on a terminal


class MatteCommand(TyperCommand):
    """A command whose help reads like a classic, well-kept CLI's, whatever the Typer version.

    Typer 0.29 writes type placeholders (``--alpha-only <bool>``, ``inputs... <list[str]>``) and braces
    around required arguments (``{inputs}...``); its boxed layout also cuts long option names at 80
    columns. With ``rich_markup_mode=None`` on the app, help is click's plain two-column layout (a name
    too long for the first column gets a line of its own); this class then names arguments by their
    metavar (``INPUT...``, ``[DATA]``), gives every value option a metavar and summarises a command by
    its whole first sentence in ``matte --help``. It only uses click's public Command API.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            takes_value = not getattr(param, "is_flag", False) and not getattr(param, "count", False)
            if param.param_type_name == "option" and takes_value and param.metavar is None:
                param.metavar = param.name.upper()  # a fallback: each option should name its own

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                label = _argument_label(param)
                pieces.append(label if param.required else f"[{label}]")
        return pieces

    def format_options(self, ctx, formatter) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            if param.param_type_name == "argument":
                if param.help:
                    arguments.append((_argument_label(param), param.help))
            elif (record := param.get_help_record(ctx)) is not None:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def get_short_help_str(self, limit: int = 45) -> str:
        """The help's first sentence, whole (``matte --help`` wraps it rather than cutting it)."""
        if self.short_help:
            return " ".join(self.short_help.split())
        paragraph = (self.help or "").strip().split("\n\n")[0]
        text = " ".join(paragraph.split())
        return _FIRST_SENTENCE.match(text).group(0) if text else ""


#: Up to the first full stop that ends a sentence (not the one in "e.g." or "i.e.").
_FIRST_SENTENCE = re.compile(r".*?(?<!e\.g)(?<!i\.e)\.(?=\s|$)|.*$")


def _argument_label(param) -> str:
    label = param.metavar or param.name.upper()
    many = param.nargs == -1 and not label.endswith("...")
    return label + ("..." if many else "")


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
    from rich.markup import escape

    # Escaped: brackets in a message (a file name, pip install 'mattecli[onnx]') are text, not markup.
    console.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn user-facing errors into one line on stderr and a non-zero exit.

    MatteError is the project's user-facing error (exit 1; its UsageError, a bad option value or two options
    that exclude each other, exits 2 like click's own usage errors); OSError covers disk-full and permission problems that
    surface outside our own checks. Ctrl-C exits 130 quietly, SIGTERM and SIGHUP (see
    :func:`handle_termination_signals`) 128 + the signal's number, as shells report them; the pipelines have
    removed their temporary files by then.
    """
    from mattecli.errors import MatteError, UsageError

    try:
        with _warnings_as_lines():
            yield
    except MatteError as exc:
        raise fail(str(exc), 2 if isinstance(exc, UsageError) else 1) from None
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        raise fail(f"{where}{exc.strerror or exc}") from None
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            console.print(f"stopped by {exc}")
            raise typer.Exit(128 + exc.signum) from None
        console.print("interrupted")
        raise typer.Exit(130) from None


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """A :class:`~mattecli.errors.MatteWarning` (an input used with a caveat) is printed as one
    ``warning: ...`` line on stderr, every time, rather than as Python's two-line warning."""
    import warnings

    from mattecli.errors import MatteWarning

    with warnings.catch_warnings():
        shown = warnings.showwarning
        warnings.simplefilter("always", MatteWarning)

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, MatteWarning):
                from rich.markup import escape

                console.print(f"[bold yellow]warning:[/] {escape(str(message))}", soft_wrap=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


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

# Options that several commands share, declared once (the default stays at each parameter: ``model: ModelOption =
# "default"``), so their flags, metavars and help read the same everywhere.
ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        metavar="NAME|FILE",
        help="Built-in model name, weights file, .onnx export, training checkpoint or run folder.",
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps.")
]
MaxSizeOption = Annotated[
    int | None,
    typer.Option(
        "--max-size", metavar="N", help="Long side the network sees (multiple of 32; default: the model's)."
    ),
]
RefineOption = Annotated[
    bool | None,
    typer.Option(
        "--refine/--no-refine",
        help="Refine soft edges at full resolution (default: when the image is over twice --max-size).",
        show_default=False,
    ),
]
TtaOption = Annotated[bool, typer.Option("--tta", help=TTA_HELP)]
DecontaminateOption = Annotated[
    bool,
    typer.Option("--decontaminate/--no-decontaminate", help="Remove background colour from soft edges."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")]


def check_max_size(max_size: int | None) -> None:
    """``--max-size`` by its name: Matter's own error names its parameter, ``max_size``."""
    from mattecli.errors import UsageError
    from mattecli.models import STRIDE

    if max_size is not None and (max_size < STRIDE or max_size % STRIDE):
        raise UsageError(f"--max-size must be a positive multiple of {STRIDE}, got {max_size}")


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

    check_max_size(max_size)
    matter = Matter(model=model, device=device, max_size=max_size, refine=refine, tta=tta)
    if not quiet:
        precision = "fp16" if matter.half else "fp32"
        console.print(
            f"model [bold]{matter.model_name}[/] ({matter.config.name}, {matter.max_size} px) "
            f"on {describe(matter.device)}, {precision}{', mirrored TTA' if matter.tta else ''}"
        )
    return matter
