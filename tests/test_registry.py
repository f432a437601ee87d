"""Model resolution (bundled, then cache) and `matte models`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mattecli import registry
from mattecli.cli.app import app
from mattecli.errors import MatteError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MATTE_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "models"
    folder.mkdir(parents=True)
    return folder


def test_cache_dir_follows_matte_home(cache: Path) -> None:
    assert registry.cache_dir() == cache


def test_cached_model_resolves_by_name_and_path(cache: Path, tiny_weights: Path) -> None:
    shutil.copy(tiny_weights, cache / "mine.safetensors")
    assert registry.resolve_model("mine") == cache / "mine.safetensors"
    assert registry.resolve_model(str(tiny_weights)) == tiny_weights
    names = {e.name: e.source for e in registry.list_models()}
    assert names["mine"] == "cache"


def test_bundled_models_shadow_cached_ones(cache: Path, tiny_weights: Path) -> None:
    bundled = registry.bundled_dir()
    assert bundled is not None and (bundled / "lite.safetensors").is_file(), "the default model ships inside"
    shutil.copy(tiny_weights, cache / "lite.safetensors")
    assert registry.resolve_model("lite").parent == bundled
    assert registry.resolve_model("default") == bundled / "lite.safetensors"
    sources = {e.name: e.source for e in registry.list_models()}
    assert sources["lite"] == "bundled"


def test_unknown_model_and_missing_file_are_one_line_errors(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(MatteError, match="unknown model 'nope'"):
        registry.resolve_model("nope")
    with pytest.raises(MatteError, match="not found"):
        registry.resolve_model(str(tmp_path / "gone.safetensors"))


def test_models_command_lists_size_config_and_provenance(cache: Path, tiny_weights: Path) -> None:
    shutil.copy(tiny_weights, cache / "mine.safetensors")
    result = CliRunner().invoke(
        app, ["models", "--verbose"], env={"COLUMNS": "200", "MATTE_HOME": str(cache.parent)}
    )
    assert result.exit_code == 0, result.output
    assert "mine" in result.output and "cache" in result.output
    assert "tiny: efficientnet_lite0" in result.output
    assert "purpose: tests" in result.output
    size_mb = f"{(cache / 'mine.safetensors').stat().st_size / 1e6:.1f} MB"
    assert size_mb in result.output
