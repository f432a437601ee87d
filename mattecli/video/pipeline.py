"""Streaming video matting: decode, matte in batches and encode at the same time.

Three workers run concurrently, joined by two bounded queues::

    reader thread  --(batches of frames)-->  model (calling thread)  --(mattes)-->  writer thread
    ffmpeg decode                            frame_fn / Matter                     smoothing, compositing,
                                                                                   ffmpeg encode

Each queue holds at most ``QUEUE_BATCHES`` batches, so memory depends on the batch size and frame size,
never on the clip's length; the reader decodes the next batches while the model works, and the writer
encodes the previous ones, so the model only waits for I/O when I/O is the slower side. The model runs
on the calling thread, which is where Python delivers Ctrl-C (and, from the command line, SIGTERM and
SIGHUP as :class:`~mattecli.cli.common.Terminated`): every worker and ffmpeg process is stopped then.

Rotated (phone) clips are decoded upright and written upright, so they display the same everywhere, PNG
viewers included. Planning (output, segment, timing) is :mod:`mattecli.video.planning`.

Nothing is written under the final name until everything succeeded: files go through
:func:`mattecli.atomic.atomic_output`, PNG sequences through :func:`mattecli.atomic.atomic_folder`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from mattecli.atomic import atomic_folder, atomic_output
from mattecli.errors import MatteError
from mattecli.image.conversion import unit_float
from mattecli.video.ffmpeg import FrameReader, FrameWriter
from mattecli.video.limits import DEFAULT_STRENGTH
from mattecli.video.pixels import check_mattes, encoder_pixels
from mattecli.video.planning import (
    VideoPlan,
    check_video_options,
    frames_missing,
    partial_message,
    plan_video,
)
from mattecli.video.temporal import FlickerStats, TemporalFilter

FrameFn = Callable[[np.ndarray], tuple[np.ndarray, "np.ndarray | None"]]
"""N x H x W x 3 uint8 RGB -> (alpha N x H x W float in [0, 1], foreground N x H x W x 3 float or None)."""
ProgressFn = Callable[[int, "int | None"], None]
"""Called after each written batch with (frames written, frames expected or None)."""

#: Temporal smoothing strength used unless the caller says otherwise (see mattecli.video.temporal).
DEFAULT_TEMPORAL = DEFAULT_STRENGTH
#: Batches each queue may hold. Two keeps the model fed while bounding memory to a few batches.
QUEUE_BATCHES = 2


@dataclass
class VideoReport:
    """What :func:`matte_video` did. ``flicker`` holds the still-edge flicker before and after temporal
    smoothing (equal when smoothing is off). ``partial`` says that the clip was damaged and only its
    ``frames`` of ``expected_frames`` were written (``allow_partial``). ``width`` and ``height`` are the
    written frames'; ``padded_from`` is the source's size where the codec needed even sides and the
    frames were padded by a pixel (the edge repeated), else None. ``sar`` is the pixel aspect ratio
    written (the source's)."""

    source: Path
    output: Path
    codec: str
    frames: int
    width: int
    height: int
    frame_rate: Fraction
    audio: bool
    seconds: float
    flicker: FlickerStats
    expected_frames: int | None = None
    partial: bool = False
    padded_from: tuple[int, int] | None = None
    sar: Fraction = Fraction(1)

    @property
    def duration(self) -> float:
        """Length of the written video in seconds."""
        return self.frames / float(self.frame_rate)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def matte_video(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    matter: Any = None,
    *,
    bg: str | None = None,
    codec: str | None = None,
    batch_size: int = 4,
    start: float | str | None = None,
    end: float | str | None = None,
    temporal: float = DEFAULT_TEMPORAL,
    decontaminate: bool = True,
    overwrite: bool = False,
    allow_partial: bool = False,
    progress: ProgressFn | None = None,
) -> VideoReport:
    """Matte a whole clip; see the module docstring for how it streams.

    Args:
        source: Input video file.
        output: Output file or folder (PNG frames); default ``clip.matte.mov`` next to the input
            (``clip.matte.mp4`` with ``bg``).
        matter: A :class:`~mattecli.inference.Matter`, any ``frame_fn`` (see :data:`FrameFn`), or None
            for the default model.
        bg: Composite over a colour (name or #hex), an image, or a video (looped or cut to length).
        codec: One of :data:`~mattecli.video.formats.CODECS`; default from the output's extension.
        batch_size: Frames per model call.
        start, end: Part of the clip, in seconds or [[hh:]mm:]ss.ms.
        temporal: Temporal smoothing strength from 0 (off; flicker is measured either way) to 0.9
            (:func:`~mattecli.video.limits.check_strength`). The default 0.5 halves the flicker of
            still edges and leaves moving ones alone.
        decontaminate: Clean background colour out of soft edges (Matter only).
        overwrite: Replace an existing output.
        allow_partial: Write a damaged clip's frames that decode (the report says ``partial``) instead
            of failing when fewer arrive than the container promises.
        progress: Called as ``progress(done, total)`` after each batch (``mattecli.cli.video`` draws
            a progress bar with it); None for nothing.
    """
    plan = plan_video(source, output, bg=bg, codec=codec, start=start, end=end, overwrite=overwrite)
    return run_plan(
        plan,
        as_frame_fn(matter, decontaminate),
        batch_size=batch_size,
        temporal=temporal,
        allow_partial=allow_partial,
        progress=progress,
    )


def as_frame_fn(matter: Any, decontaminate: bool = True) -> FrameFn:
    """A frame function from a Matter (or anything with ``matte_frames``), a callable, or None."""
    if matter is None:
        from mattecli.inference import Matter

        matter = Matter()
    if hasattr(matter, "matte_frames"):
        return lambda frames: matter.matte_frames(frames, decontaminate=decontaminate)
    if callable(matter):
        return matter
    raise TypeError(f"expected a Matter or a frame function, got {type(matter).__name__}")


def run_plan(
    plan: VideoPlan,
    frame_fn: FrameFn,
    *,
    batch_size: int = 4,
    temporal: float = DEFAULT_TEMPORAL,
    allow_partial: bool = False,
    progress: ProgressFn | None = None,
) -> VideoReport:
    """Run a planned job; the output appears under its final name only if everything succeeded."""
    check_video_options(batch_size, temporal)
    if progress and not callable(progress):
        raise TypeError("progress must be a function (done, total) or None")
    began = time.perf_counter()
    job = _Job(plan, frame_fn, batch_size, TemporalFilter(temporal), progress or None, allow_partial)
    stage = atomic_folder if plan.output.is_sequence else atomic_output  # hidden until complete
    with stage(plan.output.path, overwrite=plan.overwrite) as target:
        frames = job.run(target)
    source_size = (plan.info.width, plan.info.height)
    width, height = plan.output.frame_size(*source_size)
    return VideoReport(
        source=plan.info.path,
        output=plan.output.path,
        codec=plan.output.codec,
        frames=frames,
        width=width,
        height=height,
        frame_rate=plan.frame_rate,
        audio=plan.info.audio_codec is not None and not plan.output.is_sequence,
        seconds=time.perf_counter() - began,
        flicker=job.temporal.stats(),
        expected_frames=plan.expected_frames,
        partial=job.partial,
        padded_from=None if (width, height) == source_size else source_size,
        sar=plan.info.sar,
    )


class _Stopped(Exception):
    """Raised inside a worker when another worker failed or the user interrupted."""


_END = object()


class _Job:
    """One run of the three-stage pipeline (see the module docstring)."""

    def __init__(self, plan, frame_fn, batch_size, temporal, on_progress, allow_partial) -> None:
        self.plan, self.frame_fn, self.batch_size = plan, frame_fn, batch_size
        self.temporal: TemporalFilter = temporal
        self.on_progress: ProgressFn | None = on_progress
        self.allow_partial = allow_partial
        self.stop = threading.Event()
        self.failures: list[BaseException] = []
        self.inbox: queue.Queue = queue.Queue(QUEUE_BATCHES)
        self.outbox: queue.Queue = queue.Queue(QUEUE_BATCHES)
        self.written = 0
        self.partial = False

    def run(self, target: Path) -> int:
        plan, info = self.plan, self.plan.info
        processes: list[FrameReader | FrameWriter | _Background] = []
        threads: list[threading.Thread] = []
        try:
            reader = FrameReader(
                info.path, info.width, info.height, input_args=plan.trim_args, stream=info.stream
            )
            processes.append(reader)
            background = _open_background(plan)
            if background is not None:
                processes.append(background)
            writer = FrameWriter(
                target, plan.output, (info.width, info.height), plan.frame_rate,
                audio_from=info.path, audio_codec=info.audio_codec, input_args=plan.trim_args,
                sar=info.sar,
            )  # fmt: skip
            processes.append(writer)
            threads = [
                threading.Thread(target=self._guard, args=(self._read, reader), daemon=True),
                threading.Thread(target=self._guard, args=(self._write, writer, background), daemon=True),
            ]
            for thread in threads:
                thread.start()
            self._infer()
            self._join(threads)
            self._raise_failure()
            if self.written == 0:
                raise MatteError("no video frames could be decoded in the chosen range", info.path)
            self._check_complete(reader)
            writer.finish()
            return self.written
        except BaseException:
            # Kill the processes first: a worker blocked on a pipe then returns at once.
            self.stop.set()
            for process in processes:
                process.close()
            self._join(threads, timeout=10)
            raise
        finally:
            for process in processes:
                process.close()

    def _check_complete(self, reader: FrameReader) -> None:
        """Refuse a damaged clip (unless ``allow_partial``): fewer frames than the container promises,
        and the decoder complained. The complaint is needed because a clip whose audio outlasts its
        video promises more frames than its video has, and nothing is wrong with it."""
        expected = self.plan.expected_frames
        if not frames_missing(expected, self.written) or not reader.complaint():
            return
        self.partial = True
        if not self.allow_partial:
            message = partial_message(self.written, expected)
            raise MatteError(f"{message}; --allow-partial writes them", self.plan.info.path)

    def _guard(self, work: Callable, *args: Any) -> None:
        """Run a worker; record its failure and stop the others. Failures after a stop are only the
        consequences of it (a killed process, a closed pipe) and are not recorded."""
        try:
            work(*args)
        except _Stopped:
            pass
        except BaseException as exc:
            if not self.stop.is_set():
                self.failures.append(exc)
                self.stop.set()

    def _raise_failure(self) -> None:
        if self.failures:
            raise self.failures[0]

    def _put(self, channel: queue.Queue, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            with contextlib.suppress(queue.Full):
                channel.put(item, timeout=0.1)
                return

    def _get(self, channel: queue.Queue) -> Any:
        while True:
            if self.stop.is_set():
                raise _Stopped
            with contextlib.suppress(queue.Empty):
                return channel.get(timeout=0.1)

    def _join(self, threads: list[threading.Thread], timeout: float | None = None) -> None:
        # Short waits in a loop: a plain join() would not let Ctrl-C through on every platform.
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            while thread.is_alive() and (deadline is None or time.monotonic() < deadline):
                thread.join(0.1)

    # -- the three stages ---------------------------------------------------------------------------

    def _read(self, reader: FrameReader) -> None:
        while (batch := reader.read(self.batch_size)) is not None:
            self._put(self.inbox, batch)
        self._put(self.inbox, _END)

    def _infer(self) -> None:
        try:
            while (frames := self._get(self.inbox)) is not _END:
                alpha, foreground = self.frame_fn(frames)
                self._put(self.outbox, (frames, *check_mattes(frames, alpha, foreground)))
            self._put(self.outbox, _END)
        except _Stopped:
            self._raise_failure()
            raise

    def _write(self, encoder: FrameWriter, background: _Background | None) -> None:
        while (item := self._get(self.outbox)) is not _END:
            frames, alphas, foreground = item
            alphas = np.stack([self.temporal.step(f, a) for f, a in zip(frames, alphas, strict=True)])
            bg = background.take(len(frames)) if background is not None else None
            encoder.write(encoder_pixels(self.plan.output.layout, frames, alphas, foreground, bg))
            self.written += len(frames)
            if self.on_progress is not None:
                self.on_progress(self.written, self.plan.expected_frames)


class _Background:
    """Background frames for compositing: one still (broadcast) or a video played alongside."""

    def __init__(self, still: np.ndarray | None = None, reader: FrameReader | None = None) -> None:
        self.still, self.reader = still, reader

    def take(self, count: int) -> np.ndarray:
        if self.still is not None:
            return self.still
        frames = self.reader.read(count)
        if frames is None or len(frames) < count:
            raise MatteError("background video ended early", self.reader.ffmpeg.what)
        return unit_float(frames)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _open_background(plan: VideoPlan) -> _Background | None:
    """A still background (colour or image, resized to cover the frame) or a looping video reader
    that delivers the background at the clip's frame rate, scaled and cropped to cover the frame."""
    if plan.background is None:
        return None
    width, height = plan.info.width, plan.info.height
    # An anamorphic clip's pixels are not square: the background covers the picture as displayed
    # (display_width x height), then is squeezed into the clip's pixels like the clip itself.
    display_width = max(1, round(width * plan.info.sar))
    background = plan.background
    if background.video is not None:
        squeeze = f",scale={width}:{height}" if display_width != width else ""
        cover = (
            f"fps={plan.frame_rate},scale={display_width}:{height}:force_original_aspect_ratio=increase,"
            f"crop={display_width}:{height}{squeeze},setsar=1"
        )
        reader = FrameReader(
            background.video.path,
            width,
            height,
            input_args=["-stream_loop", "-1"],
            filters=cover,
            stream=background.video.stream,
        )
        return _Background(reader=reader)
    still = np.ascontiguousarray(background.still.fill(height, display_width), dtype=np.float32)
    if display_width != width:
        import cv2

        still = cv2.resize(still, (width, height), interpolation=cv2.INTER_LINEAR)
    return _Background(still=still[None])
