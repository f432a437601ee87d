"""The optional extras (``serve``, ``onnx``, ``train``): what they hold and how to install them.

pyproject.toml is the one list of each extra's packages; this module reads it back from the installed
package's metadata (or, in a source tree that is not installed, from pyproject.toml itself), so an error
never names a package list of its own.

mattecli is not on a package index, so ``pip install 'mattecli[serve]'`` cannot work, and under pipx a
bare ``pip`` installs into some other environment. :func:`install_command` gives the command that installs
the extra's packages into the environment that is running: ``pipx inject VENV PKG...`` when mattecli runs
from a pipx venv, else ``PYTHON -m pip install PKG...`` with this very interpreter.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

DISTRIBUTION = "mattecli"
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


def extra_requirements(extra: str) -> tuple[str, ...]:
    """The requirements of an extra as pyproject.toml states them (``starlette>=0.40``, ...)."""
    import importlib.metadata

    try:
        requires = importlib.metadata.requires(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return _pyproject_requirements(extra)
    found = []
    for line in requires or ():
        requirement, _, marker = line.partition(";")
        if extra in _EXTRA_MARKER.findall(marker):
            found.append(requirement.strip())
    return tuple(found) if found else _pyproject_requirements(extra)


def _pyproject_requirements(extra: str) -> tuple[str, ...]:
    """A source tree run without installing it (``PYTHONPATH=.``): pyproject.toml beside the package."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        with pyproject.open("rb") as file:
            data = tomllib.load(file)
    except (OSError, ImportError, ValueError):
        return ()
    return tuple(data.get("project", {}).get("optional-dependencies", {}).get(extra, ()))


def pipx_venv(prefix: str | Path | None = None) -> Path | None:
    """The pipx venv that mattecli runs from, or None. pipx keeps ``pipx_metadata.json`` in each of its
    venvs, which live in ``$PIPX_HOME/venvs/NAME`` (by default a folder named ``pipx``)."""
    folder = Path(sys.prefix if prefix is None else prefix)
    if (folder / "pipx_metadata.json").is_file():
        return folder
    home = os.environ.get("PIPX_HOME")
    if folder.parent.name == "venvs" and (
        folder.parent.parent.name == "pipx" or (home and _same(folder.parent.parent, Path(home)))
    ):
        return folder
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.expanduser().resolve()
    except OSError:
        return False


def install_command(extra: str, prefix: str | Path | None = None, python: str | None = None) -> str:
    """The shell command that installs ``extra``'s packages where this mattecli runs."""
    requirements = extra_requirements(extra) or (f"{DISTRIBUTION}[{extra}]",)
    packages = " ".join(shlex.quote(requirement) for requirement in requirements)
    venv = pipx_venv(prefix)
    if venv is not None:
        return f"pipx inject {shlex.quote(venv.name)} {packages}"
    return f"{shlex.quote(python or sys.executable or 'python3')} -m pip install {packages}"


def install_hint(extra: str) -> str:
    """``the serve extra: COMMAND``, for error messages."""
    return f"the {extra} extra: {install_command(extra)}"
