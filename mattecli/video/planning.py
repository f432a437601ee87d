"""Everything decided before the model is loaded: the output, the part of the clip, the timing.

Bad inputs and options fail here, in a fraction of a second, with one line naming the file.

Timing: the output has exactly the decoded frames, at the input's frame rate. Variable-frame-rate
sources become constant-rate at their average rate (frame count / duration), which keeps the frame count,
the duration and the audio sync at both ends while evening out the spacing in between.

The expected frame count (duration x rate, or counted for variable rates) drives the progress bar and
tells a damaged clip from a complete one (:func:`frames_missing`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from mattecli.atomic import refuse_a_file_in_the_way
from mattecli.errors import MatteError, UsageError
from mattecli.video.ffmpeg import VideoInfo, count_frames, probe
from mattecli.video.formats import OutputFormat, resolve_output
from mattecli.video.limits import check_strength

if TYPE_CHECKING:
    from mattecli.compositing import Backdrop

#: Background files with these endings are played as videos (looped or cut to the clip's length).
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ts", ".mts", ".wmv"}
)


@dataclass(frozen=True)
class Background:
    """``--bg`` of a clip, read once while planning (the pipeline uses what was read here): ``still`` a
    colour or a decoded image, or ``video`` a background video, probed (played looped or cut to length)."""

    spec: str
    still: Backdrop | None = None
    video: VideoInfo | None = None


def read_video_background(spec: str, option: str | None = None) -> Background:
    """A colour, an image or a video file; raises a one-line MatteError that names ``option`` (``"--bg"``
    on the command line; None words it for the Python API)."""
    path = Path(spec)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        try:
            return Background(spec, video=probe(path))  # one-line error for a missing or broken video
        except MatteError as error:
            if option is None:
                raise
            raise MatteError(f"{error} ({option})") from None
    from mattecli.compositing import read_background

    return Background(spec, still=read_background(spec, option))  # a colour, or an image that can be read


@dataclass(frozen=True)
class VideoPlan:
    """Everything decided before the model is loaded: bad inputs fail here, in a fraction of a second."""

    info: VideoInfo
    output: OutputFormat
    start: float | None
    end: float | None
    frame_rate: Fraction
    expected_frames: int | None
    background: Background | None
    overwrite: bool

    @property
    def trim_args(self) -> list[str]:
        return trim_args(self.start, self.end)


def plan_video(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    bg: str | None = None,
    codec: str | None = None,
    start: float | str | None = None,
    end: float | str | None = None,
    overwrite: bool = False,
    bg_option: str | None = None,
) -> VideoPlan:
    """Probe the input, choose the output and check that it may be written; raises MatteError.
    ``bg_option``: what messages about ``bg`` call it (``"--bg"`` on the command line)."""
    source = Path(source)
    info = probe(source)
    target = Path(output) if output is not None else None
    fmt = resolve_output(source, target, codec, bg is not None, info.width)
    if fmt.path.resolve() == source.resolve():
        raise MatteError("output would replace the input", fmt.path)
    refuse_a_file_in_the_way(fmt.path)  # -o clip.mp4/frames/: before the model loads
    if fmt.path.exists() and not overwrite:
        raise MatteError("exists (use --overwrite)", fmt.path)
    background = read_video_background(bg, bg_option) if bg is not None else None
    start_s, end_s = _segment(info, parse_time(start, "--start"), parse_time(end, "--end"))
    rate, frames = _timing(info, start_s, end_s)
    return VideoPlan(info, fmt, start_s, end_s, rate, frames, background, overwrite)


def check_video_options(batch_size: int, temporal: float) -> None:
    """The run's own options (the command line checks them before loading the model, run_plan again)."""
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    check_strength(temporal)


def parse_time(value: float | str | None, option: str) -> float | None:
    """Seconds from a number or ``[[hh:]mm:]ss[.ms]``; None stays None."""
    if value is None or isinstance(value, (int, float)):
        seconds = value
    elif re.fullmatch(r"\s*\d+(\.\d*)?\s*", value):
        seconds = float(value)
    elif re.fullmatch(r"\s*(\d+:){1,2}\d+(\.\d*)?\s*", value):
        seconds = 0.0
        for part in value.strip().split(":"):
            seconds = seconds * 60 + float(part)
    else:
        raise UsageError(f"{option} must be seconds or [[hh:]mm:]ss, got {value!r}")
    if seconds is not None and seconds < 0:
        raise UsageError(f"{option} must not be negative, got {value!r}")
    return None if seconds is None else float(seconds)


def _segment(info: VideoInfo, start: float | None, end: float | None) -> tuple[float | None, float | None]:
    if start is not None and end is not None and end <= start:
        raise MatteError(f"--end ({end:g} s) must come after --start ({start:g} s)", info.path)
    if start is not None and info.duration is not None and start >= info.duration:
        raise MatteError(f"--start {start:g} s is past the end of the clip ({info.duration:g} s)", info.path)
    if end is not None and info.duration is not None and end >= info.duration:
        end = None  # up to the end anyway
    return (start or None), end


def trim_args(start: float | None, end: float | None) -> list[str]:
    """Input options selecting part of a clip (accurate seeking: decoding starts at the keyframe
    before ``start`` and the frames before it are dropped)."""
    args = []
    if start is not None:
        args += ["-ss", f"{start:.6f}"]
    if end is not None:
        args += ["-to", f"{end:.6f}"]
    return args


def _timing(info: VideoInfo, start: float | None, end: float | None) -> tuple[Fraction, int | None]:
    """Output frame rate and expected frame count.

    Constant-rate sources: the stream's own (average) rate. Variable-rate ones: one decoding pass
    counts the frames and measures the video's duration, and the rate is count / duration, so that
    both match the input. Matroska / WebM print a nominal rate whatever the timestamps do, so they are
    counted too, and keep their printed rate where the count agrees with it.
    """
    if not info.variable_frame_rate:
        stop = end if end is not None else info.duration
        duration = None if stop is None else max(0.0, stop - (start or 0.0))
        expected = round(duration * info.fps) if duration else None
        if not info.rate_is_nominal:
            return info.fps, expected
    frames, duration = count_frames(info.path, info, trim_args(start, end))
    if frames == 0:
        raise MatteError("no video frames could be decoded", info.path)
    if not info.variable_frame_rate and (
        duration <= 0 or abs(frames / duration - info.fps) <= info.fps / 500
    ):
        # A constant-rate Matroska file: its exact rate (30000/1001, not 29.97), and the frame count its
        # duration promises, so that a truncated file is still found (frames_missing).
        return info.fps, expected
    if duration <= 0:
        return info.fps or info.tbr or Fraction(25), frames
    return (frames / duration).limit_denominator(1001), frames


def frames_missing(expected: int | None, decoded: int) -> bool:
    """Whether ``decoded`` falls short of ``expected`` (duration x rate) by more than the rounding of
    that product explains: two frames or 1 %, whichever is more."""
    return expected is not None and decoded < expected - max(2, math.ceil(expected / 100))


def partial_message(decoded: int, expected: int | None) -> str:
    """What to say about a clip that decoded in part (an error, or a warning with --allow-partial)."""
    return f"only {decoded} of {expected} frames could be decoded (the file is damaged or truncated)"
