"""The installed package is the whole package: every module imports and every command is registered.

CI runs these against the installed wheel (MATTE_REQUIRE_INSTALLED, see conftest.py), which is how a
sub-package missing from the wheel (0.1.0 shipped without ``mattecli.video``) gets caught.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import mattecli

SOURCE = Path(__file__).resolve().parent.parent / "mattecli"


def _installed_modules() -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages(mattecli.__path__, prefix="mattecli.") if info.name
    )


def test_every_installed_module_imports() -> None:
    names = _installed_modules()
    assert "mattecli.video.pipeline" in names and "mattecli.cli.video" in names
    for name in names:
        if name != "mattecli.__main__":  # importing it runs the command line
            importlib.import_module(name)


@pytest.mark.skipif(not SOURCE.is_dir(), reason="no source tree beside the tests")
def test_every_source_module_is_installed() -> None:
    expected = set()
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        expected.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    installed = {*_installed_modules(), "mattecli"}
    assert sorted(expected - installed) == []


def test_bundled_weights_are_installed() -> None:
    from mattecli.modelfiles.catalog import bundled_dir

    folder = bundled_dir()
    assert folder is not None and (folder / "lite.safetensors").stat().st_size > 1_000_000


def test_every_command_is_registered() -> None:
    from mattecli.cli.app import COMMANDS, app

    registered = {command.name for command in app.registered_commands}
    assert registered == {name for name, _module, _function in COMMANDS}
    assert {"image", "video", "models", "train", "eval", "export", "average"} <= registered
