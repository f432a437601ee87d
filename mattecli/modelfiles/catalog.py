"""Where named models come from: weights bundled with the package, then the user's cache.

``--model`` takes a name or a path. A name resolves first to ``NAME.safetensors`` in the package's
``mattecli.bundled`` folder (installed from the repository's ``weights/`` folder, see setup.py, so a new
user needs no download), then to ``NAME.safetensors`` in :func:`cache_dir` (platformdirs' user cache dir,
or ``$MATTE_HOME/models`` when set). ``default`` is an alias. A name wins over a file or folder of the same
name in the current folder; ``./NAME`` means the file. Turning any of these into a network is
:mod:`mattecli.modelfiles.loading`'s job; this module only finds and lists the named ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mattecli.errors import MatteError

DEFAULT_MODEL = "lite"
ALIASES = {"default": DEFAULT_MODEL}
SUFFIX = ".safetensors"
#: Suffixes that make ``--model`` text a path, never a name: the files :mod:`mattecli.modelfiles.loading` reads.
MODEL_SUFFIXES = (SUFFIX, ".onnx", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class ModelEntry:
    """A model that ``matte models`` lists."""

    name: str
    path: Path
    source: str  # "bundled" | "cache"
    size_bytes: int


def cache_dir() -> Path:
    """The folder for downloaded or user-added models (``$MATTE_HOME/models`` when set)."""
    home = os.environ.get("MATTE_HOME")
    if home:
        return Path(home).expanduser() / "models"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mattecli")) / "models"


def bundled_dir() -> Path | None:
    """The package's own weights folder, or None when the package was installed without it."""
    try:
        path = Path(str(resources.files("mattecli.bundled")))
    except (ModuleNotFoundError, TypeError):
        return None
    return path if path.is_dir() else None


def list_models() -> list[ModelEntry]:
    """Bundled models first, then cached ones (a cached model with a bundled name is shadowed)."""
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for source, folder in (("bundled", bundled_dir()), ("cache", cache_dir())):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            name = path.name[: -len(SUFFIX)]
            if name not in seen:
                seen.add(name)
                entries.append(ModelEntry(name, path, source, path.stat().st_size))
    return entries


def find_model(name: str) -> Path | None:
    """The weights file of a bundled or cached model called ``name`` (or an alias), else None."""
    name = ALIASES.get(name, name)
    for entry in list_models():
        if entry.name == name:
            return entry.path
    return None


def unknown_model(text: str) -> MatteError:
    """The one-line error for text that is neither a model's name nor an existing path."""
    known = ", ".join(e.name for e in list_models()) or "none installed"
    return MatteError(
        f"unknown model {text!r} (known: {known}; or pass a weights file, an exported .onnx model, "
        f"a training checkpoint or a run folder; cache: {cache_dir()})"
    )


def resolve_model(spec: str | os.PathLike[str]) -> Path:
    """Turn ``--model`` into a weights file path, or raise a one-line error listing what exists.

    A built-in or cached name wins over a file or folder of that name in the current folder (a stray
    ``default`` folder must not hijack ``--model default``); write ``./default`` to mean the file. Text
    that looks like a path (a path separator, or a model file's suffix) is always a path, and any
    other text that is no model's name is tried as a file last.
    """
    text = os.fspath(spec)
    candidate = Path(text).expanduser()
    if looks_like_path(text):
        return _weights_file(candidate)
    found = find_model(text)
    if found is not None:
        return found
    if candidate.exists():
        return _weights_file(candidate)
    raise unknown_model(text)


def looks_like_path(text: str) -> bool:
    """Whether ``--model`` text is a path whatever names exist: a separator, ``~``, or a model suffix."""
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return (
        text.lower().endswith(MODEL_SUFFIXES)
        or text.startswith("~")
        or any(sep in text for sep in separators)
    )


def _weights_file(candidate: Path) -> Path:
    if not candidate.is_file():
        raise MatteError("weights file not found", candidate)
    return candidate


def describe_entry(entry: ModelEntry) -> dict[str, Any]:
    """Config and provenance of a listed model, for ``matte models``."""
    from mattecli.modelfiles.weights import read_metadata

    config, provenance = read_metadata(entry.path)
    return {"config": config, "provenance": provenance}
