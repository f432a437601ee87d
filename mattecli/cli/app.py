"""The ``matte`` Typer application: registers one command per module in :mod:`mattecli.cli`."""

from __future__ import annotations

import importlib

import typer

from mattecli import __version__
from mattecli.cli.common import MatteCommand

app = typer.Typer(
    name="matte",
    help="Pull people and objects out of photos and videos (Late Fusion CNN matting).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion
    rich_markup_mode=None,  # plain help (see MatteCommand); errors as one "Error: ..." line, no box
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# (command name, module under mattecli.cli, function). Modules keep heavy imports inside functions.
COMMANDS = (
    ("image", "image", "image_command"),
    ("video", "video", "video_command"),
    ("models", "models", "models_command"),
    ("train", "train", "train_command"),
    ("eval", "evaluate", "eval_command"),
    ("export", "train", "export_command"),
    ("average", "train", "average_command"),
    ("serve", "serve", "serve_command"),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"matte {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    """Pull people and objects out of photos and videos."""


def _register() -> None:
    """Add every command. An import error propagates: a command that is missing from a broken install
    must fail loudly (in CI first), not vanish from ``matte --help``."""
    for name, module, function in COMMANDS:
        mod = importlib.import_module(f"mattecli.cli.{module}")
        app.command(name, cls=MatteCommand)(getattr(mod, function))


_register()


def main() -> None:
    """Console-script entry point (also ``python -m mattecli``)."""
    from mattecli.cli.common import handle_termination_signals

    handle_termination_signals()
    try:
        app()
    except SystemExit as done:
        _exit(done.code)
    _exit(0)


def _exit(code: object) -> None:
    """Leave as ``SystemExit(code)`` does, skipping the interpreter's teardown once torch is loaded.

    Tearing down an interpreter that has imported torch took 0.2-0.5 s on a 2-core CPU (a sixth of a
    12 MP ``matte image``) and does nothing a finished command needs: the exit handlers (``atexit``, which
    also run ``weakref.finalize`` and logging's flush) still run and the standard streams are flushed;
    outputs are closed and renamed before a command returns. A failed flush (a closed pipe), a thread that
    Python would wait for, or a command that never loaded torch exits the ordinary way.
    """
    import sys
    import threading

    waiting = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if "torch" not in sys.modules or waiting:
        raise SystemExit(code)
    import atexit
    import os

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(status) from None
    os._exit(status)
