"""Video matting: ``matte video`` and its Python API.

Example::

    from mattecli import Matter
    from mattecli.video import matte_video
    report = matte_video("clip.mp4", matter=Matter())              # clip.matte.mov, ProRes 4444 + alpha
    report = matte_video("clip.mp4", "out.mp4", bg="beach.jpg")      # H.264 composite, audio kept
    print(report.frames, report.frames_per_second, report.flicker)

Modules: :mod:`~mattecli.video.formats` (the codec table, containers), :mod:`~mattecli.video.ffmpeg`
(probing, the reading and writing ffmpeg processes), :mod:`~mattecli.video.planning` (output, segment,
timing: everything checked before the model loads), :mod:`~mattecli.video.temporal` (flicker measure and
smoothing; :mod:`~mattecli.video.limits` holds its strength's default and bounds, numpy-free), :mod:`~mattecli.video.pixels` (the pixels the encoder gets), :mod:`~mattecli.video.pipeline`
(the streaming pipeline).

The names below are imported on first use (PEP 562), so that the command line can read the codec table
for its help without loading numpy.
"""

from __future__ import annotations

from mattecli.lazy_exports import lazy_exports

_EXPORTS = {
    "CODECS": "formats",
    "CODEC_TABLE": "formats",
    "Codec": "formats",
    "OutputFormat": "formats",
    "resolve_output": "formats",
    "VideoInfo": "ffmpeg",
    "ffmpeg_exe": "ffmpeg",
    "probe": "ffmpeg",
    "VideoPlan": "planning",
    "check_video_options": "planning",
    "parse_time": "planning",
    "plan_video": "planning",
    "FrameFn": "pipeline",
    "ProgressFn": "pipeline",
    "VideoReport": "pipeline",
    "as_frame_fn": "pipeline",
    "matte_video": "pipeline",
    "run_plan": "pipeline",
    "FlickerStats": "temporal",
    "TemporalFilter": "temporal",
    "still_edge_flicker": "temporal",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
