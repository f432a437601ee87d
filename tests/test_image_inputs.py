"""Finding input images (mattecli.image.inputs): folders, globs, duplicates and errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mattecli.errors import MatteError
from mattecli.image.inputs import collect_inputs


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for relative in ["shots/b.jpg", "shots/a.png", "shots/day2/c.JPG", "shots/day2/deep/d.webp"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    (tmp_path / "shots/.hidden.png").write_bytes(b"x")
    (tmp_path / "shots/._a.png").write_bytes(b"x")
    (tmp_path / "shots/notes.txt").write_text("x")
    (tmp_path / "shots/.cache").mkdir()
    (tmp_path / "shots/.cache/e.png").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_folder_is_expanded_recursively_sorted_with_relative_paths(tree: Path) -> None:
    found = collect_inputs([str(tree / "shots")])
    assert [str(relative) for _, relative in found] == [
        "a.png",
        "b.jpg",
        os.path.join("day2", "c.JPG"),
        os.path.join("day2", "deep", "d.webp"),
    ]
    assert found[0][0] == tree / "shots" / "a.png"


def test_folder_without_recursion(tree: Path) -> None:
    found = collect_inputs([str(tree / "shots")], recursive=False)
    assert [relative.name for _, relative in found] == ["a.png", "b.jpg"]


def test_glob_files_and_duplicates(tree: Path) -> None:
    pattern = str(tree / "shots" / "**" / "*.webp")
    found = collect_inputs([pattern, str(tree / "shots" / "day2"), str(tree / "shots/a.png")])
    paths = [path for path, _ in found]
    assert paths == sorted(paths, key=lambda p: str(p).lower())
    assert len(paths) == len({p.resolve() for p in paths}) == 3  # d.webp reached twice, kept once
    relatives = {path.name: str(relative) for path, relative in found}
    assert relatives["a.png"] == "a.png"
    assert relatives["c.JPG"] == "c.JPG"  # relative to the folder named on the line
    assert relatives["d.webp"] == os.path.join("day2", "deep", "d.webp")  # below the fixed "shots/"


def test_collect_errors(tree: Path) -> None:
    with pytest.raises(MatteError, match="no such file or folder"):
        collect_inputs([str(tree / "nope.jpg")])
    with pytest.raises(MatteError, match="matches no images"):
        collect_inputs([str(tree / "shots" / "*.tiff")])
    with pytest.raises(MatteError, match="no images"):
        collect_inputs([str(tree / "empty")])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
def test_a_pipe_or_broken_link_named_as_input_says_what_it_is(tmp_path: Path) -> None:
    """Both said 'no such file or folder', although `ls` shows them."""
    fifo = tmp_path / "b.jpg"
    os.mkfifo(fifo)
    with pytest.raises(MatteError, match=r"b\.jpg: is not a regular file \(a pipe or device\)"):
        collect_inputs([str(fifo)])
    link = tmp_path / "gone.jpg"
    link.symlink_to(tmp_path / "moved.jpg")
    with pytest.raises(MatteError, match=r"gone\.jpg: is a broken symbolic link \(to .*moved\.jpg\)"):
        collect_inputs([str(link)])
