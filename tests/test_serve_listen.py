"""``matte serve --host`` with an address that is not this machine's (issue 24): the error says so, instead
of advising another port."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")


@pytest.mark.parametrize("host", ["192.0.2.1", "8.8.8.8"])  # TEST-NET-1 (never assigned), a public one
def test_a_host_that_is_not_this_machine_is_named_as_such(host: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mattecli",
            "serve",
            "--host",
            host,
            "--port",
            "0",
            "--model",
            "no-such-model",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"error: cannot listen on {host}:0: {host} is not an address of this machine; give one of its own "
        "addresses with --host (127.0.0.1 for this machine only, 0.0.0.0 for every network)"
    )
