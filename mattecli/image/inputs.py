"""Finding the input images: files, folders (recursively) and glob patterns, each file once.

Each image comes with its place below the folder or the fixed part of the pattern it was found in, so that
an output folder can mirror the inputs' sub-folders. Which outputs of earlier runs to leave out is the
image pipeline's business (:mod:`mattecli.photo.planning`); this module only knows what an image file is.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from mattecli.errors import MatteError
from mattecli.image.formats import IMAGE_SUFFIXES, suffix_list


def collect_inputs(inputs: Iterable[str], recursive: bool = True) -> list[tuple[Path, Path]]:
    """Expand files, folders and glob patterns into (image path, relative path) pairs.

    The relative path is the file's place below the folder (or the fixed part of the glob pattern)
    it was found in, so an output folder can mirror the input's sub-folders; a file named directly
    has just its name. Folders contribute files with an image suffix, skipping hidden files (editor
    and macOS "._" droppings, our own temporary files). The result is sorted by path and holds each
    file once. Raises MatteError for a path that does not exist or a folder or pattern with no images.
    """
    found: dict[Path, tuple[Path, Path]] = {}
    for text in inputs:
        for source, relative in _expand_one(text, recursive):
            found.setdefault(identity(source), (source, relative))
    return sorted(found.values(), key=lambda pair: (str(pair[0]).lower(), str(pair[0])))


def _expand_one(text: str, recursive: bool) -> list[tuple[Path, Path]]:
    path = Path(text).expanduser()
    if path.is_file():
        return [(path, Path(path.name))]
    if path.is_dir():
        images = _images_in_folder(path, recursive)
        if not images:
            raise MatteError(f"folder contains no images ({suffix_list()})", path)
        return images
    if glob.has_magic(text):
        images = _images_matching(text, recursive)
        if not images:
            raise MatteError(f"pattern matches no images ({suffix_list()})", text)
        return images
    if path.exists():  # a named pipe, socket or device (also <(process substitution))
        raise MatteError("is not a regular file (a pipe or device); pipe the image to `matte image -`", path)
    if path.is_symlink():
        raise MatteError(f"is a broken symbolic link (to {os.readlink(path)})", path)
    if text.strip().lower() in BOOLEAN_WORDS:
        raise MatteError("no such file or folder; on/off flags such as --alpha-only take no value", path)
    raise MatteError("no such file or folder", path)


#: Words that, as a missing input, are a value given to an on/off flag (``--alpha-only true``).
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off"})


def _images_in_folder(folder: Path, recursive: bool) -> list[tuple[Path, Path]]:
    """Image files below ``folder`` (not following symlinked folders, which can loop)."""
    images = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        if not recursive:
            folders.clear()
        for name in files:
            candidate = Path(root) / name
            if looks_like_image(candidate) and candidate.is_file():
                images.append((candidate, candidate.relative_to(folder)))
    return images


def _images_matching(pattern: str, recursive: bool) -> list[tuple[Path, Path]]:
    """Images matching a glob pattern; folders it matches are expanded like folders on the line."""
    base = _fixed_prefix(pattern)
    images = []
    for match in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
        candidate = Path(match)
        if candidate.is_dir():
            images.extend(
                (image, _relative_to(image, base)) for image, _ in _images_in_folder(candidate, recursive)
            )
        elif candidate.is_file() and looks_like_image(candidate):
            images.append((candidate, _relative_to(candidate, base)))
    return images


def _fixed_prefix(pattern: str) -> Path:
    """The leading folders of a glob pattern that contain no wildcard ("shots/**/*.jpg" -> shots)."""
    parts = Path(os.path.expanduser(pattern)).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path()


def _relative_to(path: Path, base: Path) -> Path:
    try:
        return path.relative_to(base)
    except ValueError:
        return Path(path.name)


def looks_like_image(path: Path) -> bool:
    """An image by its name: an image suffix (any case) and not hidden (editor and macOS "._" droppings,
    our own temporary files). ``matte image`` folders and training data folders both list files by it."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def identity(path: Path) -> Path:
    """The same file reached twice (folder and glob, ./a and a) must be processed once."""
    try:
        return path.resolve()
    except OSError:
        return path.absolute()
