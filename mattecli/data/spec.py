"""What to train on: data sources, their weights, name lists and split helpers.

A :class:`DataSpec` is a list of :class:`SourceSpec` (a folder of one of three layouts, a sampling weight,
optional include/exclude name lists) plus the augmentation settings. It is written by hand as a TOML file,
built in code, or guessed from a folder's layout, so that ``matte train DATA`` works on a bare folder and a
reproducible run can pin everything in one reviewable file.

Layouts (auto-detected when ``kind`` is omitted):

* ``pairs``: ``image/NAME.*`` + ``alpha/NAME.*`` (+ optional ``trimap/NAME.*``), as P3M-10k and AM-2k ship.
* ``composition``: ``fg/NAME.*`` + ``alpha/NAME.*`` composited onto random backgrounds (Deep Image Matting).
* ``cutouts``: RGBA ``*.png`` cut-outs directly in the folder, pasted onto random backgrounds.

Backgrounds come from ``backgrounds = "path"`` or a ``bg/`` or ``backgrounds/`` folder inside the root.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mattecli.atomic import write_text
from mattecli.data.augment import AugmentConfig
from mattecli.data.reading import list_images
from mattecli.errors import MatteError
from mattecli.image.formats import IMAGE_SUFFIXES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

LOG = logging.getLogger("mattecli.data")

KINDS = ("pairs", "composition", "cutouts")
#: Folder names that hold backgrounds, never training samples of their own.
BACKGROUND_FOLDERS = ("bg", "backgrounds")
#: Suffixes that can carry an alpha channel, used to recognise a folder of cut-outs.
RGBA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")

NameList = Path | Sequence[str] | None
_PATH_KEYS = ("root", "backgrounds")
_NAME_KEYS = ("include", "exclude", "backgrounds_include", "backgrounds_exclude")


@dataclass(frozen=True)
class SourceSpec:
    """One folder of training data.

    Attributes:
        root: The folder (layout given by ``kind``).
        kind: ``"pairs"``, ``"composition"`` or ``"cutouts"``; ``None`` detects it from the layout.
        weight: Relative sampling probability in a mixture (must be > 0).
        backgrounds: Background folder for composition/cut-out sources.
        include, exclude: Names (file stems) to keep or to leave out, as a file of names or a list.
        backgrounds_include, backgrounds_exclude: The same for the background images.
        label: Free-text description for people reading the spec (sample ids use the root's name).
    """

    root: Path
    kind: str | None = None
    weight: float = 1.0
    backgrounds: Path | None = None
    include: NameList = None
    exclude: NameList = None
    backgrounds_include: NameList = None
    backgrounds_exclude: NameList = None
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.backgrounds is not None:
            object.__setattr__(self, "backgrounds", Path(self.backgrounds))
        if self.kind is not None and self.kind not in KINDS:
            raise MatteError(f"unknown source kind {self.kind!r}; use one of {', '.join(KINDS)}", self.root)
        if not self.weight > 0:
            raise MatteError(f"source weight must be > 0, got {self.weight}", self.root)

    @property
    def resolved_kind(self) -> str:
        """The explicit kind, or the one detected from the folder layout (MatteError if none fits)."""
        kind = self.kind or detect_kind(self.root)
        if kind is None:
            raise MatteError(
                "no training data layout found: expected image/ + alpha/, fg/ + alpha/, "
                "or RGBA *.png cut-outs",
                self.root,
            )
        return kind


@dataclass(frozen=True)
class DataSpec:
    """Sources to sample from, augmentation settings and an optional default epoch length."""

    sources: tuple[SourceSpec, ...]
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    epoch_length: int | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        if not self.sources:
            raise MatteError("a data spec needs at least one source", self.path)
        if self.epoch_length is not None and self.epoch_length <= 0:
            raise MatteError(f"epoch_length must be positive, got {self.epoch_length}", self.path)


def detect_kind(root: Path) -> str | None:
    """The layout of ``root`` (see module docstring), or None when it matches none."""
    root = Path(root)
    if not root.is_dir():
        return None
    has_alpha = (root / "alpha").is_dir()
    if has_alpha and any((root / name).is_dir() for name in ("image", "images")):
        return "pairs"
    if has_alpha and (root / "fg").is_dir():
        return "composition"
    if root.name not in BACKGROUND_FOLDERS and any(
        path.suffix.lower() in RGBA_SUFFIXES for path in list_images(root).values()
    ):
        return "cutouts"
    return None


def load_data_spec(path_or_folder: str | Path) -> DataSpec:
    """Read a TOML spec, or build one from a data folder's layout.

    A folder that is itself one layout gives one source. A folder of such folders (like the project's
    ``shared/data``: ``people/``, ``cutouts/``, ``backgrounds/``) gives one source per sub-folder, all of
    weight 1, with the sibling ``backgrounds/`` (or ``bg/``) folder as their backgrounds.
    """
    path = Path(path_or_folder).expanduser()
    if path.is_file():
        return _parse_toml(path)
    if not path.is_dir():
        raise MatteError("no such data spec file or folder", path)
    if detect_kind(path) is not None:
        return DataSpec((SourceSpec(root=path),), path=path)
    backgrounds = next((path / n for n in BACKGROUND_FOLDERS if (path / n).is_dir()), None)
    sources = [
        SourceSpec(root=sub, backgrounds=backgrounds)
        for sub in sorted(p for p in path.iterdir() if p.is_dir())
        if detect_kind(sub) is not None
    ]
    if not sources:
        raise MatteError(
            "no training data found: expected image/ + alpha/, fg/ + alpha/, or RGBA *.png cut-outs "
            "(in the folder or in its sub-folders)",
            path,
        )
    return DataSpec(tuple(sources), path=path)


def _parse_toml(path: Path) -> DataSpec:
    """Parse a spec file; relative paths resolve against the file's folder."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MatteError(f"cannot read data spec ({exc})", path) from exc
    unknown = sorted(set(data) - {"source", "augment", "epoch_length"})
    if unknown:
        raise MatteError(f"unknown top-level keys in data spec: {', '.join(unknown)}", path)
    tables = data.get("source")
    if not isinstance(tables, list) or not tables:
        raise MatteError("data spec needs at least one [[source]] table", path)
    try:
        augment = AugmentConfig.from_dict(data.get("augment", {}))
    except (TypeError, ValueError) as exc:
        raise MatteError(f"bad [augment] table ({exc})", path) from exc
    epoch_length = data.get("epoch_length")
    if epoch_length is not None and (isinstance(epoch_length, bool) or not isinstance(epoch_length, int)):
        raise MatteError("epoch_length must be a whole number", path)
    sources = tuple(_parse_source(table, path) for table in tables)
    return DataSpec(sources, augment=augment, epoch_length=epoch_length, path=path)


def _parse_source(table: dict[str, Any], spec_path: Path) -> SourceSpec:
    """One [[source]] table -> SourceSpec with paths made absolute."""
    allowed = {"kind", "weight", "label", *_PATH_KEYS, *_NAME_KEYS}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise MatteError(f"unknown keys in [[source]]: {', '.join(unknown)}", spec_path)
    if "root" not in table:
        raise MatteError("every [[source]] needs a root folder", spec_path)
    base = spec_path.parent
    values: dict[str, Any] = dict(table)
    for key in (*_PATH_KEYS, *_NAME_KEYS):
        value = values.get(key)
        if isinstance(value, str):
            values[key] = (base / Path(value).expanduser()).resolve()
        elif value is not None and not (key in _NAME_KEYS and isinstance(value, list)):
            what = "a path or a list of names" if key in _NAME_KEYS else "a path"
            raise MatteError(f"{key} must be {what}", spec_path)
    if not isinstance(values.get("weight", 1.0), int | float):
        raise MatteError("weight must be a number", spec_path)
    return SourceSpec(**values)


def _strip_suffix(name: str) -> str:
    """'abc.png' -> 'abc' so name lists may hold file names or stems."""
    path = Path(name)
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else name


def read_names(path: str | Path) -> list[str]:
    """Names from a file, one per line; blank lines and ``#`` comments are ignored."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MatteError(f"cannot read name list ({exc})", path) from exc
    names = (line.split("#", 1)[0].strip() for line in lines)
    return [_strip_suffix(name) for name in names if name]


def resolve_names(value: NameList) -> set[str] | None:
    """A name list given as a file or a sequence -> set of stems (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str | Path):
        return set(read_names(value))
    return {_strip_suffix(str(name)) for name in value}


def filter_names(names: Iterable[str], include: NameList, exclude: NameList, where: Path) -> list[str]:
    """Apply include/exclude lists to ``names`` (sorted result); MatteError when nothing is left."""
    names = sorted(names)
    keep, drop = resolve_names(include), resolve_names(exclude)
    if keep is not None:
        missing = keep.difference(names)
        if missing:
            LOG.warning(
                "%s: %d name(s) of the include list not found (e.g. %s)",
                where,
                len(missing),
                ", ".join(sorted(missing)[:3]),
            )
        names = [n for n in names if n in keep]
    if drop:
        names = [n for n in names if n not in drop]
    if not names:
        raise MatteError("no samples left after applying include/exclude lists", where)
    return names


def list_names(folder: str | Path) -> list[str]:
    """Sorted stems of the images in ``folder`` (to build split files from)."""
    return sorted(list_images(Path(folder)))


def make_split(names: Iterable[str], n_val: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split names into (train, val) at random but reproducibly; both lists come back sorted."""
    unique = sorted(set(names))
    if not 0 <= n_val <= len(unique):
        raise ValueError(f"n_val must be between 0 and {len(unique)}, got {n_val}")
    order = np.random.default_rng(seed).permutation(len(unique))
    val = {unique[i] for i in order[:n_val]}
    return [n for n in unique if n not in val], sorted(val)


def write_names(path: str | Path, names: Iterable[str], *, overwrite: bool = False) -> Path:
    """Write names one per line, atomically (temporary file + rename); refuses to overwrite by default."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise MatteError("name list already exists (pass overwrite=True to replace it)", path)
    return write_text(path, "".join(f"{name}\n" for name in names), overwrite=True)
