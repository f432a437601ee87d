"""Messages piped to a file or a log collector are not hard-wrapped (issue 24): rich assumes 80 columns
when stderr is not a terminal and used to cut longer lines in two."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import TINY, make_tiny_net

from mattecli.console import MessageConsole
from mattecli.modelfiles.checkpoint import FORMAT


def test_a_long_message_stays_one_line_when_stderr_is_a_file(tmp_path: Path) -> None:
    source = tmp_path / "step.pt"
    torch.save(
        {"format": FORMAT, "model": make_tiny_net().state_dict(), "model_config": TINY.to_json()}, source
    )
    folder = tmp_path / ("a_long_folder_name_" * 6)
    folder.mkdir()
    out = folder / "exported_weights_with_a_long_name.safetensors"
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    with open(tmp_path / "messages.txt", "w") as log:
        subprocess.run(
            [sys.executable, "-m", "mattecli", "export", str(source), "-o", str(out)],
            stderr=log,
            stdout=subprocess.DEVNULL,
            env=env,
            check=True,
            timeout=300,
        )
    assert len(str(out)) > 150
    assert (tmp_path / "messages.txt").read_text().splitlines() == [f"wrote {out}"]


def test_the_console_wraps_nothing_off_a_terminal() -> None:
    sink = io.StringIO()
    console = MessageConsole(file=sink)
    console.print("word " * 60 + "end")
    console.print("[bold]marked[/] " * 30 + "end")
    assert sink.getvalue().splitlines() == ["word " * 60 + "end", "marked " * 30 + "end"]
