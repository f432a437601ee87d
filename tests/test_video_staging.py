"""Staged output folders (PNG sequences): filled under a hidden name, moved into place only when complete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mattecli.atomic import atomic_folder
from mattecli.errors import MatteError


def _names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_folder_appears_only_when_the_block_succeeds(tmp_path):
    out = tmp_path / "sub" / "frames"
    with atomic_folder(out) as temporary:
        assert temporary.parent == out.parent and temporary.name.startswith(".frames.")
        assert temporary.name.endswith(".partial") and temporary.is_dir()
        (temporary / "frame_000001.png").write_bytes(b"1")
        assert not out.exists()
    assert _names(out) == ["frame_000001.png"]
    assert _names(out.parent) == ["frames"]


def test_failure_removes_the_hidden_folder(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_folder(tmp_path / "frames") as temporary:
        (temporary / "frame_000001.png").write_bytes(b"1")
        raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_existing_folder_is_refused_before_any_work(tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "mine.png").write_bytes(b"mine")
    with pytest.raises(MatteError, match=r"frames: exists \(use --overwrite\)"), atomic_folder(out):
        pytest.fail("the block must not run")
    assert _names(tmp_path) == ["frames"] and _names(out) == ["mine.png"]


def test_overwrite_replaces_the_old_folder_only_after_success(tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_folder(out, overwrite=True):
        raise RuntimeError("failed half-way")
    assert _names(out) == ["old.png"]  # a failed run keeps the old result
    with atomic_folder(out, overwrite=True) as temporary:
        (temporary / "new.png").write_bytes(b"new")
    assert _names(out) == ["new.png"] and _names(tmp_path) == ["frames"]


def test_folder_that_appears_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "frames"
    with pytest.raises(MatteError, match=r"exists \(use --overwrite\)"), atomic_folder(out) as temporary:
        (temporary / "new.png").write_bytes(b"new")
        out.mkdir()  # another program wrote there while we worked
        (out / "theirs.png").write_bytes(b"theirs")
    assert _names(out) == ["theirs.png"] and _names(tmp_path) == ["frames"]


def test_unwritable_place_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with (
        pytest.raises(
            MatteError, match=r"file\.txt: is a file, not a folder: cannot write .*frames inside it"
        ),
        atomic_folder(blocker / "frames"),
    ):
        pytest.fail("the block must not run")
