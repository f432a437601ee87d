"""What ``matte image`` says (issue 24): a value after an on/off flag (``--alpha-only true``) is a usage
error naming the flag, not "true: no such file"; one image named on the command line says what it wrote,
as ``matte video`` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_scene
from PIL import Image
from typer.testing import CliRunner

from mattecli.cli.app import app


def _photo(path: Path) -> Path:
    image, _ = synthetic_scene(48, 64)
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def _matte(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mattecli", "image", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "flag", "word"),
    [
        (["a.jpg", "--alpha-only", "true"], "--alpha-only", "true"),
        (["--preview", "False", "a.jpg"], "--preview", "False"),
        (["a.jpg", "--overwrite", "yes"], "--overwrite", "yes"),
    ],
)
def test_a_value_after_an_on_off_flag_is_a_usage_error_naming_the_flag(
    tmp_path: Path, args: list[str], flag: str, word: str
) -> None:
    _photo(tmp_path / "a.jpg")
    result = _matte(*args, "--model", "no-such-model", cwd=tmp_path)  # refused before the model loads
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {flag} takes no value: write {flag} alone ('{word}' is no input file)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]


def test_a_missing_input_that_is_a_boolean_word_gets_a_hint(tmp_path: Path) -> None:
    result = _matte("true", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: true: no such file or folder; on/off flags such as --alpha-only take no value"
    ]


def test_a_file_named_true_is_still_an_input(tmp_path: Path, tiny_weights: Path) -> None:
    _photo(tmp_path / "a.jpg").rename(tmp_path / "true")
    result = _matte("--alpha-only", "true", "-o", "out.png", "--model", str(tiny_weights), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "L" and written.size == (64, 48)


def test_one_image_says_what_it_wrote(tmp_path: Path, tiny_weights: Path) -> None:
    source = _photo(tmp_path / "a.jpg")
    runner = CliRunner()
    result = runner.invoke(app, ["image", str(source), "--model", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'a.matte.png'}" in result.stderr.splitlines()
    out = tmp_path / "b.png"
    result = runner.invoke(
        app, ["image", str(source), "-o", str(out), "--preview", "--model", str(tiny_weights)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out} and {tmp_path / 'b.preview.jpg'}" in result.stderr.splitlines()
    quiet = runner.invoke(
        app, ["image", str(source), "-o", str(tmp_path / "c.png"), "-q", "--model", str(tiny_weights)]
    )
    assert quiet.exit_code == 0 and "wrote" not in quiet.stderr
