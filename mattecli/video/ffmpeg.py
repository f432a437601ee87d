"""The ffmpeg side of video matting: probing files and streaming raw frames through pipes.

We use the static ffmpeg binary that ``imageio-ffmpeg`` ships (or ``IMAGEIO_FFMPEG_EXE``), so users need
no system install. That build has no ffprobe, so :func:`probe` parses the stream summary that
``ffmpeg -i FILE`` prints on stderr; the format of that summary has been stable for over a decade.

:class:`FrameReader` decodes a clip into raw frames, :class:`FrameWriter` encodes raw frames into the
output (with the source's audio). Processes are always started from argument lists (never a shell), in
their own process group so that a Ctrl-C in the terminal reaches Python alone and Python decides how to
stop them; their stderr goes to a temporary file (a decoder that complains about every frame of a damaged
file would otherwise fill a pipe and stall) and the first meaningful line of it becomes the one-line error
the user sees.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import IO

import numpy as np

from mattecli.errors import MatteError
from mattecli.video.formats import OutputFormat

#: Demuxers ffmpeg uses for still images: a still is not a video, ``matte image`` is the right tool.
_IMAGE_DEMUXERS = ("image2", "_pipe")


@cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (imageio-ffmpeg's bundled build unless IMAGEIO_FFMPEG_EXE says otherwise)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise MatteError(f"ffmpeg is not available ({exc}); reinstall imageio-ffmpeg") from None


@dataclass(frozen=True)
class VideoInfo:
    """What we need to know about an input before reading it.

    ``width``/``height`` are the *displayed* size: ffmpeg applies the rotation from the display matrix
    while decoding, so frames arrive upright and a phone clip recorded in portrait is portrait here.
    ``fps`` is the stream's average frame rate and ``tbr`` its base rate; they differ for variable frame
    rate sources. ``duration`` is None where the container does not say (raw streams). ``sar`` is the
    sample (pixel) aspect ratio of the upright frames: 1 for square pixels, 241/321 for an anamorphic
    clip whose pixels display narrower than tall; outputs keep it (:class:`FrameWriter`).
    """

    path: Path
    width: int
    height: int
    fps: Fraction | None
    tbr: Fraction | None
    duration: float | None
    rotation: int
    video_codec: str
    audio_codec: str | None
    stream: int  # ordinal among the file's video streams (cover-art pictures skipped)
    sar: Fraction = Fraction(1)
    container: str = ""  # ffmpeg's demuxer names, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm"

    @property
    def rate_is_nominal(self) -> bool:
        """Whether the printed rates only restate a nominal frame duration rather than the timestamps:
        Matroska / WebM store none per stream, so a variable-rate .mkv can print as constant."""
        return "matroska" in self.container

    @property
    def variable_frame_rate(self) -> bool:
        """Whether average and base rates disagree (VFR, or timestamps too irregular to trust)."""
        if self.fps is None or self.tbr is None:
            return True
        return abs(self.fps - self.tbr) > self.tbr * Fraction(1, 500)


def probe(path: Path) -> VideoInfo:
    """Read a file's video (and audio) stream summary; one-line MatteError if it is not a video."""
    if not path.exists():
        raise MatteError("no such file", path)
    if path.is_dir():
        raise MatteError("is a folder, not a video file", path)
    if not path.is_file():  # a named pipe or <(process substitution): read once, and it is read twice
        raise MatteError("is not a regular file (a pipe or device); save the video to a file first", path)
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    return parse_probe(path, result.stderr.decode("utf-8", "replace"))


def parse_probe(path: Path, text: str) -> VideoInfo:
    """Parse ``ffmpeg -i`` output (separate from :func:`probe` so it is testable on fixed text)."""
    header = re.search(r"^Input #0, ([^ ]+), from", text, re.MULTILINE)
    if header is None:
        raise MatteError(f"cannot read video ({_open_error(text)})", path)
    if any(marker in header.group(1) for marker in _IMAGE_DEMUXERS):
        raise MatteError("is a still image, not a video (use `matte image`)", path)
    blocks = re.split(r"^\s*Stream #", text, flags=re.MULTILINE)[1:]
    videos = [b for b in blocks if re.match(r"[^\n]*?: Video: ", b) and "(attached pic)" not in b]
    audios = [b for b in blocks if re.match(r"[^\n]*?: Audio: ", b)]
    if not videos:
        raise MatteError("has no video stream" + (" (audio only)" if audios else ""), path)
    video = videos[0]
    first_line = video.split("\n", 1)[0]
    size = re.search(r",\s*(\d+)x(\d+)[\s,\[]", first_line + " ")
    if size is None:
        raise MatteError("cannot read the video's frame size", path)
    width, height = int(size.group(1)), int(size.group(2))
    rotation = _rotation(video)
    sar = _sample_aspect_ratio(first_line)
    if rotation in (90, 270):
        width, height = height, width
        sar = 1 / sar  # the upright frame's pixels are the stored ones turned a quarter
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=_rate(first_line, "fps"),
        tbr=_rate(first_line, "tbr"),
        duration=_duration(text),
        rotation=rotation,
        video_codec=re.search(r": Video: ([\w-]+)", first_line).group(1),
        audio_codec=re.search(r": Audio: ([\w-]+)", audios[0]).group(1) if audios else None,
        stream=[b for b in blocks if ": Video: " in b.split("\n", 1)[0]].index(video),
        sar=sar,
        container=header.group(1),
    )


def _sample_aspect_ratio(line: str) -> Fraction:
    """``[SAR 241:321 DAR 1:1]`` (the codec's) or ``, SAR 241:321 DAR 1:1`` (the container's, printed
    where it differs from the codec's, and the one players follow) -> 241/321; square pixels where the
    stream does not say (or says 0:1)."""
    match = re.search(r", SAR (\d+):(\d+) DAR", line) or re.search(r"\[SAR (\d+):(\d+) DAR", line)
    if match is None or not int(match.group(1)) or not int(match.group(2)):
        return Fraction(1)
    return Fraction(int(match.group(1)), int(match.group(2)))


def _open_error(text: str) -> str:
    """The reason ffmpeg gives for not opening a file, e.g. 'Invalid data found when processing input'."""
    match = re.search(r"Error opening input: (.*)", text)
    reason = match.group(1).strip() if match else first_error_line(text) or "unknown format"
    detail = [
        _strip_context(line)
        for line in text.splitlines()
        if line.startswith("[") and "Error opening input" not in line and "misdetection" not in line
    ]
    return f"{reason}: {detail[0]}" if detail else reason


def _rate(line: str, unit: str) -> Fraction | None:
    match = re.search(rf"([\d.]+)(k?) {unit}\b", line)
    if match is None:
        return None
    value = float(match.group(1)) * (1000 if match.group(2) else 1)
    return snap_rate(value) if value > 0 else None


def snap_rate(value: float) -> Fraction:
    """Exact rate from ffmpeg's rounded print-out: 29.97 -> 30000/1001, 23.98 -> 24000/1001, 12.5 -> 25/2.

    ffmpeg prints rates with two decimals; the NTSC family is n * 1000/1001, which two decimals cannot
    show. Writing 29.97 instead of 30000/1001 would drift against the audio by 3.6 ms an hour.
    """
    ntsc = round(value * 1.001)
    if ntsc > 0 and abs(ntsc / 1.001 - value) < 0.006 and abs(ntsc - value) > 0.006:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(value).limit_denominator(100)


def _duration(text: str) -> float | None:
    match = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _rotation(stream_block: str) -> int:
    """Display rotation in degrees (0, 90, 180, 270) from the display matrix or an old 'rotate' tag."""
    match = re.search(r"rotation of (-?[\d.]+) degrees", stream_block, re.IGNORECASE)
    if match is None:
        match = re.search(r"^\s*rotate\s*:\s*(-?[\d.]+)", stream_block, re.MULTILINE)
    if match is None:
        return 0
    return round(float(match.group(1)) / 90) * 90 % 360


def first_error_line(text: str) -> str:
    """The first line of ffmpeg's stderr that explains a failure, without the '[enc @ 0x..]' prefix.

    ffmpeg states the cause first ('width not divisible by 2') and its consequences after ('Error while
    opening encoder', 'Conversion failed!'), so the first line is the useful one.
    """
    for line in text.splitlines():
        line = _strip_context(line)
        if line and not line.startswith(("Conversion failed", "Exiting normally")):
            return line[:300]
    return ""


def _strip_context(line: str) -> str:
    return re.sub(r"^(\[[^\]]*@ 0x[0-9a-f]+\]\s*)+", "", line.strip())


# -- processes -----------------------------------------------------------------------------------------


class FfmpegProcess:
    """One ffmpeg child with a temporary stderr log; ``stop`` kills it, ``finish`` checks its exit."""

    def __init__(self, args: Sequence[str], *, stdin: int | None, stdout: int | None, what: Path) -> None:
        self.what = what
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
        self.process = subprocess.Popen(
            command,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=self.log,
            **_own_process_group(),
        )

    def error_text(self) -> str:
        """Everything ffmpeg wrote to stderr so far."""
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def failure(self, doing: str) -> MatteError:
        """A one-line error: what we were doing and ffmpeg's own reason."""
        reason = first_error_line(self.error_text()) or f"ffmpeg exited with status {self.process.poll()}"
        return MatteError(f"{doing} failed: {reason}", self.what)

    def finish(self, doing: str, timeout: float | None = None) -> None:
        """Wait for a normal exit; raise ``failure(doing)`` on a non-zero status."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise MatteError(f"{doing} failed: ffmpeg did not finish", self.what) from None
        if status != 0:
            raise self.failure(doing)

    def stop(self) -> None:
        """Kill the process if it still runs and release its pipes and log (safe to call twice)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                # A broken pipe on close: the process is gone, there is nothing left to flush.
                with contextlib.suppress(OSError):
                    pipe.close()
        self.log.close()


def _own_process_group() -> dict:
    """Start children outside the terminal's process group: Ctrl-C must reach Python only, so that a
    decoder killed by the same signal cannot look like a clip that simply ended."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


class FrameReader:
    """Decodes a video into uint8 frames of a known size through a raw pipe.

    ``input_args`` go before ``-i`` (seeking, looping), ``filters`` is an optional ``-vf`` chain. Every
    decoded frame comes out exactly once (``-fps_mode passthrough``), so the frame count is the input's.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        *,
        input_args: Sequence[str] = (),
        filters: str | None = None,
        stream: int = 0,
        pix_fmt: str = "rgb24",
        channels: int = 3,
    ) -> None:
        self.width, self.height, self.channels = width, height, channels
        args = [*input_args, "-i", str(path), "-map", f"0:v:{stream}", "-an", "-sn", "-dn"]
        if filters:
            args += ["-vf", filters]
        args += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
        self.ffmpeg = FfmpegProcess(args, stdin=None, stdout=subprocess.PIPE, what=path)
        self.frames_read = 0

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * self.channels

    def read(self, count: int) -> np.ndarray | None:
        """Up to ``count`` frames as a writable N x H x W x C array, or None at the end of the stream."""
        batch = np.empty((count, self.height, self.width, self.channels), np.uint8)
        view = memoryview(batch).cast("B")
        filled = 0
        stdout = self.ffmpeg.process.stdout
        while filled < len(view):
            got = stdout.readinto(view[filled:])
            if not got:
                break
            filled += got
        whole, partial = divmod(filled, self.frame_bytes)
        if partial:
            self._end_of_stream()
            raise MatteError("decoding failed: the stream ended inside a frame", self.ffmpeg.what)
        self.frames_read += whole
        if whole == 0:
            self._end_of_stream()
            return None
        return batch[:whole]

    def complaint(self) -> str:
        """The decoder's first complaint so far ('' if none): a clip that decodes with errors is damaged."""
        return first_error_line(self.ffmpeg.error_text())

    def _end_of_stream(self) -> None:
        self.ffmpeg.finish("decoding", timeout=60)

    def close(self) -> None:
        self.ffmpeg.stop()


def with_sample_aspect_ratio(encoder_args: Sequence[str], sar: Fraction) -> list[str]:
    """Encoder arguments that tag the stream with ``sar`` (a ``setsar`` at the end of the ``-vf`` chain,
    or a chain of its own); square pixels leave them as they are. ``max`` keeps ratios such as 241:321
    exact (setsar would round them to terms of at most 100)."""
    args = list(encoder_args)
    if sar == 1:
        return args
    tag = f"setsar={sar.numerator}/{sar.denominator}:max=65535"
    if "-vf" in args:
        at = args.index("-vf") + 1
        args[at] = f"{args[at]},{tag}"
    else:
        args[:0] = ["-vf", tag]
    return args


class FrameWriter:
    """The writing ffmpeg: raw frames of a known size on stdin, encoded as ``fmt`` says into ``target``
    (a file, or a folder for PNG sequences), with the audio of ``audio_from`` (the source, cut by the
    same ``input_args`` as the video) where the format takes audio. ``sar``, the source's pixel aspect
    ratio, is written into the stream (and so into the container: MOV/MP4 ``pasp``, Matroska display
    size, PNG ``pHYs``), so an anamorphic clip is not shown stretched; padding to even sides keeps it."""

    def __init__(
        self,
        target: Path,
        fmt: OutputFormat,
        size: tuple[int, int],
        rate: Fraction,
        *,
        audio_from: Path | None = None,
        audio_codec: str | None = None,
        input_args: Sequence[str] = (),
        sar: Fraction = Fraction(1),
    ) -> None:
        width, height = fmt.frame_size(*size)
        self.pad = (height - size[1], width - size[0])
        args = ["-f", "rawvideo", "-pix_fmt", fmt.pix_fmt, "-s", f"{width}x{height}"]
        args += ["-framerate", str(rate), "-i", "pipe:0"]
        audio = fmt.audio_args(audio_codec, trimmed=bool(input_args)) if audio_from is not None else []
        if audio:
            args += [*input_args, "-vn", "-sn", "-dn", "-i", str(audio_from)]
        args += ["-map", "0:v:0"] + (["-map", "1:a?"] if audio else [])
        args += [*with_sample_aspect_ratio(fmt.encoder_args, sar), *audio, "-f", fmt.muxer, "-y"]
        if fmt.is_sequence:
            args += ["-start_number", "1", str(target / "frame_%06d.png")]
        else:
            args += [str(target)]
        self.ffmpeg = FfmpegProcess(args, stdin=subprocess.PIPE, stdout=None, what=fmt.path)

    def write(self, pixels: np.ndarray) -> None:
        """Encode N x H x W x C uint8 frames (edges repeated to even sides where the codec needs it)."""
        if any(self.pad):
            pixels = np.pad(pixels, ((0, 0), (0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        try:
            self.ffmpeg.process.stdin.write(memoryview(np.ascontiguousarray(pixels)).cast("B"))
        except (BrokenPipeError, ValueError):
            # The encoder died (bad option, disk full...): its own message says why.
            self.ffmpeg.process.wait()
            raise self.ffmpeg.failure("encoding") from None

    def finish(self) -> None:
        """Close the input and wait for the encoder to write the end of the file."""
        with contextlib.suppress(BrokenPipeError):
            self.ffmpeg.process.stdin.close()
        self.ffmpeg.finish("encoding")

    def close(self) -> None:
        self.ffmpeg.stop()


def count_frames(path: Path, info: VideoInfo, input_args: Sequence[str]) -> tuple[int, Fraction]:
    """Decode once, without output, to count the frames and measure the video stream's own duration
    (first timestamp to the end of the last frame), for variable-frame-rate sources: their average rate
    is not printed precisely enough, and the container's duration may be the audio's.

    ffmpeg's ``framecrc`` muxer lists every frame as ``stream, dts, pts, duration, size, crc`` in the
    time base it announces on a ``#tb`` line.
    """
    args = [*input_args, "-i", str(path), "-map", f"0:v:{info.stream}", "-fps_mode", "passthrough"]
    process = FfmpegProcess(
        [*args, "-f", "framecrc", "pipe:1"], stdin=None, stdout=subprocess.PIPE, what=path
    )
    try:
        text = process.process.stdout.read().decode("utf-8", "replace")
        process.finish("counting frames")
    finally:
        process.stop()
    base = re.search(r"^#tb \d+: (\d+)/(\d+)", text, re.MULTILINE)
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    if base is None or not rows:
        return 0, Fraction(0)
    first, last = int(rows[0][2]), int(rows[-1][2]) + int(rows[-1][3])
    return len(rows), Fraction(last - first) * Fraction(int(base.group(1)), int(base.group(2)))
