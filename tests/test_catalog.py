"""Model resolution (bundled, then cache) and `matte models`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.errors import MatteError
from mattecli.modelfiles import catalog


def test_cache_dir_follows_matte_home(cache: Path) -> None:
    assert catalog.cache_dir() == cache


def test_cached_model_resolves_by_name_and_path(cache: Path, tiny_weights: Path) -> None:
    shutil.copy(tiny_weights, cache / "mine.safetensors")
    assert catalog.resolve_model("mine") == cache / "mine.safetensors"
    assert catalog.resolve_model(str(tiny_weights)) == tiny_weights
    names = {e.name: e.source for e in catalog.list_models()}
    assert names["mine"] == "cache"


def test_bundled_models_shadow_cached_ones(cache: Path, tiny_weights: Path) -> None:
    bundled = catalog.bundled_dir()
    assert bundled is not None and (bundled / "lite.safetensors").is_file(), "the default model ships inside"
    shutil.copy(tiny_weights, cache / "lite.safetensors")
    assert catalog.resolve_model("lite").parent == bundled
    assert catalog.resolve_model("default") == bundled / "lite.safetensors"
    sources = {e.name: e.source for e in catalog.list_models()}
    assert sources["lite"] == "bundled"


def test_unknown_model_and_missing_file_are_one_line_errors(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(MatteError, match="unknown model 'nope'"):
        catalog.resolve_model("nope")
    with pytest.raises(MatteError, match="not found"):
        catalog.resolve_model(str(tmp_path / "gone.safetensors"))


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


def test_models_command_summarises_exports_and_averages(cache: Path, tmp_path: Path) -> None:
    from conftest import make_tiny_net

    from mattecli.modelfiles.weights import save_weights

    save_weights(
        make_tiny_net(), cache / "exported.safetensors", {"stage": "joint", "steps": 588, "size": 512}
    )
    sources = [{"file": "a.safetensors", "weight": 0.5, "provenance": {"stage": "joint"}}]
    sources.append({"file": "b.safetensors", "weight": 0.5, "provenance": {"stage": "seg"}})
    save_weights(make_tiny_net(), cache / "soup.safetensors", {"average_of": sources})
    env = {"COLUMNS": "250", "MATTE_HOME": str(cache.parent)}
    result = CliRunner().invoke(app, ["models"], env=env)
    assert result.exit_code == 0, result.output
    assert "stage: joint; steps: 588; size: 512" in result.output
    assert "average of a.safetensors x0.5, b.safetensors x0.5" in result.output
    verbose = CliRunner().invoke(app, ["models", "--verbose"], env=env)
    assert "b.safetensors, weight 0.5" in verbose.output and "seg stage" in verbose.output  # no JSON dump


@pytest.mark.parametrize("kind", ["file", "folder"])
@pytest.mark.parametrize("name", ["default", "lite"])
def test_a_file_or_folder_named_like_a_built_in_model_does_not_hijack_it(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_weights: Path, name: str, kind: str
) -> None:
    """Issue 14 item 9: `--model default` with a `default` folder (or file) in the current folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if kind == "file":
        shutil.copy(tiny_weights, work / name)
    else:
        (work / name).mkdir()
    bundled = catalog.bundled_dir()
    assert bundled is not None
    assert catalog.resolve_model(name) == bundled / "lite.safetensors"
    # Written as a path, it is the path.
    if kind == "file":
        assert catalog.resolve_model(f"./{name}") == Path(f"./{name}")
        assert catalog.resolve_model(str(work / name)) == work / name
    else:
        with pytest.raises(MatteError, match="weights file not found"):
            catalog.resolve_model(f"./{name}")


def test_a_weights_file_without_the_suffix_still_resolves_when_no_model_has_its_name(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_weights: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_weights, tmp_path / "mymodel")
    assert catalog.resolve_model("mymodel") == Path("mymodel")
    shutil.copy(tiny_weights, cache / "mymodel.safetensors")
    assert catalog.resolve_model("mymodel") == cache / "mymodel.safetensors", "a model name wins"


def test_names_ending_in_the_suffix_are_paths(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(MatteError, match="weights file not found"):
        catalog.resolve_model("lite.safetensors")
