"""What ``matte image`` writes for each input: the output options, the formats each kind of output fits,
and the names of outputs.

An output is one of three kinds: an RGBA cut-out (needs a format with alpha), a composite over a ``--bg``
(RGB: any format) or the matte alone (``--alpha-only``: grayscale, any format at 8 bits, PNG or TIFF at
16). Refusals name the formats that fit. Results next to their inputs carry a tag (``NAME.matte.png``,
``NAME.composite.jpg``, ``NAME.alpha.png``) and previews ``NAME.matte.preview.jpg``; those names are how a
later run recognises its own outputs (:func:`is_own_output`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mattecli.errors import UsageError
from mattecli.image.formats import ALPHA_SUFFIXES, FORMAT_NAMES, IMAGE_SUFFIXES, SIXTEEN_BIT_SUFFIXES
from mattecli.render import OUTPUT_TAGS

PREVIEW_SUFFIX = ".preview.jpg"


@dataclass(frozen=True)
class OutputOptions:
    """What to write for each image (the ``matte image`` flags)."""

    background: str | None = None  # colour name, hex or image path: write a composite
    alpha_only: bool = False  # write the matte as grayscale
    depth: int = 8  # bit depth of --alpha-only output (8 or 16)
    preview: bool = False  # also write OUT.preview.jpg beside each output: input | matte | cut-out
    decontaminate: bool = True  # estimate true foreground colours at soft edges
    keep_input_alpha: bool = True  # an input's own transparency multiplies the matte
    overwrite: bool = False
    extension: str | None = None  # output format for folder outputs and stdout (default .png)

    @property
    def kind(self) -> str:
        if self.alpha_only:
            return "alpha"
        return "composite" if self.background else "rgba"


def check_output_options(options: OutputOptions) -> None:
    """Reject contradictory flags and unwritable formats before any work starts."""
    if options.depth not in (8, 16):
        raise UsageError(f"--depth must be 8 or 16, got {options.depth}")
    if options.depth == 16 and not options.alpha_only:
        raise UsageError("--depth 16 applies to --alpha-only output")
    if options.alpha_only and options.background:
        raise UsageError("--alpha-only and --bg exclude each other")
    if options.extension is not None:
        ext = normal_extension(options.extension)
        refusal = format_refusal(ext, options)
        if refusal:
            raise UsageError(f"--format {options.extension}: {refusal}")


def normal_extension(text: str) -> str:
    """``png``, ``.PNG`` -> ``.png``; an unknown format is a one-line error listing the known ones."""
    ext = text.strip().lower()
    ext = ext if ext.startswith(".") else "." + ext
    if ext not in IMAGE_SUFFIXES:
        raise UsageError(f"unknown --format {text.strip().lstrip('.')}: use png, jpg, webp, tif or bmp")
    return ext


def allowed_formats(options: OutputOptions) -> frozenset[str]:
    """The suffixes that can hold this kind of output."""
    if options.kind == "rgba":
        return ALPHA_SUFFIXES
    if options.kind == "alpha" and options.depth == 16:
        return SIXTEEN_BIT_SUFFIXES
    return IMAGE_SUFFIXES  # a composite is RGB; an 8-bit matte is grayscale, which every format holds


def format_refusal(ext: str, options: OutputOptions) -> str | None:
    """Why ``ext`` cannot hold this output, and what can; None when it fits."""
    if ext in allowed_formats(options):
        return None
    if ext not in IMAGE_SUFFIXES:
        fits = ", ".join(sorted(allowed_formats(options) - {".jpeg", ".tiff"}))
        return f"cannot write {ext or 'a file without a suffix'}; use {fits}"
    name = FORMAT_NAMES[ext]
    if options.kind == "rgba":
        return (
            f"{name} has no alpha channel: use .png, .webp or .tif for a cut-out, "
            "or add --bg COLOUR for a composite, or --alpha-only for the matte"
        )
    return f"a 16-bit matte needs .png or .tif (an 8-bit --alpha-only matte fits {name} too)"


def same_format(extension: str, suffix: str) -> bool:
    """``--format jpg`` and ``NAME.jpeg`` agree."""
    return FORMAT_NAMES[normal_extension(extension)] == FORMAT_NAMES.get(suffix.lower())


def is_own_output(path: Path) -> bool:
    """Whether a file's name is one that ``matte image`` gives its results next to the inputs."""
    name = path.name.lower()
    if name.endswith(PREVIEW_SUFFIX):
        return "." in name[: -len(PREVIEW_SUFFIX)]  # NAME.matte.preview.jpg, not holiday.preview.jpg
    plain = Path(name)
    return plain.suffix in IMAGE_SUFFIXES and plain.stem.endswith(tuple(OUTPUT_TAGS.values()))


def preview_path(target: Path) -> Path:
    """Where the preview sheet of an output goes: ``a.matte.png`` -> ``a.matte.preview.jpg``."""
    return target.with_name(target.stem + PREVIEW_SUFFIX)
