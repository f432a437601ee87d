"""Names a package exports but imports on first use (PEP 562): the one implementation of it.

``mattecli``, ``mattecli.image``, ``mattecli.video`` and ``mattecli.serve`` list their public names with
the submodule that defines each, so that importing a package costs nothing (no numpy, torch or Starlette)
until a name is used: that keeps ``matte --help`` fast. Only the standard library is imported here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps each public name to the submodule
    (relative to the package) that defines it. A name is imported on first use and then kept in the
    package's namespace, so the next use is a plain attribute."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{exports[name]}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
