"""The one exception type users see.

Every problem caused by the user's input (a missing file, an image that cannot be decoded, a weights file
that does not match its config) is raised as :class:`MatteError` with a one-line message that names the
file and the problem. The CLI prints that line and exits non-zero, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MatteError(Exception):
    """A user-facing error whose message is a single line naming the file and the problem."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        text = f"{path}: {message}" if path is not None else message
        super().__init__(" ".join(text.split()))


class UsageError(MatteError):
    """A bad option value or a contradiction between options (``--max-size 100``, ``--depth 12``,
    ``--alpha-only`` with ``--bg``): the command line exits 2 for these, as click does for an option it
    cannot parse, and 1 for every other error. A MatteError, so Python callers catch both alike."""


class MatteWarning(UserWarning):
    """Something the user should know about an input that is still used (an animated WebP or a
    multi-page TIFF of which only the first frame is matted): a one-line message naming the file. The
    command line prints it as ``warning: ...``; Python callers get an ordinary warning."""
