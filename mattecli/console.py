"""The stderr console that every message goes through (the command line's and training's)."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class MessageConsole(Console):
    """A rich Console on stderr that wraps lines only on a terminal.

    Rich assumes 80 columns when its output is not a terminal and hard-wraps longer lines there, so a
    message piped to a file or a log collector arrived cut in two. Here a message stays one line unless a
    terminal, whose width is known, shows it; an explicit ``soft_wrap`` argument still wins.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(stderr=True, highlight=False, **kwargs)

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:
        if soft_wrap is None:
            soft_wrap = not self.is_terminal
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)
