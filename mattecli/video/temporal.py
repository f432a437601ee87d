"""Temporal stability: measuring and reducing matte flicker on still parts of a clip.

A single-image model mattes each frame on its own, so tiny input changes (sensor noise, compression)
move soft edges back and forth from frame to frame even where nothing moves: the edge "boils". We
measure that as the *still-edge flicker*: the mean absolute change of alpha between consecutive frames,
over pixels whose input did not change and whose alpha is soft (strictly between 0.02 and 0.98) in either
frame. Pixels that are solidly in or out have nothing to flicker and would only dilute the number.

:class:`TemporalFilter` reduces it with a motion-gated running average: where the input is still, the
new alpha is blended with the previous output (weight ``strength``); where the input moved, the new alpha
is taken as it is, so moving edges are not smeared. Motion is judged on a downscaled, slightly blurred
grey image (cheap, and insensitive to sensor grain), dilated a little so that the border of a moving
object counts as moving too.

On a synthetic clip with camera grain (noise of 3 grey levels, a still and a moving shape, a per-frame
colour key as the matter), strength 0.5 removes 55 % of the still-edge flicker and 0.8 removes 82 %,
while the matte inside the moving shape's path stays within 0.001 of the unsmoothed one on average
(``benchmarks/bench_video.py --only flicker``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mattecli.certainty import SOFT_HIGH, SOFT_LOW
from mattecli.video.limits import check_strength

#: Grey-level change (0..255, on the downscaled image) below which a pixel counts as still ...
STILL_LEVEL = 2.0
#: ... and above which it counts as fully moving; in between the smoothing fades out linearly.
MOTION_LEVEL = 8.0
#: Motion is judged on an image with at most this long side ...
ANALYSIS_SIZE = 320
#: ... after a box blur of this size, which averages grain away but not the change at a moving edge.
ANALYSIS_BLUR = 3


def _analysis_factor(height: int, width: int) -> int:
    return max(1, round(max(height, width) / ANALYSIS_SIZE))


def _shrink(array: np.ndarray, factor: int) -> np.ndarray:
    """Area-average by an integer factor, as float32 (uint8 frames are shrunk before converting)."""
    if factor > 1:
        import cv2

        height, width = array.shape[:2]
        size = (max(1, width // factor), max(1, height // factor))
        array = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    return array.astype(np.float32, copy=False)


def _enlarge(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if small.shape == shape:
        return small
    import cv2

    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def analysis_grey(frame: np.ndarray, factor: int) -> np.ndarray:
    """The image motion is judged on: shrunk by ``factor``, grey, box-blurred."""
    import cv2

    return cv2.blur(_shrink(frame, factor).mean(axis=-1), (ANALYSIS_BLUR, ANALYSIS_BLUR))


def motion_map(previous_grey: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """0 where the analysis image is still, 1 where it clearly moved, dilated by one pixel."""
    import cv2

    change = np.abs(grey - previous_grey)
    motion = np.clip((change - STILL_LEVEL) / (MOTION_LEVEL - STILL_LEVEL), 0.0, 1.0)
    return cv2.dilate(motion, np.ones((3, 3), np.uint8))


def _sample(alpha: np.ndarray, factor: int, shape: tuple[int, ...]) -> np.ndarray:
    """Every ``factor``-th pixel of a matte, at the analysis image's size. Sampling rather than
    averaging keeps the per-pixel flicker that the measure is about."""
    return alpha[::factor, ::factor][: shape[0], : shape[1]]


@dataclass
class FlickerStats:
    """Still-edge flicker of the model's mattes (``raw``) and of the written ones (``smoothed``), and
    how far the written matte departs from the model's where the input moves (0 = no smearing)."""

    raw: float
    smoothed: float
    motion_deviation: float
    still_pixels: int
    moving_pixels: int


class TemporalFilter:
    """Motion-gated exponential smoothing of a clip's mattes, in order, with flicker statistics.

    Args:
        strength: Weight of the previous output where the input is still, from 0 to
            :data:`~mattecli.video.limits.MAX_STRENGTH` (:func:`check_strength`). 0 only measures; 0.6
            averages over about four frames, which removes most boiling while a still edge that really
            changes (a slow fade, a late correction) follows within a few frames.
    """

    def __init__(self, strength: float = 0.0) -> None:
        self.strength = check_strength(strength)
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._sums = np.zeros(3)  # raw flicker, smoothed flicker, motion deviation
        self._still = 0
        self._moving = 0

    def step(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The written alpha for the next frame (H x W x 3 uint8 input, H x W float alpha)."""
        factor = _analysis_factor(*alpha.shape)
        grey = analysis_grey(frame, factor)
        raw_small = _sample(alpha, factor, grey.shape)
        out, out_small = alpha, raw_small
        if self._previous is not None:
            previous_grey, previous_raw, previous_out_small, previous_out = self._previous
            motion = motion_map(previous_grey, grey)
            if self.strength > 0.0:
                weight = self.strength * (1.0 - _enlarge(motion, alpha.shape))
                out = alpha + weight * (previous_out - alpha)
                out_small = _sample(out, factor, grey.shape)
            self._measure(motion, (previous_raw, raw_small), (previous_out_small, out_small))
        self._previous = (grey, raw_small, out_small, out)
        return out

    def _measure(self, motion: np.ndarray, raw: tuple, out: tuple) -> None:
        soft = ((raw[0] > SOFT_LOW) & (raw[0] < SOFT_HIGH)) | ((raw[1] > SOFT_LOW) & (raw[1] < SOFT_HIGH))
        still = (motion == 0) & soft
        moving = motion >= 1
        self._sums += (
            np.abs(raw[1] - raw[0])[still].sum(),
            np.abs(out[1] - out[0])[still].sum(),
            np.abs(out[1] - raw[1])[moving].sum(),
        )
        self._still += int(still.sum())
        self._moving += int(moving.sum())

    def stats(self) -> FlickerStats:
        """Averages so far (0 where no pixel qualified)."""
        raw, smoothed, deviation = self._sums
        still, moving = max(self._still, 1), max(self._moving, 1)
        return FlickerStats(
            float(raw / still), float(smoothed / still), float(deviation / moving), self._still, self._moving
        )


def still_edge_flicker(frames: np.ndarray, alphas: np.ndarray) -> float:
    """Still-edge flicker of a whole sequence (N x H x W x 3 uint8 frames, N x H x W alphas)."""
    meter = TemporalFilter(0.0)
    for frame, alpha in zip(frames, alphas, strict=True):
        meter.step(frame, alpha)
    return meter.stats().raw
