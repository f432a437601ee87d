"""Video matting: ``matte video`` and its Python API.

Example::

    from mattecli import Matter
    from mattecli.video import matte_video
    report = matte_video("clip.mp4", matter=Matter())              # clip.matte.mov, ProRes 4444 + alpha
    report = matte_video("clip.mp4", "out.mp4", bg="beach.jpg")      # H.264 composite, audio kept
    print(report.frames, report.frames_per_second, report.flicker)

Modules: :mod:`~mattecli.video.ffmpeg` (probing, frame pipes), :mod:`~mattecli.video.formats` (codecs and
containers), :mod:`~mattecli.video.temporal` (flicker measure and smoothing),
:mod:`~mattecli.video.pipeline` (the streaming pipeline).
"""

from __future__ import annotations

from mattecli.video.ffmpeg import VideoInfo, ffmpeg_exe, probe
from mattecli.video.formats import CODECS, OutputFormat, resolve_output
from mattecli.video.pipeline import (
    FrameFn,
    VideoPlan,
    VideoReport,
    as_frame_fn,
    matte_video,
    plan_video,
    run_plan,
)
from mattecli.video.temporal import FlickerStats, TemporalFilter, still_edge_flicker

__all__ = [
    "CODECS",
    "FlickerStats",
    "FrameFn",
    "OutputFormat",
    "TemporalFilter",
    "VideoInfo",
    "VideoPlan",
    "VideoReport",
    "as_frame_fn",
    "ffmpeg_exe",
    "matte_video",
    "plan_video",
    "probe",
    "resolve_output",
    "run_plan",
    "still_edge_flicker",
]
