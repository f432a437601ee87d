"""Pixel value conversion (mattecli.image.conversion): strips give the whole-array result."""

from __future__ import annotations

import numpy as np
import pytest

from mattecli.image import conversion


def test_unit_float_and_to_uint8_in_strips_match_whole_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(-0.2, 1.2, (50, 9)).astype(np.float32)
    values[0, :4] = [0.5 / 255, 1.5 / 255, 254.5 / 255, np.float32(0.5)]
    whole8, whole16 = np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8), conversion.to_uint16(values)
    codes = rng.integers(0, 256, (50, 9, 3), dtype=np.uint8)
    monkeypatch.setattr(conversion, "STRIP_PIXELS", 9 * 4)  # 4-row strips
    np.testing.assert_array_equal(conversion.to_uint8(values), whole8)
    np.testing.assert_array_equal(conversion.to_uint16(values), whole16)
    np.testing.assert_array_equal(
        conversion.unit_float(codes), codes.astype(np.float32) * np.float32(1 / 255)
    )
    floats = codes.astype(np.float32) / 255
    assert conversion.unit_float(floats) is floats  # float32 passes through
    with pytest.raises(ValueError, match="int32"):
        conversion.unit_float(codes.astype(np.int32))


def _ties() -> np.ndarray:
    """float32 values whose scaled value is exactly an even k + 0.5: the two rounding rules disagree."""
    candidates = ((np.arange(255) + 0.5) / 255).astype(np.float32)
    scaled = candidates * np.float32(255)
    ties = candidates[(scaled % 1 == 0.5) & (np.floor(scaled) % 2 == 0)]
    assert len(ties) > 100
    return ties


def test_to_uint8_rounds_ties_to_even_or_up_as_asked() -> None:
    ties = _ties()
    even = conversion.to_uint8(ties)
    np.testing.assert_array_equal(even, np.floor(ties * np.float32(255)).astype(np.uint8))  # k + 0.5 -> k
    np.testing.assert_array_equal(conversion.to_uint8(ties, half_up=True), even + 1)
    # half_up is exactly the data side's former np.clip(x * 255 + 0.5, 0, 255).astype(uint8), in and out
    # of range.
    rng = np.random.default_rng(3)
    for values in (rng.uniform(-0.3, 1.3, (64, 50)).astype(np.float32), rng.uniform(-0.3, 1.3, (64, 50))):
        values[0, : len(ties[:40])] = ties[:40]
        former = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(conversion.to_uint8(values, half_up=True), former)
    codes = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(
        conversion.to_uint8(codes), (codes.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    )
