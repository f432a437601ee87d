"""The committed example outputs are what the bundled default model produces today.

The README shows ``examples/*.matte.png``; when the shipped weights change, these files must be regenerated
(``matte image examples/astronaut.jpg examples/grace_hopper.jpg --preview --overwrite``) or this fails.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mattecli.inference import Matter

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def matter() -> Matter:
    return Matter("default", device="cpu")


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_committed_example_matches_the_bundled_model(matter: Matter, name: str) -> None:
    committed = cv2.imread(str(EXAMPLES / f"{name}.matte.png"), cv2.IMREAD_UNCHANGED)
    assert committed is not None and committed.shape[2] == 4, "examples hold RGBA PNGs"
    alpha = matter.matte(EXAMPLES / f"{name}.jpg").alpha
    assert alpha.shape == committed.shape[:2]
    expected = committed[..., 3].astype(np.float32) / 255.0
    # CPUs differ in the last bits of float arithmetic; a different model differs by far more than this.
    assert float(np.abs(alpha - expected).mean()) < 2 / 255
    foreground, expected_foreground = alpha > 0.5, expected > 0.5
    iou = (foreground & expected_foreground).sum() / (foreground | expected_foreground).sum()
    assert iou > 0.99
    # The bundled model finds the person: a real share of the picture is foreground, not all of it.
    assert 0.1 < float(foreground.mean()) < 0.9
