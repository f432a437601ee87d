"""``matte models``: data on stdout (a table on a terminal, tab-separated rows for scripts), messages on
stderr, and a ``-v`` that fits on a screen (issue 14 item 14)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

from conftest import make_tiny_net
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.modelfiles.weights import save_weights

HEADER = ["name", "aliases", "source", "size", "config", "provenance", "path"]
BOX = set("┏┃━│└┘┡╇")


def run_models(*args: str):
    return CliRunner().invoke(app, ["models", *args], env={"COLUMNS": "100"})


def rows_by_name(stdout: str) -> dict[str, dict[str, str]]:
    lines = stdout.splitlines()
    assert lines[0].split("\t") == HEADER
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == len(HEADER) for row in rows), rows
    return {row[0]: dict(zip(HEADER, row, strict=True)) for row in rows}


def test_piped_output_is_tab_separated_rows_on_stdout(cache: Path, tiny_weights: Path) -> None:
    shutil.copy(tiny_weights, cache / "mine.safetensors")
    result = run_models()
    assert result.exit_code == 0, result.output
    assert not BOX & set(result.stdout)
    rows = rows_by_name(result.stdout)
    assert list(rows) == ["lite", "mine"]
    lite, mine = rows["lite"], rows["mine"]
    assert (lite["aliases"], lite["source"]) == ("default", "bundled")
    assert lite["provenance"].startswith("average of ")
    assert (mine["aliases"], mine["source"], mine["path"]) == ("-", "cache", str(cache / "mine.safetensors"))
    assert mine["size"] == f"{(cache / 'mine.safetensors').stat().st_size / 1e6:.1f} MB"
    assert mine["config"].startswith("tiny: efficientnet_lite0") and mine["provenance"] == "purpose: tests"
    # Messages are not data: they go to stderr, so `matte models | cut -f1` gives only names.
    assert "cache:" in result.stderr and "cache:" not in result.stdout
    assert "--model" in result.stderr and "lite" in result.stderr


def test_a_terminal_gets_a_table(cache: Path, tiny_weights: Path) -> None:
    shutil.copy(tiny_weights, cache / "mine.safetensors")
    leader, follower = pty.openpty()
    # An 80-column terminal (a new pseudo-terminal has no size, and rich would then guess).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    code = "from mattecli.cli.app import app; app(prog_name='matte')"
    env = {**os.environ, "COLUMNS": "80"}
    with subprocess.Popen(
        # cwd: not the repository, whose source tree `python -c` would import instead of the installed package
        [sys.executable, "-c", code, "models"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cache.parent,
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        stderr = proc.stderr.read().decode()
    os.close(leader)
    screen = b"".join(chunks).decode()
    assert proc.returncode == 0, stderr
    assert BOX & set(screen) and "mine" in screen and "lite (default)" in screen
    assert "\t" not in screen and "cache:" in stderr
    assert "…" not in screen  # long names wrap in their cell rather than being cut


def _training_provenance(stage: str, steps: int, depth: int) -> dict:
    """Provenance shaped like a real export's: run settings, metrics and an init chain ``depth`` deep."""
    run_config = {f"setting_{i}": i for i in range(40)} | {"init": f"/runs/{stage}-{depth - 1}"}
    provenance = {
        "stage": stage,
        "steps": steps,
        "epochs": 2.0,
        "size": 448,
        "batch_size": 4,
        "seed": 0,
        "data": "recipe/train_groups.toml",
        "val": "recipe/val_people.toml",
        "checkpoint": f"/runs/{stage}-{depth}/checkpoints/step-{steps:07d}.pt",
        "command": "matte train recipe/train_groups.toml " + " ".join(f"--flag-{i} {i}" for i in range(40)),
        "metrics": {"iou": 0.90062, "mse": 0.021811, "sad": 7.064, "count": 30, "region": "whole"},
        "run_config": run_config,
        "exported_at": "2026-11-26T02:17:27",
        "mattecli_version": "0.1.0",
        "init": None,
    }
    if depth > 0:
        provenance["init"] = _training_provenance("seg", 100, depth - 1)
    return provenance


def _block(stdout: str, name: str) -> list[str]:
    """The lines of one model's -v block (blocks are separated by blank lines)."""
    blocks = [block.splitlines() for block in stdout.strip().split("\n\n")]
    found = [block for block in blocks if block[0].split()[0] == name]
    assert len(found) == 1, stdout
    return found[0]


def test_verbose_is_a_short_readable_block_per_model(cache: Path) -> None:
    sources = [
        {"file": "a.safetensors", "weight": 0.5, "provenance": _training_provenance("joint", 294, 6)},
        {"file": "b.safetensors", "weight": 0.5, "provenance": _training_provenance("joint", 588, 6)},
    ]
    soup = save_weights(
        make_tiny_net(),
        cache / "soup.safetensors",
        {"average_of": sources, "exported_at": "2026-11-26T03:59:02", "mattecli_version": "0.1.0"},
    )
    result = run_models("-v")
    assert result.exit_code == 0, result.output
    block = _block(result.stdout, "soup")
    text = "\n".join(block)
    assert len(block) <= 30, text
    assert max(len(line) for line in block) <= 120, text
    assert "{" not in text and '"' not in text  # no JSON
    assert str(soup) in text
    assert hashlib.sha256(soup.read_bytes()).hexdigest()[:16] in text
    assert f"{soup.stat().st_size:,} bytes" in text
    assert "tiny: efficientnet_lite0" in text and "average of 2 files" in text
    for name, steps in (("a.safetensors", 294), ("b.safetensors", 588)):
        assert f"{name}, weight 0.5" in text
        assert f"joint stage, {steps} steps" in text
    assert "IoU 0.901" in text and "MSE 0.0218" in text and "recipe/train_groups.toml" in text
    assert "/runs/joint-5" in text  # where each source started from, not the whole chain
    assert "setting_7" not in text and "/runs/seg-0" not in text
    # The bundled model (whose real provenance is some 2,000 lines of JSON) gets a block of the same kind.
    lite = _block(result.stdout, "lite")
    assert len(lite) <= 30 and lite[0] == "lite (default)"
    assert max(len(line) for line in lite) <= 120


def test_verbose_shows_other_facts_as_short_key_value_lines(cache: Path, tiny_weights: Path) -> None:
    save_weights(
        make_tiny_net(),
        cache / "odd.safetensors",
        {"purpose": "tests", "notes": "x" * 500, "extra": {"deep": {"deeper": list(range(100))}}},
    )
    result = run_models("--verbose")
    assert result.exit_code == 0, result.output
    text = "\n".join(_block(result.stdout, "odd"))
    assert "purpose: tests" in text
    assert max(len(line) for line in text.splitlines()) <= 120 and "xxx..." in text


def test_an_unreadable_cached_file_is_reported_and_the_rest_listed(cache: Path, tiny_weights: Path) -> None:
    shutil.copy(tiny_weights, cache / "mine.safetensors")
    (cache / "broken.safetensors").write_bytes(b"\xff\xd8\xff\xe0 a JPEG, renamed")
    result = run_models()
    assert result.exit_code == 1
    rows = rows_by_name(result.stdout)
    assert list(rows) == ["lite", "broken", "mine"]
    assert rows["broken"]["config"] == "-" and rows["broken"]["provenance"].startswith("unreadable")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.safetensors" in errors[0] and "Traceback" not in result.output


def test_help_says_which_output_comes_when() -> None:
    result = CliRunner().invoke(app, ["models", "--help"], env={"COLUMNS": "100"})
    flat = " ".join(result.output.split())
    assert "terminal" in flat and "tab-separated" in flat
