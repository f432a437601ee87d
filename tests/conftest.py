"""Shared fixtures: tiny model configurations and weights files that tests make themselves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from mattecli.models.config import LITE, ModelConfig

if TYPE_CHECKING:
    import numpy as np


def pytest_configure(config) -> None:
    """With MATTE_REQUIRE_INSTALLED set (CI does), refuse to test the source tree instead of the wheel."""
    import os

    import mattecli

    if os.environ.get("MATTE_REQUIRE_INSTALLED"):
        source = Path(__file__).resolve().parent.parent / "mattecli"
        if Path(mattecli.__file__).resolve().parent == source:
            raise pytest.UsageError(f"MATTE_REQUIRE_INSTALLED: mattecli was imported from {source}")
        # Child processes (`python -m mattecli ...`) run with the checkout as their working folder, which
        # `-m` puts first on sys.path: without this they tested the source tree, not the wheel (Python 3.11+).
        os.environ["PYTHONSAFEPATH"] = "1"


SOURCE_TREE = Path(__file__).resolve().parent.parent


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process that runs mattecli (``python -m mattecli``, torchrun): it
    imports the mattecli that these tests import. That package's folder goes first on PYTHONPATH, and the
    source tree comes off it when it is not that folder (MATTE_REQUIRE_INSTALLED: the wheel under test).
    Run such a child with a ``cwd`` outside the source tree too, or ``-m`` finds the checkout first."""
    import os

    import mattecli

    home = Path(mattecli.__file__).resolve().parent.parent
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths = [p for p in paths if Path(p).resolve() not in (home, SOURCE_TREE)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(home), *paths]), **extra}


def _drop_permission_overrides() -> None:
    """In a child before exec: take CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH out of the bounding set, so
    that even root meets folder permissions (a root process gets its bounding set back at exec)."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP failed")


def run_as_unprivileged(command: list[str], **kwargs):
    """``subprocess.run(command)``; as root, with file permissions enforced (see above), so that a test of
    a read-only folder means the same for root as for anyone. Skips where that cannot be done."""
    import os
    import subprocess
    import sys

    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not sys.platform.startswith("linux"):
            pytest.skip("root, and no way to drop its permission overrides here")
        kwargs["preexec_fn"] = _drop_permission_overrides
    return subprocess.run(command, **kwargs)


#: A Lite0-encoder network narrow enough to run 64 x 64 inputs in milliseconds.
TINY = LITE.replace(
    name="tiny", decoder_channels=8, fusion_channels=(8, 8), fusion_image_channels=8, default_size=64
)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    # Two cores are shared by everything on the test machine; one thread per test keeps runs predictable.
    torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> ModelConfig:
    return TINY


def make_tiny_net(seed: int = 0, spread: float = 0.0):
    """A tiny random LateFusionNet in eval mode. ``spread`` > 0 scales the last layers' weights so the
    untrained network produces mattes with structure rather than a near-constant 0.5."""
    from mattecli.models import LateFusionNet

    torch.manual_seed(seed)
    net = LateFusionNet(TINY)
    if spread:
        with torch.no_grad():
            for module in (net.fg_decoder.fpn[-1].side, net.bg_decoder.fpn[-1].side, net.fusion.head):
                module.weight.mul_(spread)
    return net.eval()


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    """A tiny model saved as a weights file, for CLI tests that take ``--model PATH``."""
    from mattecli.modelfiles.weights import save_weights

    return save_weights(make_tiny_net(spread=20.0), tmp_path / "tiny.safetensors", {"purpose": "tests"})


def synthetic_scene(height: int, width: int, seed: int = 0):
    """A red-ish rectangle (alpha 1, soft 6 px edge) on a textured blue-green background.

    Returns (image H x W x 3 float32, alpha H x W float32)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    top, bottom, left, right = height * 0.2, height * 0.8, width * 0.25, width * 0.75
    inside = np.minimum.reduce([ys - top, bottom - ys, xs - left, right - xs])
    alpha = np.clip(inside / 6.0 + 0.5, 0.0, 1.0).astype(np.float32)
    background = np.array([0.1, 0.5, 0.6], np.float32) + 0.2 * rng.random(
        (height, width, 3), dtype=np.float32
    )
    foreground = np.array([0.9, 0.3, 0.2], np.float32) + 0.1 * rng.random(
        (height, width, 3), dtype=np.float32
    )
    image = alpha[..., None] * foreground + (1 - alpha[..., None]) * background
    return np.clip(image, 0, 1).astype(np.float32), alpha


_TRAINED: dict[int, object] = {}


def trained_tiny_net(steps: int = 40):
    """A tiny network fitted for a few Adam steps to synthetic scenes, so it produces real structure
    (red things are foreground) instead of the near-constant output of a random network."""
    if steps in _TRAINED:
        return _TRAINED[steps]
    import numpy as np

    torch.manual_seed(0)
    net = make_tiny_net()
    net.train()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    scenes = [synthetic_scene(64, 64 + 32 * (i % 2), seed=i) for i in range(4)]
    for step in range(steps):
        image, alpha = scenes[step % 4]
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        target = torch.from_numpy(alpha)[None, None]
        out = net(x)
        loss = torch.nn.functional.binary_cross_entropy(out.alpha, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    _TRAINED[steps] = net
    return net


@pytest.fixture
def trained_weights(tmp_path: Path) -> Path:
    """The fitted tiny network as a weights file, for CLI tests."""
    from mattecli.modelfiles.weights import save_weights

    return save_weights(trained_tiny_net(), tmp_path / "trained.safetensors", {"purpose": "tests"})


def pixel_pattern(height: int = 6, width: int = 10, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Small image whose every pixel differs, so any flip, rotation or channel swap shows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)


def jpeg_blocks(height: int = 32, width: int = 48) -> np.ndarray:
    """Flat 16 x 16 blocks (one JPEG MCU each) of distinct colours: survive JPEG nearly unchanged."""
    import numpy as np

    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, size=(height // 16, width // 16, 3), dtype=np.uint8)
    return np.repeat(np.repeat(colours, 16, axis=0), 16, axis=1)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache folder, with MATTE_HOME pointing at it."""
    monkeypatch.setenv("MATTE_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "models"
    folder.mkdir(parents=True)
    return folder


#: A Python program that runs `matte serve` with the web stack (the serve extra) unimportable; an argument
#: given to it becomes sys.prefix (to pose as a pipx venv).
SERVE_WITHOUT_WEB_STACK = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('starlette', 'uvicorn', 'python_multipart'):\n"
    "            raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "if len(sys.argv) > 1: sys.prefix = sys.argv[1]\n"
    "sys.argv = ['matte', 'serve']\n"
    "from mattecli.cli.app import main\n"
    "main()\n"
)
