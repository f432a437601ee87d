"""Named models: the one record per name (config, weights file, sha256, validation), where a name's file
is (bundled, then cache), and `matte models`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.errors import MatteError
from mattecli.modelfiles import catalog
from mattecli.modelfiles.loading import locate


def test_cache_dir_follows_matte_home(cache: Path) -> None:
    assert catalog.cache_dir() == cache


def test_cached_model_resolves_by_name_and_path(cache: Path, tiny_weights: Path) -> None:
    shutil.copy(tiny_weights, cache / "mine.safetensors")
    assert locate("mine").path == cache / "mine.safetensors"
    assert locate(str(tiny_weights)).path == tiny_weights
    names = {e.name: e.source for e in catalog.list_models()}
    assert names["mine"] == "cache"


def test_bundled_models_shadow_cached_ones(cache: Path, tiny_weights: Path) -> None:
    bundled = catalog.bundled_dir()
    assert bundled is not None and (bundled / "lite.safetensors").is_file(), "the default model ships inside"
    shutil.copy(tiny_weights, cache / "lite.safetensors")
    assert locate("lite").path.parent == bundled
    assert locate("default").path == bundled / "lite.safetensors"
    sources = {e.name: e.source for e in catalog.list_models()}
    assert sources["lite"] == "bundled"


def test_unknown_model_and_missing_file_are_one_line_errors(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(MatteError, match="unknown model 'nope'"):
        locate("nope")
    with pytest.raises(MatteError, match="not found"):
        locate(str(tmp_path / "gone.safetensors"))


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
    assert locate(name).path == bundled / "lite.safetensors"
    # Written as a path, it is the path.
    if kind == "file":
        assert locate(f"./{name}").path == Path(f"./{name}")
        assert locate(str(work / name)).path == work / name
    else:
        with pytest.raises(MatteError, match="folder holds no model"):
            locate(f"./{name}")


def test_a_weights_file_without_the_suffix_still_resolves_when_no_model_has_its_name(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_weights: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_weights, tmp_path / "mymodel")
    assert locate("mymodel").path == Path("mymodel")
    shutil.copy(tiny_weights, cache / "mymodel.safetensors")
    assert locate("mymodel").path == cache / "mymodel.safetensors", "a model name wins"


def test_names_ending_in_the_suffix_are_paths(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(MatteError, match="weights file not found"):
        locate("lite.safetensors")


# ------------------------------------------------------------------------------ one record per name


def test_every_name_is_one_record_with_its_config_and_weights(cache: Path) -> None:
    """``lite`` is one model: the config ``--model-config lite`` builds and the file ``--model lite``
    reads, with the file's sha256 and validation figures."""
    import hashlib

    from mattecli.models.config import LITE, PAPER

    lite = catalog.get_model("lite")
    assert catalog.get_model("default") is lite
    assert lite.config is LITE and catalog.get_config("lite") is LITE
    assert (
        catalog.model_names()
        == catalog.config_names()
        == ["paper", "paper-authors-input", "lite", "lite1", "lite2"]
    )
    installed = {entry.name: entry for entry in catalog.list_models()}
    assert installed["lite"].model is lite and installed["lite"].path.name == lite.file
    assert hashlib.sha256(installed["lite"].path.read_bytes()).hexdigest() == lite.sha256
    assert lite.validation["cut-outs on held-out backgrounds"]["iou"] == 0.905
    paper = catalog.get_model("paper")
    assert (paper.config, paper.file, paper.sha256, paper.url) == (PAPER, None, None, None)
    with pytest.raises(ValueError, match="unknown model 'nope'; known: paper, "):
        catalog.get_model("nope")
    with pytest.raises(ValueError, match="unknown model config 'nope'"):
        catalog.get_config("nope")


def test_a_registered_model_and_a_cached_file_share_the_one_lookup(cache: Path, tiny_weights: Path) -> None:
    from conftest import TINY

    shutil.copy(tiny_weights, cache / "tiny.safetensors")
    assert {e.name: e.model for e in catalog.list_models()}["tiny"] is None  # a user's file, no record
    record = catalog.register_model(catalog.NamedModel(TINY.name, TINY, file="tiny.safetensors"))
    try:
        assert catalog.get_config("tiny") is TINY
        assert {e.name: e.model for e in catalog.list_models()}["tiny"] is record
        assert locate("tiny").path == cache / "tiny.safetensors"
        catalog.register_model(catalog.NamedModel(TINY.name, TINY, file="tiny.safetensors", sha256="0" * 64))
        env = {"COLUMNS": "200", "MATTE_HOME": str(cache.parent)}
        listed = CliRunner().invoke(app, ["models", "--verbose"], env=env)
        assert "(not the released tiny: 0000000000000000)" in listed.output
    finally:
        del catalog._MODELS["tiny"]
    with pytest.raises(ValueError, match="names must match"):
        catalog.NamedModel("other", TINY)


def test_the_old_config_path_still_looks_names_up() -> None:
    import mattecli.config as old
    from mattecli.models.config import LITE

    assert old.get_config("lite") is LITE and old.LITE is LITE and "lite" in old.config_names()
