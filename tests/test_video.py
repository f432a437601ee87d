"""Video matting end to end with the real ffmpeg binary and tiny clips made here.

The model is replaced by a colour key (the clips show a magenta square moving over a static gradient),
so every expected matte is known exactly and can be compared with what is decoded back from the output.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import child_env, run_as_unprivileged

from mattecli.errors import MatteError
from mattecli.video import TemporalFilter, matte_video, plan_video, probe, run_plan
from mattecli.video.ffmpeg import ffmpeg_exe, parse_probe, snap_rate
from mattecli.video.pipeline import QUEUE_BATCHES

KEY = np.array([255, 0, 255], np.float32)
X264_444 = ("-c:v", "libx264", "-pix_fmt", "yuv444p", "-crf", "8")  # odd sizes need 4:4:4


# -- clip making and decoding helpers ------------------------------------------------------------------


def synthetic_frames(width: int, height: int, count: int, step: int = 2) -> np.ndarray:
    """A static gradient with a magenta square moving right by ``step`` pixels per frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 180 // width + 30, yy * 180 // height + 30, np.full_like(xx, 90)], -1)
    frames = np.repeat(base.astype(np.uint8)[None], count, 0)
    side = max(4, min(width, height) // 3)
    for i in range(count):
        x = (i * step) % (width - side)
        frames[i, height // 4 : height // 4 + side, x : x + side] = KEY
    return frames


def encode(
    frames: np.ndarray,
    path: Path,
    rate: str = "30000/1001",
    audio: bool = True,
    video_args: tuple[str, ...] = X264_444,
    extra: tuple[str, ...] = (),
) -> Path:
    """Write frames (N x H x W x 3 uint8) as a video, with a 440 Hz tone as long as the video."""
    height, width = frames.shape[1:3]
    args = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-framerate",
        rate,
        "-i",
        "pipe:0",
    ]
    if audio:
        seconds = len(frames) / float(Fraction(rate))
        args += ["-f", "lavfi", "-t", f"{seconds:.4f}", "-i", "sine=frequency=440:sample_rate=48000"]
        args += ["-c:a", "aac"]
    subprocess.run([*args, *video_args, *extra, str(path)], input=frames.tobytes(), check=True)
    return path


def decode(path: Path, pix_fmt: str = "rgba", decoder: tuple[str, ...] = ()) -> np.ndarray:
    """All frames of a video as N x H x W x C uint8 (size from the file itself)."""
    info = probe(path)
    channels = {"rgba": 4, "rgb24": 3, "gray": 1}[pix_fmt]
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            *decoder,
            "-i",
            str(path),
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, channels)


def audio_seconds(path: Path) -> float:
    """Length of the audio stream, by decoding it to 16-bit mono samples at 48 kHz."""
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            "48000",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return len(raw) / 2 / 48000


class KeyMatter:
    """Frame function: alpha from the distance to magenta; remembers every batch it saw."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.alphas: list[np.ndarray] = []

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, None]:
        distance = np.abs(frames.astype(np.float32) - KEY).sum(-1)
        alpha = np.clip(1.5 - distance / 100.0, 0.0, 1.0).astype(np.float32)
        self.frames.append(frames.copy())
        self.alphas.append(alpha)
        return alpha, None

    @property
    def all_frames(self) -> np.ndarray:
        return np.concatenate(self.frames)

    @property
    def all_alphas(self) -> np.ndarray:
        return np.concatenate(self.alphas)


def alpha8(alpha: np.ndarray) -> np.ndarray:
    return np.rint(alpha * 255).astype(np.int16)


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders a run might have left."""
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".old"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """36 frames of 66 x 50 at 29.97 fps with a tone: H.264 4:2:0 in .mp4, as a phone would write."""
    folder = tmp_path_factory.mktemp("clip")
    frames = synthetic_frames(66, 50, 36)
    video = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "8", "-g", "12")
    return encode(frames, folder / "clip.mp4", video_args=video)


@pytest.fixture(scope="module")
def odd_clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("odd")
    return encode(synthetic_frames(65, 49, 20), folder / "odd.mp4", rate="25")


# -- probing -------------------------------------------------------------------------------------------

PROBE_TEXT = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:01:02.50, start: 0.000000, bitrate: 118 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), \
1920x1080 [SAR 1:1 DAR 16:9], 27 kb/s, 29.83 fps, 30 tbr, 90k tbn (default)
    Metadata:
      handler_name    : VideoHandler
    Side data:
      Display Matrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s (default)
At least one output file must be specified
"""


def test_parse_probe_reads_size_rotation_rates_and_audio():
    info = parse_probe(Path("phone.mp4"), PROBE_TEXT)
    assert (info.width, info.height, info.rotation) == (1080, 1920, 270)  # displayed upright
    assert info.duration == pytest.approx(62.5)
    assert info.fps == Fraction(2983, 100) and info.tbr == 30
    assert info.variable_frame_rate
    assert (info.video_codec, info.audio_codec, info.stream) == ("h264", "aac", 0)


def test_parse_probe_skips_cover_art_and_reports_audio_only():
    text = PROBE_TEXT.replace("(default)\n    Metadata", "(attached pic)\n    Metadata", 1)
    with pytest.raises(MatteError, match=r"phone.mp4: has no video stream \(audio only\)"):
        parse_probe(Path("phone.mp4"), text)


@pytest.mark.parametrize(
    ("printed", "exact"),
    [
        (29.97, Fraction(30000, 1001)),
        (23.98, Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (25.0, Fraction(25)),
        (12.5, Fraction(25, 2)),
        (30.0, Fraction(30)),
        (18.75, Fraction(75, 4)),
    ],
)
def test_snap_rate_recovers_exact_rates(printed, exact):
    assert snap_rate(printed) == exact


# -- outputs -------------------------------------------------------------------------------------------


def test_default_output_is_prores_4444_with_alpha_audio_and_same_timing(clip):
    key = KeyMatter()
    report = matte_video(clip, None, key, temporal=0.0, progress=False)
    out = clip.with_name("clip.matte.mov")
    assert report.output == out and out.is_file()
    source, written = probe(clip), probe(out)
    assert written.video_codec == "prores" and (written.width, written.height) == (66, 50)
    assert written.fps == source.fps == Fraction(30000, 1001)
    assert written.duration == pytest.approx(source.duration, abs=0.02)
    assert written.audio_codec == "aac"  # copied: .mov takes AAC as it is
    assert audio_seconds(out) == pytest.approx(audio_seconds(clip), abs=0.03)
    pixels = decode(out)
    assert len(pixels) == report.frames == 36
    # ProRes alpha is lossless: the decoded alpha is the matte, to the 8-bit rounding.
    assert np.abs(pixels[..., 3] - alpha8(key.all_alphas)).max() <= 1
    assert np.abs(pixels[..., :3].astype(np.int16) - key.all_frames).mean() < 1.5
    assert pixels[..., 3].min() == 0 and pixels[..., 3].max() == 255


def test_webm_keeps_alpha_readable_by_the_vp9_decoder(clip, tmp_path):
    key = KeyMatter()
    out = tmp_path / "cut.webm"
    matte_video(clip, out, key, temporal=0.0, progress=False)
    info = probe(out)
    assert (info.video_codec, info.audio_codec) == ("vp9", "opus")
    # ffmpeg's native VP9 decoder drops the alpha layer; libvpx's keeps it.
    pixels = decode(out, decoder=("-c:v", "libvpx-vp9"))
    assert len(pixels) == 36
    error = np.abs(pixels[..., 3] - alpha8(key.all_alphas))
    assert error.mean() < 3 and np.percentile(error, 99) < 40
    assert audio_seconds(out) == pytest.approx(audio_seconds(clip), abs=0.03)


def test_png_sequence_is_complete_and_exact(clip, tmp_path):
    from PIL import Image

    key = KeyMatter()
    out = tmp_path / "frames"
    report = matte_video(clip, out, key, batch_size=5, temporal=0.0, progress=False)
    names = sorted(os.listdir(out))
    assert names == [f"frame_{i:06d}.png" for i in range(1, 37)]
    assert report.frames == 36 and not report.audio
    for i in (0, 17, 35):
        image = Image.open(out / names[i])
        assert image.mode == "RGBA" and image.size == (66, 50)
        pixels = np.asarray(image)
        assert np.array_equal(pixels[..., 3], alpha8(key.all_alphas[i]))
        assert np.array_equal(pixels[..., :3], key.all_frames[i])
    assert leftovers(tmp_path) == []


def test_matte_only_video_is_the_alpha_in_gray(clip, tmp_path):
    key = KeyMatter()
    out = tmp_path / "matte.mkv"
    matte_video(clip, out, key, codec="matte", temporal=0.0, progress=False)
    assert probe(out).video_codec == "ffv1"
    gray = decode(out, "gray")[..., 0]
    assert np.array_equal(gray, alpha8(key.all_alphas))  # FFV1 is lossless


def test_composite_over_a_video_background_loops_it_and_keeps_audio(clip, tmp_path):
    background = encode(
        np.full((8, 24, 32, 3), (0, 200, 0), np.uint8), tmp_path / "bg.mp4", rate="10", audio=False
    )  # shorter, smaller, other rate: looped and scaled
    key = KeyMatter()
    out = tmp_path / "comp.mp4"
    report = matte_video(clip, out, key, bg=str(background), temporal=0.0, progress=False)
    info = probe(out)
    assert (info.video_codec, info.audio_codec, report.frames) == ("h264", "aac", 36)
    pixels = decode(out, "rgb24").astype(np.float32)
    alpha = key.all_alphas[..., None]
    expected = alpha * key.all_frames + (1 - alpha) * np.array([0, 200, 0], np.float32)
    assert np.abs(pixels - expected).mean() < 4


def test_composite_over_a_colour(clip, tmp_path):
    # No importorskip("mattecli.compositing"): a broken import of our own module must fail, not skip.
    key = KeyMatter()
    out = tmp_path / "comp.mov"
    report = matte_video(clip, out, key, bg="#0000ff", temporal=0.0, progress=False)
    assert report.codec == "prores" and probe(out).audio_codec == "aac"
    pixels = decode(out, "rgb24").astype(np.float32)
    alpha = key.all_alphas[..., None]
    expected = alpha * key.all_frames + (1 - alpha) * np.array([0, 0, 255], np.float32)
    assert np.abs(pixels - expected).mean() < 2


@pytest.mark.parametrize(
    ("name", "codec", "bg", "size"),
    [
        ("o.mov", None, None, (65, 49)),
        ("o.webm", None, None, (65, 49)),
        ("o", None, None, (65, 49)),
        ("o.mp4", "matte", None, (66, 50)),
        ("o.mp4", None, "bg", (66, 50)),
    ],
)
def test_odd_frame_sizes_work_with_every_codec(odd_clip, tmp_path, name, codec, bg, size):
    if bg:  # a background video is the one kind that needs no colour parsing
        bg = str(encode(np.full((5, 20, 20, 3), 40, np.uint8), tmp_path / "bg.mp4", audio=False))
    key = KeyMatter()
    out = tmp_path / name
    report = matte_video(odd_clip, out, key, codec=codec, bg=bg, temporal=0.0, progress=False)
    assert report.frames == 20 and (report.width, report.height) == size
    if out.is_dir():
        assert len(os.listdir(out)) == 20
    else:
        decoder = ("-c:v", "libvpx-vp9") if name.endswith("webm") else ()
        pixels = decode(out, "rgba", decoder)
        assert pixels.shape == (20, size[1], size[0], 4)
        if codec is None and bg is None:  # alpha outputs: the matte survives at the exact size
            assert np.abs(pixels[..., 3] - alpha8(key.all_alphas)).mean() < 3


# -- pixel aspect ratio (issue 24) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def anamorphic_clip(tmp_path_factory) -> Path:
    """321 x 241 pixels that display 241/321 as wide as tall (a square picture): SAR 241:321."""
    folder = tmp_path_factory.mktemp("anamorphic")
    sar = ("-vf", "setsar=241/321:max=1000")
    return encode(synthetic_frames(321, 241, 6), folder / "wide.mp4", rate="25", extra=sar)


def stored_sar(path: Path) -> Fraction:
    """The SAR ``ffmpeg -i`` reports for a file's video stream (1 where none is stored)."""
    text = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    stream = next(line for line in text.splitlines() if "Video:" in line)
    found = re.search(r"[\[ ]SAR (\d+):(\d+)", stream)
    return Fraction(int(found.group(1)), int(found.group(2))) if found else Fraction(1)


def test_parse_probe_reads_the_sample_aspect_ratio_and_turns_it_with_the_picture():
    info = parse_probe(Path("phone.mp4"), PROBE_TEXT.replace("SAR 1:1 DAR 16:9", "SAR 4:3 DAR 64:27"))
    assert info.sar == Fraction(3, 4)  # rotated a quarter: the upright pixels are tall, not wide
    assert parse_probe(Path("x.mp4"), PROBE_TEXT.replace(" [SAR 1:1 DAR 16:9]", "")).sar == 1
    assert parse_probe(Path("x.mp4"), PROBE_TEXT.replace("SAR 1:1", "SAR 0:1")).sar == 1
    container = PROBE_TEXT.replace("[SAR 1:1 DAR 16:9]", "[SAR 1:1 DAR 16:9], SAR 4:3 DAR 64:27")
    assert parse_probe(Path("x.mkv"), container).sar == Fraction(3, 4)  # the container's wins


@pytest.mark.parametrize(
    ("name", "codec", "bg", "size"),
    [
        ("o.mov", None, None, (321, 241)),
        ("o.webm", None, None, (321, 241)),
        ("o", None, None, (321, 241)),
        ("o.mp4", None, "white", (322, 242)),
        ("o.mkv", "matte", None, (321, 241)),
        ("o.mp4", "matte", None, (322, 242)),
        ("m.mov", "matte", None, (321, 241)),
    ],
)
def test_outputs_keep_the_sample_aspect_ratio(anamorphic_clip, tmp_path, name, codec, bg, size):
    """An anamorphic clip came out stretched in every output: its SAR was dropped."""
    assert probe(anamorphic_clip).sar == Fraction(241, 321)
    out = tmp_path / name
    report = matte_video(anamorphic_clip, out, KeyMatter(), codec=codec, bg=bg, temporal=0.0, progress=False)
    assert (report.width, report.height) == size and report.sar == Fraction(241, 321)
    assert report.padded_from == ((321, 241) if size == (322, 242) else None)
    written = out / "frame_000001.png" if out.is_dir() else out
    assert stored_sar(written) == Fraction(241, 321)
    if not out.is_dir():
        info = probe(out)
        assert (info.width, info.height, info.sar) == (*size, Fraction(241, 321))


def test_a_background_covers_an_anamorphic_picture_as_displayed(anamorphic_clip, tmp_path):
    """The square picture (321 x 241 pixels at SAR 241:321) over a square image: the whole image shows,
    squeezed like the clip, instead of being cropped to cover 321 x 241 square pixels."""
    from PIL import Image

    backdrop = np.zeros((100, 100, 3), np.uint8)
    backdrop[:25] = (0, 255, 0)  # a green band over the top quarter
    Image.fromarray(backdrop).save(tmp_path / "square.png")
    out = tmp_path / "frames"
    matte_video(
        anamorphic_clip, out, KeyMatter(), bg=str(tmp_path / "square.png"), temporal=0.0, progress=False
    )
    first = np.asarray(Image.open(out / "frame_000001.png").convert("RGB")).astype(int)
    green_rows = np.flatnonzero((first[:, 5, 1] > 200) & (first[:, 5, 0] < 60))
    assert 55 <= len(green_rows) <= 65  # a quarter of 241 rows (cropped to cover, it was about 40)


# -- timing --------------------------------------------------------------------------------------------


def test_variable_frame_rate_keeps_frame_count_and_duration(tmp_path):
    slow = tmp_path / "slow.mkv"
    fast = tmp_path / "fast.mkv"
    encode(synthetic_frames(48, 36, 10), slow, rate="10", audio=False)
    encode(synthetic_frames(48, 36, 30, step=1), fast, rate="30", audio=False)
    vfr = tmp_path / "vfr.mp4"
    # 1 s at 10 fps then 1 s at 30 fps, and a tone that runs half a second longer than the picture.
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(slow), "-i", str(fast),
         "-f", "lavfi", "-t", "2.5", "-i", "sine", "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
         "-map", "[v]", "-map", "2:a", "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-c:a", "aac", str(vfr)],
        check=True,
    )  # fmt: skip
    source = probe(vfr)
    assert source.variable_frame_rate and source.duration == pytest.approx(2.5, abs=0.05)
    key = KeyMatter()
    out = tmp_path / "out.mov"
    report = matte_video(vfr, out, key, temporal=0.0, progress=False)
    assert report.frames == len(decode(out)) == 40
    assert report.frame_rate == 20  # 40 frames over the video's own 2 s, not the audio's 2.5 s
    assert probe(out).duration == pytest.approx(source.duration, abs=0.05)
    assert audio_seconds(out) == pytest.approx(2.5, abs=0.05)


def test_variable_frame_rate_in_matroska_keeps_frame_count_and_duration(tmp_path):
    """Matroska stores no frame rate: ffmpeg prints the stream's nominal one (its default frame
    duration) as both average and base rate, so a VFR .mkv / .webm looked constant-rate and came out at
    the wrong speed (20 frames 1/30 s apart then 10 frames 1/10 s apart -> 30 frames at 30 fps, 1 s
    instead of about 1.6 s, and out of sync with its audio)."""
    even = encode(synthetic_frames(48, 36, 30), tmp_path / "even.mkv", rate="30", audio=False)
    vfr = tmp_path / "vfr.mkv"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(even),
         "-vf", "setpts='if(lt(N,20),N/30,20/30+(N-20)/10)/TB'", "-fps_mode", "vfr",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(vfr)],
        check=True,
    )  # fmt: skip
    source = probe(vfr)
    assert source.fps == source.tbr == 30  # looks constant-rate
    out = tmp_path / "out.mov"
    report = matte_video(vfr, out, KeyMatter(), temporal=0.0, progress=False)
    assert report.frames == len(decode(out)) == 30
    assert 18 <= report.frame_rate <= 19.5  # 30 frames over about 1.6 s
    assert probe(out).duration == pytest.approx(source.duration, abs=0.05)


def test_constant_rate_matroska_keeps_its_exact_rate(tmp_path):
    clip = tmp_path / "ntsc.mkv"
    encode(synthetic_frames(48, 36, 12), clip, rate="30000/1001", audio=False)
    report = matte_video(clip, tmp_path / "out.mov", KeyMatter(), temporal=0.0, progress=False)
    assert report.frames == 12 and report.frame_rate == Fraction(30000, 1001)


def test_rotated_clip_is_written_upright_with_the_same_picture(clip, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(clip),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    info = probe(rotated)
    assert (info.width, info.height, info.rotation) == (50, 66, 90)
    key = KeyMatter()
    matte_video(rotated, tmp_path / "out.mov", key, temporal=0.0, progress=False)
    written = probe(tmp_path / "out.mov")
    assert (written.width, written.height, written.rotation) == (50, 66, 0)
    upright = decode(rotated, "rgb24")  # what a player shows for the input
    output = decode(tmp_path / "out.mov")
    assert np.abs(output[..., :3].astype(np.int16) - upright).mean() < 1.5
    assert np.array_equal(key.all_frames, upright)


def test_start_and_end_select_part_of_the_clip_with_its_audio(clip, tmp_path):
    key = KeyMatter()
    out = tmp_path / "part.mov"
    report = matte_video(clip, out, key, start="0.2", end="00:00.7", temporal=0.0, progress=False)
    rate = 30000 / 1001
    assert abs(report.frames - round(0.5 * rate)) <= 1
    whole = decode(clip, "rgb24")
    first = round(0.2 * rate)
    assert np.array_equal(key.all_frames[0], whole[first])  # frame-accurate start
    assert probe(out).audio_codec == "pcm_s16le"  # cut: re-encoded for exact ends
    assert audio_seconds(out) == pytest.approx(0.5, abs=0.04)


# -- pipeline behaviour --------------------------------------------------------------------------------


def test_reader_never_runs_far_ahead_of_the_model(clip, tmp_path, monkeypatch):
    """Bounded queues: memory does not grow with the clip, whatever the speed difference."""
    from mattecli.video import ffmpeg

    reads = []
    original = ffmpeg.FrameReader.read

    def counting_read(self, count):
        reads.append(count)
        return original(self, count)

    monkeypatch.setattr(ffmpeg.FrameReader, "read", counting_read)
    key = KeyMatter()
    ahead = []

    def slow_model(frames):
        import time

        time.sleep(0.02)
        ahead.append(len(reads) - len(key.frames))
        return key(frames)

    matte_video(clip, tmp_path / "out.mov", slow_model, batch_size=2, temporal=0.0, progress=False)
    assert len(key.frames) == 18
    # Batches read but not yet matted: the two queued plus one in the reader's hands at most.
    assert max(ahead) <= QUEUE_BATCHES + 2


def test_progress_callback_counts_every_frame(clip, tmp_path):
    seen = []
    matte_video(
        clip, tmp_path / "o.mov", KeyMatter(), batch_size=8, progress=lambda d, t: seen.append((d, t))
    )
    assert [d for d, _ in seen] == [8, 16, 24, 32, 36]
    assert all(t == 36 for _, t in seen)  # expected total from duration x rate


def test_model_error_leaves_nothing_behind_and_stops_ffmpeg(clip, tmp_path):
    calls, running = [], []

    def failing(frames):
        calls.append(1)
        if len(calls) == 3:
            running.extend(_ffmpeg_children())  # decoder and encoder are at work right now
            raise RuntimeError("model exploded")
        return KeyMatter()(frames)

    with pytest.raises(RuntimeError, match="model exploded"):
        matte_video(clip, tmp_path / "o.mov", failing, batch_size=2, temporal=0.0, progress=False)
    assert os.listdir(tmp_path) == []
    if Path("/proc").exists():
        assert len(running) == 2
    assert _ffmpeg_children() == []


def test_interrupt_leaves_nothing_behind(clip, tmp_path):
    def interrupted(frames):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        matte_video(clip, tmp_path / "frames", interrupted, temporal=0.0, progress=False)
    assert os.listdir(tmp_path) == []
    assert _ffmpeg_children() == []


def _ffmpeg_children() -> list[int]:
    """ffmpeg processes started by this test process that are still alive (zombies included); Linux
    only (elsewhere there is no /proc to ask, and the check is skipped)."""
    if not Path(f"/proc/{os.getpid()}/task").exists():
        return []
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                # The command name in /proc/PID/stat survives in zombies (cmdline does not).
                if "ffmpeg" in Path(f"/proc/{pid}/stat").read_text().split(")")[0]:
                    found.append(int(pid))
    return found


def test_wrong_matte_shape_is_reported(clip, tmp_path):
    with pytest.raises(ValueError, match="alpha"):
        matte_video(
            clip, tmp_path / "o.mov", lambda f: (f[:, :10, :, 0] / 255.0, None), temporal=0.0, progress=False
        )
    assert os.listdir(tmp_path) == []


# -- errors --------------------------------------------------------------------------------------------


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_corrupt_input_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    with pytest.raises(MatteError) as error:
        matte_video(bad, None, KeyMatter(), temporal=0.0, progress=False)
    assert "bad.mp4: cannot read video (Invalid data" in _one_line(error)
    assert sorted(os.listdir(tmp_path)) == ["bad.mp4"]


def test_truncated_input_is_an_error(clip, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(MatteError) as error:
        matte_video(cut, None, KeyMatter(), temporal=0.0, progress=False)
    assert "cut.mp4: cannot read video" in _one_line(error)


@pytest.fixture(scope="module")
def streamable_clip(tmp_path_factory) -> Path:
    """75 frames (2.5 s at 30 fps) with a tone, the index first (``+faststart``, as phones and web
    downloads write it), so that a cut or damaged copy still opens and decodes in part."""
    folder = tmp_path_factory.mktemp("streamable")
    video = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "8", "-g", "15")
    return encode(
        synthetic_frames(66, 50, 75), folder / "clip.mp4", rate="30", video_args=video,
        extra=("-movflags", "+faststart"),
    )  # fmt: skip


def _damaged(source: Path, folder: Path, how: str) -> Path:
    """A copy of ``source`` cut in the middle ('truncated') or with a block of zeros written over
    the middle ('corrupt')."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    if how == "truncated":
        data = data[:middle]
    else:
        data[middle : middle + 4000] = bytes(4000)
    damaged = folder / "in" / f"{how}.mp4"
    damaged.parent.mkdir()
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.mark.parametrize("how", ["truncated", "corrupt"])
def test_damaged_input_is_an_error_naming_the_missing_frames(streamable_clip, tmp_path, how):
    damaged = _damaged(streamable_clip, tmp_path, how)
    key = KeyMatter()
    with pytest.raises(MatteError) as error:
        matte_video(damaged, tmp_path / "out" / "o.mov", key, temporal=0.0)
    decoded = len(key.all_frames)
    assert 10 < decoded < 73  # some frames decode, too few to be rounding
    assert _one_line(error) == (
        f"{damaged}: only {decoded} of 75 frames could be decoded (the file is damaged or truncated); "
        "--allow-partial writes them"
    )
    assert os.listdir(tmp_path / "out") == []
    assert os.listdir(damaged.parent) == [damaged.name]


def test_truncated_matroska_is_still_an_error(streamable_clip, tmp_path):
    """Matroska clips are counted before matting (their printed rate is nominal); a constant-rate one
    must still expect the frames its duration promises, or a cut file would pass as complete."""
    whole = tmp_path / "whole.mkv"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(streamable_clip), "-c", "copy", str(whole)], check=True
    )
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    key = KeyMatter()
    with pytest.raises(MatteError) as error:
        matte_video(cut, tmp_path / "o.mov", key, temporal=0.0)
    assert re.search(rf"only {len(key.all_frames)} of 7[56] frames could be decoded", _one_line(error))


def test_allow_partial_writes_the_frames_that_decode(streamable_clip, tmp_path):
    damaged = _damaged(streamable_clip, tmp_path, "truncated")
    key = KeyMatter()
    out = tmp_path / "o.mov"
    report = matte_video(damaged, out, key, temporal=0.0, allow_partial=True)
    assert report.frames == len(key.all_frames) == len(decode(out)) < 73
    assert report.expected_frames == 75 and report.partial


def test_a_clip_whose_audio_outlasts_the_video_is_not_damaged(tmp_path):
    # The container's duration is the audio's (1.2 s); the video has 6 frames (0.2 s) and nothing is
    # wrong with them, so the short count is no reason to refuse the file.
    short = encode(synthetic_frames(48, 36, 6), tmp_path / "short.mp4", rate="30", audio=False)
    clip = tmp_path / "long_audio.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(short), "-f", "lavfi", "-t", "1.2", "-i", "sine",
         "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(clip)],
        check=True,
    )  # fmt: skip
    assert probe(clip).duration > 1.0
    report = matte_video(clip, tmp_path / "o.mov", KeyMatter(), temporal=0.0)
    assert report.frames == 6 and not report.partial


def test_complete_clip_is_not_partial(streamable_clip, tmp_path):
    report = matte_video(streamable_clip, tmp_path / "o.mov", KeyMatter(), temporal=0.0)
    assert (report.frames, report.expected_frames, report.partial) == (75, 75, False)


def test_audio_only_file_is_a_one_line_error(tmp_path):
    tone = tmp_path / "tone.m4a"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine", "-t", "0.5", str(tone)], check=True
    )
    with pytest.raises(MatteError) as error:
        matte_video(tone, None, KeyMatter(), temporal=0.0, progress=False)
    assert _one_line(error) == f"{tone}: has no video stream (audio only)"


def test_unwritable_destination_is_a_one_line_error(clip, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(MatteError) as error:
        matte_video(clip, blocker / "out.mov", KeyMatter(), temporal=0.0, progress=False)
    assert str(blocker) in _one_line(error)


def test_read_only_folder_is_a_one_line_error(clip, tmp_path, tiny_weights):
    """In a child process that, even as root, meets folder permissions (it used to be skipped as root)."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = locked / "out.mov"
    command = [
        sys.executable,
        "-m",
        "mattecli",
        "video",
        str(clip),
        "-o",
        str(out),
        "-m",
        str(tiny_weights),
        "-q",
    ]
    try:
        result = run_as_unprivileged(command, env=child_env(), cwd=tmp_path, capture_output=True, text=True)
    finally:
        locked.chmod(0o700)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [f"error: {locked}: cannot write to this folder (Permission denied)"]
    assert os.listdir(locked) == []


def test_ffmpeg_failure_becomes_one_line_with_ffmpegs_reason(clip):
    from mattecli.video.ffmpeg import FrameReader

    reader = FrameReader(clip, 66, 50, filters="nosuchfilter")
    with pytest.raises(MatteError) as error:
        reader.read(4)
    reader.close()
    message = _one_line(error)
    assert message.startswith(f"{clip}: decoding failed: ") and "nosuchfilter" in message
    assert "@ 0x" not in message  # ffmpeg's '[component @ 0x...]' prefix is stripped


def test_range_without_video_frames_is_an_error(tmp_path):
    # Audio runs on for a second after the last video frame: the container is longer than the video.
    clip = tmp_path / "short_video.mp4"
    frames = synthetic_frames(48, 36, 6)
    encode(frames, clip, rate="30", audio=False, extra=())
    with_audio = tmp_path / "long_audio.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(clip), "-f", "lavfi", "-t", "1.2", "-i", "sine",
         "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(with_audio)],
        check=True,
    )  # fmt: skip
    assert probe(with_audio).duration > 1.0
    out = tmp_path / "out"
    with pytest.raises(MatteError, match="no video frames could be decoded in the chosen range"):
        matte_video(with_audio, out / "o.mov", KeyMatter(), start=0.8, temporal=0.0, progress=False)
    assert os.listdir(out) == []


def test_existing_output_needs_overwrite(clip, tmp_path):
    out = tmp_path / "o.mov"
    out.write_bytes(b"keep me")
    with pytest.raises(MatteError, match=r"o.mov: exists \(use --overwrite\)"):
        matte_video(clip, out, KeyMatter(), temporal=0.0, progress=False)
    assert out.read_bytes() == b"keep me"
    matte_video(clip, out, KeyMatter(), overwrite=True, temporal=0.0, progress=False)
    assert probe(out).video_codec == "prores"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output": "o.mp4"}, "MP4 \\(H.264\\) has no alpha"),
        ({"codec": "h264"}, "H.264 has no alpha"),
        ({"codec": "gif"}, "unknown codec"),
        ({"output": "o.webm", "codec": "prores"}, "prores output needs"),
        ({"start": "soon"}, "--start must be seconds"),
        ({"start": 2, "end": 1}, "must come after"),
        ({"start": 99}, "past the end"),
        ({"output": "o.mov", "bg": "missing.mp4"}, "missing.mp4: no such file"),
    ],
)
def test_bad_options_fail_before_any_work(clip, tmp_path, kwargs, message):
    kwargs = {"output": "o.mov", **kwargs}
    kwargs["output"] = tmp_path / kwargs["output"]
    with pytest.raises(MatteError, match=message):
        plan_video(clip, **kwargs)
    assert os.listdir(tmp_path) == []


def test_an_output_below_a_file_fails_before_any_work(clip, tmp_path):
    """-o clip.mp4/frames/ was found only when writing, after the model had loaded."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for output in (notes / "frames", notes / "sub" / "o.mov"):
        with pytest.raises(MatteError, match=r"notes\.txt: is a file, not a folder: cannot write"):
            plan_video(clip, output, codec="png" if output.suffix == "" else None)
    assert notes.read_text() == "mine"


# -- temporal ------------------------------------------------------------------------------------------


def _flickering(frames: np.ndarray, seed: int) -> np.ndarray:
    """Key alpha with the soft-edge jitter a per-frame model shows (noise only on soft pixels)."""
    distance = np.abs(frames.astype(np.float32) - KEY).sum(-1)
    alpha = np.clip(1.5 - distance / 100.0, 0.0, 1.0)
    xx = np.mgrid[0 : frames.shape[0], 0 : frames.shape[1]][1]
    edge = np.exp(-(((xx - 20) / 3.0) ** 2))  # a still, soft vertical edge at x = 20
    alpha = np.maximum(alpha, 0.5 * edge)
    noise = np.random.default_rng(seed).normal(0, 0.08, alpha.shape) * (alpha > 0.02) * (alpha < 0.98)
    return np.clip(alpha + noise, 0, 1).astype(np.float32)


def test_temporal_filter_reduces_still_flicker_without_smearing_motion():
    frames = synthetic_frames(64, 48, 40, step=3)
    raw = np.stack([_flickering(f, i) for i, f in enumerate(frames)])
    off, on = TemporalFilter(0.0), TemporalFilter(0.6)
    smoothed = np.stack([on.step(f, a) for f, a in zip(frames, raw, strict=True)])
    unchanged = np.stack([off.step(f, a) for f, a in zip(frames, raw, strict=True)])
    assert np.array_equal(unchanged, raw)
    before, after = off.stats(), on.stats()
    assert before.raw == pytest.approx(after.raw) and before.raw > 0.04
    assert after.smoothed < 0.6 * after.raw  # the still edge flickers much less ...
    assert after.motion_deviation < 0.02  # ... while moving pixels keep the model's alpha
    # No ghost: where the square just left, the smoothed matte is back to background at once.
    square_left = (raw[:-1] > 0.9) & (raw[1:] < 0.1)
    assert square_left.any() and smoothed[1:][square_left].max() < 0.1


@pytest.mark.parametrize("strength", [-0.1, 0.95, 1.0])
def test_temporal_strength_has_one_rule_for_the_pipeline_and_the_filter(clip, tmp_path, strength):
    with pytest.raises(MatteError, match=r"--temporal must be between 0 and 0.9, got"):
        matte_video(clip, tmp_path / "o.mov", KeyMatter(), temporal=strength)
    with pytest.raises(MatteError, match=r"--temporal must be between 0 and 0.9, got"):
        TemporalFilter(strength)
    assert os.listdir(tmp_path) == []


def test_temporal_option_in_the_pipeline_reports_both_numbers(clip, tmp_path):
    counter = iter(range(1000))

    def jittery(frames):
        return np.stack([_flickering(f, next(counter)) for f in frames]), None

    plain = matte_video(clip, tmp_path / "a.mov", jittery, temporal=0.0, progress=False).flicker
    smooth = matte_video(clip, tmp_path / "b.mov", jittery, temporal=0.6, progress=False).flicker
    assert plain.raw == pytest.approx(plain.smoothed)
    assert smooth.smoothed < 0.6 * smooth.raw
    assert smooth.still_pixels > 0 and smooth.motion_deviation < 0.05


# -- with the real model -------------------------------------------------------------------------------


def test_real_matter_on_a_tiny_model(clip, tmp_path):
    torch = pytest.importorskip("torch")
    from mattecli.inference import Matter
    from mattecli.models import LateFusionNet
    from mattecli.models.config import LITE

    torch.manual_seed(0)
    tiny = LITE.replace(name="tiny", decoder_channels=8, fusion_channels=(8, 8), fusion_image_channels=8)
    matter = Matter(LateFusionNet(tiny), device="cpu", max_size=64)
    plan = plan_video(clip, tmp_path / "o.webm")
    from mattecli.video import as_frame_fn

    report = run_plan(plan, as_frame_fn(matter), batch_size=4, temporal=0.5, progress=False)
    assert report.frames == 36
    pixels = decode(tmp_path / "o.webm", decoder=("-c:v", "libvpx-vp9"))
    assert pixels.shape == (36, 50, 66, 4) and pixels[..., 3].std() > 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
def test_a_named_pipe_is_refused_at_once_instead_of_hanging(tmp_path):
    """ffmpeg waited for a writer for ever on a FIFO; <(cat clip.mp4) said 'No such file or directory'."""
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    with pytest.raises(MatteError, match=r"clip\.mp4: is not a regular file \(a pipe or device\)"):
        probe(fifo)


def test_the_background_is_read_once_while_planning(clip, tmp_path, monkeypatch):
    """``--bg`` is probed or decoded by ``plan_video``; the pipeline composites what the plan holds."""
    import mattecli.video.planning as planning

    probed = []
    real_probe = planning.probe
    monkeypatch.setattr(planning, "probe", lambda path: probed.append(Path(path)) or real_probe(path))
    plan = plan_video(clip, tmp_path / "o.mp4", bg=str(clip))
    assert plan.background.video is not None and plan.background.still is None
    assert probed == [clip, clip]  # the input, then the background video
    still = plan_video(clip, tmp_path / "o.mp4", bg="white").background
    assert still.video is None and still.still.colour == (1.0, 1.0, 1.0)
    with pytest.raises(MatteError, match=r"missing\.mp4: no such file \(--bg\)"):
        plan_video(clip, tmp_path / "o.mp4", bg="missing.mp4", bg_option="--bg")
