"""Pixel values between integer codes (uint8, uint16) and float32 in [0, 1]: the one conversion each way.

Every reader, writer, compositor and the inference API convert through these functions, so a strip of a
picture converts to exactly the numbers the whole picture does, and every uint8 that mattecli writes is
rounded the same way: to nearest, ties to even (``np.rint``), after clipping to [0, 1] (the data side
rounds ties up, a documented option of the same function). Big arrays are
converted a strip of rows at a time (:data:`STRIP_PIXELS`): a whole 100-megapixel matte would need several
float temporaries of 400 MB each on the way.
"""

from __future__ import annotations

import numpy as np

STRIP_PIXELS = 1 << 20
"""Pixels per strip when converting big arrays (:func:`to_uint8`, :func:`to_uint16`): float temporaries stay
at a few MB instead of several times the image."""


def unit_float(values: np.ndarray) -> np.ndarray:
    """Integer codes as float32 in [0, 1]: uint8 over 255, uint16 over 65535 (multiplied by the float32
    reciprocal, the one conversion every reader and strip uses, so pieces match wholes bit for bit).
    float32 passes through unchanged (not copied), other floats are cast; other dtypes are a ValueError."""
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return _to_unit(values, 255.0)
    if values.dtype == np.uint16:
        return _to_unit(values, 65535.0)
    if np.issubdtype(values.dtype, np.floating):
        return values.astype(np.float32, copy=False)
    raise ValueError(f"expected uint8, uint16 or float pixels, got {values.dtype}")


def _to_unit(values: np.ndarray, scale: float) -> np.ndarray:
    """Integer codes to contiguous float32 in [0, 1] (a new array)."""
    result = values.astype(np.float32)
    result *= np.float32(1.0 / scale)
    return result


def to_uint8(values: np.ndarray, *, half_up: bool = False) -> np.ndarray:
    """Float in [0, 1] to uint8 with rounding and clipping (uint8 passes through, uint16 is scaled).

    Rounded to nearest with ties to even (``np.rint``), as every image mattecli writes for users is;
    ``half_up=True`` rounds ties up instead (``floor(x * 255 + 0.5)``), which is what the data packer and
    the training data have always used: halving an 8-bit matte with area averaging makes exact halves on
    about one pixel in ten, so the other rule would change every repacked dataset. The two differ only on
    values whose scaled float is exactly k + 0.5 (130 of the float32 values in [0, 1]).

    Converted a strip of rows at a time: a whole 100-megapixel matte would need three float temporaries of
    400 MB each on the way."""
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.uint16:
        return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    out = np.empty(values.shape, np.uint8)
    for rows in row_strips(values):
        scaled = np.clip(values[rows], 0.0, 1.0) * 255.0
        out[rows] = np.floor(scaled + 0.5) if half_up else np.rint(scaled)
    return out


def to_uint16(values: np.ndarray) -> np.ndarray:
    """Float in [0, 1] to uint16 with rounding and clipping (uint16 passes through, uint8 is scaled)."""
    values = np.asarray(values)
    if values.dtype == np.uint16:
        return values
    if values.dtype == np.uint8:
        return values.astype(np.uint16) * 257
    out = np.empty(values.shape, np.uint16)
    for rows in row_strips(values):
        out[rows] = np.rint(np.clip(values[rows], 0.0, 1.0).astype(np.float64) * 65535.0)
    return out


def row_strips(values: np.ndarray) -> list[slice]:
    """Row ranges of about :data:`STRIP_PIXELS` elements each (the whole array when it has no rows)."""
    if values.ndim == 0 or len(values) == 0:
        return [slice(None)]
    rows = max(1, STRIP_PIXELS // max(1, values.size // len(values)))
    return [slice(top, top + rows) for top in range(0, len(values), rows)]
