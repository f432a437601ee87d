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
