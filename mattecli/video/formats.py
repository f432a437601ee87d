"""Which file to write and how: codec, container, pixel layout and audio handling for each output kind.

| codec  | writes                                        | containers                    | alpha |
| ------ | --------------------------------------------- | ----------------------------- | ----- |
| prores | ProRes 4444 (422 HQ for composites)           | .mov, .mkv                    | yes   |
| vp9    | VP9 4:2:0                                     | .webm, .mkv                   | yes   |
| png    | frame_000001.png, ... in a folder             | folder                        | yes   |
| h264   | H.264 4:2:0, composites only (needs --bg)     | .mp4, .m4v, .mov, .mkv        | no    |
| matte  | the matte alone as grey video: H.264 in .mp4, ProRes 422 HQ in .mov, FFV1 (lossless) in .mkv, VP9 in .webm | all of those | - |

Audio is copied where the container takes the source's codec, otherwise re-encoded (PCM in .mov, AAC
in .mp4, Opus in .webm, FLAC in .mkv); PNG sequences have none.

Colour conversions to YUV use the BT.709 matrix and the streams are tagged so, which is what editors and
players assume for HD material. H.264 in 4:2:0 cannot code odd frame sizes, so an odd-sized clip is padded
by one pixel (the edge repeated) for that codec only; every other codec keeps the exact size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mattecli.errors import MatteError

CODECS = ("prores", "vp9", "png", "h264", "matte")

_CONTAINERS = {
    ".mov": "mov",
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".webm": "webm",
    ".mkv": "matroska",
}
_ALLOWED = {
    "prores": {".mov", ".mkv"},
    "vp9": {".webm", ".mkv"},
    "h264": {".mp4", ".m4v", ".mov", ".mkv"},
    "matte": {".mp4", ".m4v", ".mov", ".mkv", ".webm"},
}
#: Default output name, next to the input: clip.mp4 -> clip.matte.mov etc.
_DEFAULT_SUFFIX = {
    "prores": ".matte.mov",
    "vp9": ".matte.webm",
    "png": ".matte",
    "h264": ".matte.mp4",
    "matte": ".alpha.mp4",
}
#: Audio codecs each container takes as they are (anything else is re-encoded).
_AUDIO_COPY = {
    "mov": {"aac", "alac", "mp3", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be"},
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac"},
    "webm": {"opus", "vorbis"},
}
#: Re-encode target per container: PCM in .mov (what editors want), AAC in .mp4, Opus in .webm.
_AUDIO_ENCODE = {
    "mov": ["-c:a", "pcm_s16le"],
    "mp4": ["-c:a", "aac", "-b:a", "192k"],
    "webm": ["-c:a", "libopus", "-b:a", "128k"],
    "matroska": ["-c:a", "flac"],
}
_BT709 = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]


@dataclass(frozen=True)
class OutputFormat:
    """How to write one output.

    ``layout`` is what the pipeline hands the encoder per pixel: ``rgba`` (cut-out with alpha),
    ``rgb`` (composite) or ``gray`` (matte only). ``even`` says the frame must be padded to even sides.
    """

    codec: str
    path: Path
    muxer: str  # ffmpeg -f name; "image2" for PNG sequences
    layout: str
    encoder_args: list[str] = field(default_factory=list)
    even: bool = False

    @property
    def is_sequence(self) -> bool:
        return self.muxer == "image2"

    @property
    def pix_fmt(self) -> str:
        """Raw pixel format of the frames piped into the encoder."""
        return {"rgba": "rgba", "rgb": "rgb24", "gray": "gray"}[self.layout]

    @property
    def channels(self) -> int:
        return {"rgba": 4, "rgb": 3, "gray": 1}[self.layout]

    def audio_args(self, source_codec: str | None, trimmed: bool) -> list[str]:
        """Audio codec options: stream copy where the container takes the source codec as is (and the
        clip is not cut, where re-encoding gives sample-exact ends), otherwise a re-encode."""
        if source_codec is None or self.is_sequence:
            return []
        if self.muxer == "matroska" and not trimmed:
            return ["-c:a", "copy"]
        if not trimmed and source_codec in _AUDIO_COPY.get(self.muxer, set()):
            return ["-c:a", "copy"]
        return list(_AUDIO_ENCODE[self.muxer])


def resolve_output(
    source: Path, output: Path | None, codec: str | None, has_background: bool, width: int = 0
) -> OutputFormat:
    """Pick the codec from ``--codec`` or the output's extension, and the default output name.

    No output and no codec: ProRes 4444 with alpha in ``clip.matte.mov``, or with a background an H.264
    composite in ``clip.matte.mp4``. A path without an extension (or an existing folder) is a PNG sequence.
    ``width`` (of the frames) picks the ProRes encoder.
    """
    if codec is not None:
        codec = codec.lower()
        if codec not in CODECS:
            raise MatteError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    if output is None:
        codec = codec or ("h264" if has_background else "prores")
        output = source.with_name(source.stem + _DEFAULT_SUFFIX[codec])
    elif codec is None:
        codec = _codec_for_path(output, has_background)
    _check_combination(output, codec, has_background)
    return _build(codec, output, has_background, width)


def _codec_for_path(output: Path, has_background: bool) -> str:
    suffix = output.suffix.lower()
    if output.is_dir() or str(output).endswith(("/", "\\")) or not suffix:
        return "png"
    if suffix in (".mov",):
        return "prores"
    if suffix in (".webm", ".mkv"):
        return "vp9"
    if suffix in (".mp4", ".m4v"):
        if not has_background:
            raise MatteError(
                "MP4 (H.264) has no alpha channel: write .mov or .webm, add --bg for a composite, "
                "or use --codec matte for the matte alone",
                output,
            )
        return "h264"
    raise MatteError("unknown output type; use .mov, .webm, .mp4, .mkv or a folder for PNG frames", output)


def _check_combination(output: Path, codec: str, has_background: bool) -> None:
    if codec == "h264" and not has_background:
        raise MatteError("H.264 has no alpha channel: add --bg, or use --codec prores, vp9, png or matte")
    if codec == "matte" and has_background:
        raise MatteError("--codec matte writes the matte alone; it takes no --bg")
    if codec == "png":
        if output.exists() and not output.is_dir():
            raise MatteError("PNG frames go to a folder, but this is a file", output)
        return
    if output.is_dir():
        raise MatteError(f"is a folder; {codec} output needs a file name", output)
    if output.suffix.lower() not in _ALLOWED[codec]:
        allowed = ", ".join(sorted(_ALLOWED[codec]))
        raise MatteError(f"{codec} output needs one of these extensions: {allowed}", output)


def _build(codec: str, output: Path, has_background: bool, width: int) -> OutputFormat:
    muxer = "image2" if codec == "png" else _CONTAINERS[output.suffix.lower()]
    if codec == "png":
        layout = "rgb" if has_background else "rgba"
        return OutputFormat(codec, output, muxer, layout, ["-c:v", "png"])
    if codec == "matte":
        args, even = _matte_encoder(muxer, odd_width=width % 2 == 1)
        return OutputFormat(codec, output, muxer, "gray", args, even=even)
    layout = "rgb" if has_background else "rgba"
    if codec == "prores":
        args = _prores(alpha=not has_background, odd_width=width % 2 == 1)
    elif codec == "vp9":
        args = _vp9(alpha=not has_background)
    else:
        args = ["-c:v", "libx264", "-preset", "fast", "-crf", "18", *_yuv("yuv420p")]
    if muxer == "mp4":
        args += ["-movflags", "+faststart"]  # playable while downloading; ProRes .mov is for editing
    return OutputFormat(codec, output, muxer, layout, args, even=codec == "h264")


def _yuv(pix_fmt: str) -> list[str]:
    """Convert RGB to YUV with the BT.709 matrix (swscale would pick BT.601) and tag the stream so."""
    return ["-vf", f"scale=out_color_matrix=bt709:out_range=tv,format={pix_fmt}", *_BT709]


def _prores(alpha: bool, odd_width: bool) -> list[str]:
    """ProRes 4444 (ap4h) with alpha, or 422 HQ (apch) for composites.

    ffmpeg's ``prores_aw`` encoder needs a quarter of the CPU time of ``prores_ks`` (43 vs 178 ms per
    1080p frame here), which matters when the encoder shares the machine with the model, and codes the
    alpha as exactly; it only refuses odd widths, which go to ``prores_ks``. 'apl0' as vendor makes
    Apple's own decoders treat the file as theirs.
    """
    pix_fmt = "yuva444p10le" if alpha else "yuv422p10le"
    if odd_width:
        encoder = ["-c:v", "prores_ks", "-profile:v", "4444" if alpha else "hq"]
    else:
        encoder = ["-c:v", "prores_aw", "-profile:v", "4" if alpha else "3"]
    return [*encoder, "-vendor", "apl0", *_yuv(pix_fmt)]


def _vp9(alpha: bool) -> list[str]:
    # Constant quality (-b:v 0 -crf); cpu-used 4 with row multithreading keeps VP9 near real time.
    pix_fmt = "yuva420p" if alpha else "yuv420p"
    speed = ["-deadline", "good", "-cpu-used", "4", "-row-mt", "1"]
    return ["-c:v", "libvpx-vp9", "-crf", "28", "-b:v", "0", *speed, *_yuv(pix_fmt)]


def _matte_encoder(muxer: str, odd_width: bool) -> tuple[list[str], bool]:
    """Grayscale matte video: lossless FFV1 in .mkv, ProRes 422 HQ in .mov, VP9 in .webm and
    high-quality H.264 (even sides) in .mp4; gray maps to luma, so no colour matrix is involved."""
    if muxer == "matroska":
        return ["-c:v", "ffv1", "-pix_fmt", "gray"], False
    if muxer == "mov":
        encoder = ["prores_ks", "-profile:v", "hq"] if odd_width else ["prores_aw", "-profile:v", "3"]
        return ["-c:v", *encoder, "-vendor", "apl0", "-pix_fmt", "yuv422p10le"], False
    if muxer == "webm":
        return ["-c:v", "libvpx-vp9", "-crf", "20", "-b:v", "0", "-pix_fmt", "yuv420p"], False
    args = ["-c:v", "libx264", "-preset", "fast", "-crf", "12", "-pix_fmt", "yuv420p"]
    return [*args, "-movflags", "+faststart"], True
