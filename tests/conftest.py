"""Shared fixtures: tiny model configurations and weights files that tests make themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mattecli.config import LITE, ModelConfig

#: A Lite0-encoder network narrow enough to run 64 x 64 inputs in milliseconds.
TINY = LITE.replace(name="tiny", decoder_channels=8, fusion_channels=(8, 8), fusion_image_channels=8, default_size=64)


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
    from mattecli.weights import save_weights

    return save_weights(make_tiny_net(spread=20.0), tmp_path / "tiny.safetensors", {"purpose": "tests"})
