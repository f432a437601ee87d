"""Animated and multi-page inputs (issue 24): only the first frame is matted, and a warning line says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.errors import MatteWarning
from mattecli.image.decoding import read_image

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]


def _frames() -> list[Image.Image]:
    return [Image.fromarray(np.full((24, 32, 3), colour, np.uint8)) for colour in COLOURS]


def _save(path: Path) -> Path:
    first, *rest = _frames()
    options = {"lossless": True} if path.suffix == ".webp" else {}
    first.save(path, save_all=True, append_images=rest, **options)
    with Image.open(path) as check:
        assert check.n_frames == 3
    return path


@pytest.mark.parametrize(("name", "kind"), [("anim.webp", "frames"), ("pages.tif", "pages")])
def test_the_api_warns_and_reads_the_first_frame(tmp_path: Path, name: str, kind: str) -> None:
    path = _save(tmp_path / name)
    with pytest.warns(MatteWarning) as caught:
        image = read_image(path)
    assert [str(w.message) for w in caught] == [f"{path}: has 3 {kind}; only the first is used"]
    assert (image.pixels == COLOURS[0]).all()


def test_a_single_frame_file_gives_no_warning(tmp_path: Path, recwarn) -> None:
    path = tmp_path / "one.webp"
    _frames()[0].save(path, lossless=True)
    read_image(path)
    assert not [w for w in recwarn if issubclass(w.category, MatteWarning)]


@pytest.mark.parametrize(("name", "kind"), [("anim.webp", "frames"), ("pages.tif", "pages")])
def test_the_command_prints_one_warning_line(
    tmp_path: Path, tiny_weights: Path, name: str, kind: str
) -> None:
    path = _save(tmp_path / name)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(app, ["image", str(path), "-o", str(out), "-m", str(tiny_weights), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"warning: {path}: has 3 {kind}; only the first is used"]
    with Image.open(out) as written:
        assert written.size == (32, 24)
