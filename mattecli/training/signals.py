"""Stopping a training run cleanly: Ctrl-C or SIGTERM finish the current step, write a checkpoint, exit.

The handlers only set a flag that the loop reads after each step; a second Ctrl-C stops at once. They are
installed in a single-process run on the main thread only: the processes of a distributed run could see a
signal at different steps, and the checkpoint needs all of them at the same one. The run then ends with
:class:`StopRequested`, a KeyboardInterrupt that remembers the signal, so that the command line exits 130
for Ctrl-C and 143 for SIGTERM, as ``matte image`` and ``matte video`` do.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any


class StopRequested(KeyboardInterrupt):
    """The run stopped for a signal (after its checkpoint, or at once for a second one): ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """The run's "stop after this step" flag and the signal handlers that raise it."""

    def __init__(self) -> None:
        self.requested = False
        self.signum = int(signal.SIGINT)  # the signal that asked, once requested
        self._previous: dict[int, Any] = {}

    def install(self, distributed: bool) -> None:
        """Take over SIGINT and SIGTERM (not in a distributed run, on Windows or off the main thread)."""
        if distributed or sys.platform == "win32":
            return
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._request)

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _request(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise StopRequested(signum)
        self.requested = True
        self.signum = signum

    def stopped(self) -> StopRequested:
        """The exception that ends a run stopped at the request."""
        return StopRequested(self.signum)
