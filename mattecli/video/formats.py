"""Which file to write and how: codec, container, pixel layout and audio handling for each output kind.

Every output codec is one :class:`Codec` record in :data:`CODEC_TABLE`; the choice by extension, the
default output names, the allowed containers, the encoder arguments and the texts of ``matte video``
(``--codec`` help, the summary line) are all derived from it, so adding a codec is adding a record.
``matte video --help`` lists them.

Audio is copied where the container takes the source's codec, otherwise re-encoded (PCM in .mov, AAC
in .mp4, Opus in .webm, FLAC in .mkv); PNG sequences have none.

Colour conversions to YUV use the BT.709 matrix and the streams are tagged so, which is what editors and
players assume for HD material. H.264 in 4:2:0 cannot code odd frame sizes, so an odd-sized clip is padded
by one pixel (the edge repeated) for that codec only; every other codec keeps the exact size.

Only the standard library is imported here: the command line builds its help from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mattecli.errors import MatteError, UsageError

#: ffmpeg muxer per container extension.
_CONTAINERS = {".mov": "mov", ".mp4": "mp4", ".m4v": "mp4", ".webm": "webm", ".mkv": "matroska"}
#: Options for every stream written to a muxer: MP4 plays while downloading (index first).
_MUXER_ARGS = {"mp4": ["-movflags", "+faststart"]}
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

#: (muxer, composite, odd width) -> ffmpeg video encoder arguments.
EncoderArgs = Callable[[str, bool, bool], list[str]]


@dataclass(frozen=True)
class Codec:
    """One output codec.

    ``suffixes`` are the containers it may be written in (none: a folder of PNG frames); ``chosen_by`` the
    extensions that pick it when ``--codec`` is not given ("" for a folder); ``background`` whether
    ``--bg`` is ``"never"``, ``"optional"`` or ``"required"`` with it; ``layout`` the pixels the encoder
    gets (``"colour"``: RGBA, or RGB with ``--bg``; ``"gray"``: the matte alone); ``alpha`` whether the
    written video keeps transparency; ``written`` the summary's words without and with ``--bg``.
    """

    name: str
    label: str
    help: str
    suffixes: tuple[str, ...]
    chosen_by: tuple[str, ...]
    default_suffix: str
    background: str
    layout: str
    alpha: bool
    written: tuple[str, str]
    encoder: EncoderArgs

    @property
    def sequence(self) -> bool:
        return not self.suffixes


def _yuv(pix_fmt: str) -> list[str]:
    """Convert RGB to YUV with the BT.709 matrix (swscale would pick BT.601) and tag the stream so."""
    return ["-vf", f"scale=out_color_matrix=bt709:out_range=tv,format={pix_fmt}", *_BT709]


def _prores_encoder(alpha: bool, odd_width: bool) -> list[str]:
    """``prores_aw`` needs a quarter of the CPU time of ``prores_ks`` (43 vs 178 ms per 1080p frame here),
    which matters when the encoder shares the machine with the model, and codes the alpha as exactly; it
    only refuses odd widths, which go to ``prores_ks``. 'apl0' as vendor makes Apple's own decoders treat
    the file as theirs."""
    if odd_width:
        encoder = ["-c:v", "prores_ks", "-profile:v", "4444" if alpha else "hq"]
    else:
        encoder = ["-c:v", "prores_aw", "-profile:v", "4" if alpha else "3"]
    return [*encoder, "-vendor", "apl0"]


def _prores(muxer: str, composite: bool, odd_width: bool) -> list[str]:
    """ProRes 4444 (ap4h) with alpha, or 422 HQ (apch) for composites."""
    pix_fmt = "yuv422p10le" if composite else "yuva444p10le"
    return [*_prores_encoder(not composite, odd_width), *_yuv(pix_fmt)]


def _vp9(muxer: str, composite: bool, odd_width: bool) -> list[str]:
    # Constant quality (-b:v 0 -crf); cpu-used 4 with row multithreading keeps VP9 near real time.
    pix_fmt = "yuv420p" if composite else "yuva420p"
    speed = ["-deadline", "good", "-cpu-used", "4", "-row-mt", "1"]
    return ["-c:v", "libvpx-vp9", "-crf", "28", "-b:v", "0", *speed, *_yuv(pix_fmt)]


def _png(muxer: str, composite: bool, odd_width: bool) -> list[str]:
    return ["-c:v", "png"]


def _h264(muxer: str, composite: bool, odd_width: bool) -> list[str]:
    return ["-c:v", "libx264", "-preset", "fast", "-crf", "18", *_yuv("yuv420p")]


def _matte(muxer: str, composite: bool, odd_width: bool) -> list[str]:
    """Grayscale matte video: lossless FFV1 in .mkv, ProRes 422 HQ in .mov, VP9 in .webm and
    high-quality H.264 in .mp4; gray maps to luma, so no colour matrix is involved."""
    if muxer == "matroska":
        return ["-c:v", "ffv1", "-pix_fmt", "gray"]
    if muxer == "mov":
        return [*_prores_encoder(False, odd_width), "-pix_fmt", "yuv422p10le"]
    if muxer == "webm":
        return ["-c:v", "libvpx-vp9", "-crf", "20", "-b:v", "0", "-pix_fmt", "yuv420p"]
    return ["-c:v", "libx264", "-preset", "fast", "-crf", "12", "-pix_fmt", "yuv420p"]


_RECORDS = (
    Codec(
        name="prores",
        label="ProRes",
        help="4444 + alpha",
        suffixes=(".mov", ".mkv"),
        chosen_by=(".mov",),
        default_suffix=".matte.mov",
        background="optional",
        layout="colour",
        alpha=True,
        written=("ProRes 4444 with alpha", "ProRes 422 HQ composite"),
        encoder=_prores,
    ),
    Codec(
        name="vp9",
        label="VP9",
        help="+ alpha",
        suffixes=(".webm", ".mkv"),
        chosen_by=(".webm", ".mkv"),
        default_suffix=".matte.webm",
        background="optional",
        layout="colour",
        alpha=True,
        written=("VP9 with alpha", "VP9 composite"),
        encoder=_vp9,
    ),
    Codec(
        name="png",
        label="PNG",
        help="frames",
        suffixes=(),
        chosen_by=("",),
        default_suffix=".matte",
        background="optional",
        layout="colour",
        alpha=True,
        written=("RGBA PNG frames", "RGB PNG frames (composite)"),
        encoder=_png,
    ),
    Codec(
        name="h264",
        label="H.264",
        help="composite",
        suffixes=(".mp4", ".m4v", ".mov", ".mkv"),
        chosen_by=(".mp4", ".m4v"),
        default_suffix=".matte.mp4",
        background="required",
        layout="colour",
        alpha=False,
        written=("H.264", "H.264 composite"),
        encoder=_h264,
    ),
    Codec(
        name="matte",
        label="matte",
        help="grayscale matte alone",
        suffixes=(".mp4", ".m4v", ".mov", ".mkv", ".webm"),
        chosen_by=(),
        default_suffix=".alpha.mp4",
        background="never",
        layout="gray",
        alpha=False,
        written=("grayscale matte", "grayscale matte"),
        encoder=_matte,
    ),
)
CODEC_TABLE: dict[str, Codec] = {codec.name: codec for codec in _RECORDS}
#: The codec names, in the order the help lists them.
CODECS = tuple(CODEC_TABLE)
#: Which codec an extension picks when --codec is not given ("" is a folder: PNG frames).
_CHOSEN_BY = {suffix: codec for codec in CODEC_TABLE.values() for suffix in codec.chosen_by}


def codec_help() -> str:
    """The ``--codec`` help: every codec with what it writes."""
    names = [f"{codec.name} ({codec.help})" for codec in CODEC_TABLE.values()]
    return f"{', '.join(names[:-1])} or {names[-1]}; default: from the output's extension."


def _either(items: list[str]) -> str:
    return f"{', '.join(items[:-1])} or {items[-1]}" if len(items) > 1 else items[0]


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

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """Width and height of the written frames: the input's, padded to even sides where needed."""
        if self.even:
            return width + width % 2, height + height % 2
        return width, height

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
        if codec not in CODEC_TABLE:
            raise UsageError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    if output is None:
        codec = codec or ("h264" if has_background else "prores")
        output = source.with_name(source.stem + CODEC_TABLE[codec].default_suffix)
    elif codec is None:
        codec = _codec_for_path(output, has_background)
    spec = CODEC_TABLE[codec]
    _check_combination(output, spec, has_background)
    return _build(spec, output, has_background, width)


def _codec_for_path(output: Path, has_background: bool) -> str:
    is_folder = output.is_dir() or str(output).endswith(("/", "\\")) or not output.suffix
    suffix = "" if is_folder else output.suffix.lower()
    codec = _CHOSEN_BY.get(suffix)
    if codec is None:
        known = [claimed for claimed in _CHOSEN_BY if claimed]
        raise MatteError(f"unknown output type; use {', '.join(known)} or a folder for PNG frames", output)
    if codec.background == "required" and not has_background:
        with_alpha = [s for c in CODEC_TABLE.values() if c.alpha for s in c.chosen_by if s]
        raise MatteError(
            f"{_CONTAINERS[suffix].upper()} ({codec.label}) has no alpha channel: "
            f"write {_either(with_alpha)}, add --bg for a composite, or use --codec matte for the matte alone",
            output,
        )
    return codec.name


def _check_combination(output: Path, codec: Codec, has_background: bool) -> None:
    if codec.background == "required" and not has_background:
        others = [c.name for c in CODEC_TABLE.values() if c.background != "required"]
        raise MatteError(f"{codec.label} has no alpha channel: add --bg, or use --codec {_either(others)}")
    if codec.background == "never" and has_background:
        raise UsageError(f"--codec {codec.name} writes the {codec.label} alone; it takes no --bg")
    if codec.sequence:
        if output.exists() and not output.is_dir():
            raise MatteError(f"{codec.label} frames go to a folder, but this is a file", output)
        return
    if output.is_dir():
        raise MatteError(f"is a folder; {codec.name} output needs a file name", output)
    if output.suffix.lower() not in codec.suffixes:
        allowed = ", ".join(sorted(codec.suffixes))
        raise MatteError(f"{codec.name} output needs one of these extensions: {allowed}", output)


def _build(codec: Codec, output: Path, has_background: bool, width: int) -> OutputFormat:
    muxer = "image2" if codec.sequence else _CONTAINERS[output.suffix.lower()]
    composite = has_background and codec.layout != "gray"
    layout = "gray" if codec.layout == "gray" else ("rgb" if composite else "rgba")
    args = [*codec.encoder(muxer, composite, width % 2 == 1), *_MUXER_ARGS.get(muxer, [])]
    return OutputFormat(codec.name, output, muxer, layout, args, even=_needs_even_size(args))


def _needs_even_size(encoder_args: list[str]) -> bool:
    """x264 codes 4:2:0 only (as we use it), which cannot represent odd frame sides."""
    return "libx264" in encoder_args
