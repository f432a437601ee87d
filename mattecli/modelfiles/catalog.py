"""Named models: one record per name, and where a named model's weights file is.

Every name a user can give (``--model NAME``, ``matte train --model-config NAME``, ``get_config``) is a
:class:`NamedModel` registered here: its network config, and where it has trained weights, the weights
file's name, its sha256 and its validation figures (and a URL where the file is hosted elsewhere). This is
the one table, in the spirit of torchvision's ``register_model`` / ``get_model`` / ``list_models`` and
``WeightsEnum``: ``lite`` is one record (the ``lite`` config and the bundled ``lite.safetensors``), not a
config and a file that happen to share a name.

``--model`` takes a name or a path. A name resolves first to ``NAME.safetensors`` in the package's
``mattecli.bundled`` folder (installed from the repository's ``weights/`` folder, see setup.py, so a new
user needs no download), then to ``NAME.safetensors`` in :func:`cache_dir` (platformdirs' user cache dir,
or ``$MATTE_HOME/models`` when set); a file a user adds to the cache is a named model too, without a
record. ``default`` is an alias. A name wins over a file or folder of the same name in the current folder;
``./NAME`` means the file. Turning any of these into a network is :mod:`mattecli.modelfiles.loading`'s job
(:func:`~mattecli.modelfiles.loading.locate` is the one resolver of ``--model``); this module only finds
and lists the named ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mattecli.errors import MatteError
from mattecli.models.config import LITE, LITE1, LITE2, PAPER, PAPER_AUTHORS_INPUT, ModelConfig

DEFAULT_MODEL = "lite"
ALIASES = {"default": DEFAULT_MODEL}
SUFFIX = ".safetensors"
#: Suffixes that make ``--model`` text a path, never a name: the files :mod:`mattecli.modelfiles.loading` reads.
MODEL_SUFFIXES = (SUFFIX, ".onnx", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class NamedModel:
    """A model by name: its network, and where it has trained weights, which file and how good it is.

    Attributes:
        name: What ``--model`` and ``--model-config`` take (and the config's own name).
        config: The network the name builds (``matte train --model-config NAME``).
        file: The weights file's name (``NAME.safetensors``, bundled or in the cache), or None for a
            network with no released weights.
        sha256: The released file's full sha256 (hex), or None.
        validation: Validation figures of the released weights: set name -> metric -> value.
        url: Where the weights file can be downloaded when it does not ship with the package, or None.
    """

    name: str
    config: ModelConfig
    file: str | None = None
    sha256: str | None = None
    validation: Mapping[str, Mapping[str, float]] = field(default_factory=dict, compare=False)
    url: str | None = None

    def __post_init__(self) -> None:
        if self.config.name != self.name:
            raise ValueError(f"model {self.name!r} has config {self.config.name!r}; the names must match")
        object.__setattr__(self, "validation", MappingProxyType(dict(self.validation)))


@dataclass(frozen=True)
class ModelEntry:
    """An installed weights file that ``matte models`` lists, and its record when the name is registered."""

    name: str
    path: Path
    source: str  # "bundled" | "cache"
    size_bytes: int
    model: NamedModel | None = None


#: Every named model, in the order ``--model-config`` help lists them.
_MODELS: dict[str, NamedModel] = {}


def register_model(model: NamedModel) -> NamedModel:
    """Make a model available by name (``--model NAME`` when it has weights, ``--model-config NAME``,
    :func:`get_config`); registering a name again replaces its record."""
    _MODELS[model.name] = model
    return model


def register_config(config: ModelConfig) -> NamedModel:
    """Make a network variant available by name (``get_config``, ``matte train --model-config NAME``): a
    :class:`NamedModel` without weights."""
    return register_model(NamedModel(config.name, config))


def get_model(name: str) -> NamedModel:
    """The record of a named model (``default`` and other aliases resolved); ValueError naming the known
    ones otherwise."""
    try:
        return _MODELS[ALIASES.get(name, name)]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(_MODELS)}") from None


def model_names() -> list[str]:
    """Names of all registered models, with or without weights."""
    return list(_MODELS)


def get_config(name: str) -> ModelConfig:
    """The network config of a named model (``matte train --model-config NAME``)."""
    try:
        return _MODELS[name].config
    except KeyError:
        raise ValueError(f"unknown model config {name!r}; known: {', '.join(_MODELS)}") from None


def config_names() -> list[str]:
    """Names that ``--model-config`` takes: every registered model."""
    return model_names()


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
    """The installed weights files: bundled models first, then cached ones (a cached model with a bundled
    name is shadowed), each with its :class:`NamedModel` record when its name is registered."""
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for source, folder in (("bundled", bundled_dir()), ("cache", cache_dir())):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            name = path.name[: -len(SUFFIX)]
            if name not in seen:
                seen.add(name)
                record = _MODELS.get(name)
                record = record if record is not None and record.file == path.name else None
                entries.append(ModelEntry(name, path, source, path.stat().st_size, record))
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


def looks_like_path(text: str) -> bool:
    """Whether ``--model`` text is a path whatever names exist: a separator, ``~``, or a model suffix."""
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return (
        text.lower().endswith(MODEL_SUFFIXES)
        or text.startswith("~")
        or any(sep in text for sep in separators)
    )


def describe_entry(entry: ModelEntry) -> dict[str, Any]:
    """Config and provenance of a listed model, for ``matte models``."""
    from mattecli.modelfiles.weights import read_metadata

    config, provenance = read_metadata(entry.path)
    return {"config": config, "provenance": provenance}


for _config in (PAPER, PAPER_AUTHORS_INPUT):
    register_config(_config)
register_model(
    NamedModel(
        "lite",
        LITE,
        file="lite.safetensors",
        sha256="c2becf756ab4d5fc7ef8d9eb8228f11c93061d39e834d1daa76b025720fae577",
        # weights/README.md, Validation: whole image, full resolution, 512 px working size.
        validation={
            "people photos vs soft alpha": {
                "iou": 0.898,
                "mse": 0.0204,
                "sad": 11.76,
                "grad": 5.24,
                "conn": 11.51,
            },
            "people photos vs binary mask": {
                "iou": 0.886,
                "mse": 0.0261,
                "sad": 13.50,
                "grad": 14.92,
                "conn": 13.18,
            },
            "cut-outs on held-out backgrounds": {
                "iou": 0.905,
                "mse": 0.0051,
                "sad": 2.41,
                "grad": 3.15,
                "conn": 1.99,
            },
        },
    )
)
for _config in (LITE1, LITE2):
    register_config(_config)
