"""Where models come from: weights bundled in the package, then the user's cache.

``--model`` takes a weights file path or a name. Names resolve first to ``mattecli/weights/NAME.safetensors``
inside the installed package (so a new user needs no download), then to ``MODELS_DIR/NAME.safetensors`` under
the cache directory (platformdirs' user cache dir, or ``$MATTE_HOME`` when set). ``default`` is an alias.
A name wins over a file or folder of the same name in the current folder; ``./NAME`` means the file.
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


def resolve_model(spec: str | os.PathLike[str]) -> Path:
    """Turn ``--model`` into a weights file path, or raise a one-line error listing what exists.

    A built-in or cached name wins over a file or folder of that name in the current folder (a stray
    ``default`` folder must not hijack ``--model default``); write ``./default`` to mean the file. Text
    that looks like a path (a path separator, or the ``.safetensors`` suffix) is always a path, and any
    other text that is no model's name is tried as a file last.
    """
    text = os.fspath(spec)
    candidate = Path(text).expanduser()
    if _looks_like_path(text):
        return _weights_file(candidate)
    name = ALIASES.get(text, text)
    models = list_models()
    for entry in models:
        if entry.name == name:
            return entry.path
    if candidate.exists():
        return _weights_file(candidate)
    known = ", ".join(e.name for e in models) or "none installed"
    raise MatteError(
        f"unknown model {text!r} (known: {known}; or pass a .safetensors file; cache: {cache_dir()})"
    )


def _looks_like_path(text: str) -> bool:
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return text.endswith(SUFFIX) or text.startswith("~") or any(sep in text for sep in separators)


def _weights_file(candidate: Path) -> Path:
    if not candidate.is_file():
        raise MatteError("weights file not found", candidate)
    return candidate


def describe_entry(entry: ModelEntry) -> dict[str, Any]:
    """Config and provenance of a listed model, for ``matte models``."""
    from mattecli.weights import read_metadata

    config, provenance = read_metadata(entry.path)
    return {"config": config, "provenance": provenance}
