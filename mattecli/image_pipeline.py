"""Batch image matting: inputs -> planned outputs -> one file each, with skips and failures counted.

This is what ``matte image`` runs, usable from Python too::

    from mattecli import Matter
    from mattecli.image_pipeline import OutputOptions, plan_jobs, prepare_background, run_jobs
    options = OutputOptions(background="beach.jpg")
    jobs = plan_jobs(["shots/"], "cut/", options)      # checks everything it can without the model
    backdrop = prepare_background(options.background)  # decoded once, up front
    summary = run_jobs(Matter(), jobs, options, backdrop=backdrop)

Planning decides everything that can be decided without the model, so that a mistake costs no matting and
leaves nothing behind: contradictory options, an output format that cannot hold the result, ``-o`` naming
one file for several images, an output that would replace an input (same path, symlink or hard link), and,
for a single file named on the command line, an output that exists already.

Rules (issue 14):

- ``-o`` is a file when its name has a suffix, a folder when it ends in ``/``, has no suffix or is an
  existing folder, and stdout when it is ``-``. Input ``-`` is one image read from stdin; it writes to
  stdout unless ``-o`` says otherwise.
- Files that ``matte image`` writes (``NAME.matte.EXT``, ``NAME.composite.EXT``, ``NAME.alpha.EXT``,
  ``NAME.*.preview.jpg``, and whatever this run is about to write) are never inputs when found by
  expanding a folder or a glob, so reruns do not matte their own results. A file named explicitly is an
  input whatever its name.
- Results get the tagged names (``NAME.matte.png``) when they go next to the inputs, with no ``-o`` or
  with an output folder that holds inputs; a separate output folder mirrors the inputs' names.
- A single image file (or stdin) named on the command line whose output exists is an error; batches
  (folders, globs, several inputs) skip existing outputs, so a rerun finishes what is left. The preview
  sheet counts as an output.
- An input's own transparency is kept (it multiplies the matte, so a cut-out stays cut out) unless
  ``keep_input_alpha=False`` (``--ignore-input-alpha``).

A bad file in a batch is reported and skipped so that a run over 2,000 product shots finishes; the
summary's ``failed`` list says which files failed and why.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mattecli.errors import MatteError

if TYPE_CHECKING:
    from mattecli.media import LoadedImage

#: Tags in the default output names, by kind of output.
OUTPUT_TAGS = {"rgba": ".matte", "composite": ".composite", "alpha": ".alpha"}
PREVIEW_SUFFIX = ".preview.jpg"
#: Stand-ins for the standard streams in jobs and messages (``-`` on the command line).
STDIN = Path("<stdin>")
STDOUT = Path("<stdout>")

_FORMAT_NAMES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WebP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_ALL_FORMATS = frozenset(_FORMAT_NAMES)
_ALPHA_CAPABLE = frozenset({".png", ".webp", ".tif", ".tiff"})
_SIXTEEN_BIT = frozenset({".png", ".tif", ".tiff"})


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


@dataclass(frozen=True)
class ImageJob:
    """One input and where its result goes. ``strict``: the input is a single file (or stdin) named on
    the command line, so an existing output is an error rather than a skip. ``image`` holds an input that
    was decoded while planning (stdin, which can be read only once)."""

    source: Path
    target: Path
    strict: bool = False
    image: LoadedImage | None = field(default=None, compare=False, repr=False)

    def files(self, options: OutputOptions) -> tuple[Path, ...]:
        """Every file this job writes: the result and, with ``--preview``, its preview sheet."""
        if self.target == STDOUT or not options.preview:
            return (self.target,)
        return (self.target, preview_path(self.target))


@dataclass
class BatchSummary:
    """Counts for the end-of-run summary; ``failed`` holds (path, one-line reason)."""

    done: int = 0
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Source:
    path: Path
    relative: Path  # place below the folder or glob it was found in (mirrored in an output folder)
    explicit: bool  # named on the command line, not found by expanding a folder or glob
    image: LoadedImage | None = field(default=None, compare=False, repr=False)  # stdin, decoded


# -- options ----------------------------------------------------------------------------------------


def check_options(options: OutputOptions) -> None:
    """Reject contradictory flags and unwritable formats before any work starts."""
    if options.depth not in (8, 16):
        raise MatteError(f"--depth must be 8 or 16, got {options.depth}")
    if options.depth == 16 and not options.alpha_only:
        raise MatteError("--depth 16 applies to --alpha-only output")
    if options.alpha_only and options.background:
        raise MatteError("--alpha-only and --bg exclude each other")
    if options.extension is not None:
        ext = normal_extension(options.extension)
        refusal = format_refusal(ext, options)
        if refusal:
            raise MatteError(f"--format {options.extension}: {refusal}")


def normal_extension(text: str) -> str:
    """``png``, ``.PNG`` -> ``.png``; an unknown format is a one-line error listing the known ones."""
    ext = text.strip().lower()
    ext = ext if ext.startswith(".") else "." + ext
    if ext not in _ALL_FORMATS:
        raise MatteError(f"unknown --format {text.strip().lstrip('.')}: use png, jpg, webp, tif or bmp")
    return ext


def allowed_formats(options: OutputOptions) -> frozenset[str]:
    """The suffixes that can hold this kind of output."""
    if options.kind == "rgba":
        return _ALPHA_CAPABLE
    if options.kind == "alpha" and options.depth == 16:
        return _SIXTEEN_BIT
    return _ALL_FORMATS  # a composite is RGB; an 8-bit matte is grayscale, which every format holds


def format_refusal(ext: str, options: OutputOptions) -> str | None:
    """Why ``ext`` cannot hold this output, and what can; None when it fits."""
    if ext in allowed_formats(options):
        return None
    if ext not in _ALL_FORMATS:
        fits = ", ".join(sorted(allowed_formats(options) - {".jpeg", ".tiff"}))
        return f"cannot write {ext or 'a file without a suffix'}; use {fits}"
    name = _FORMAT_NAMES[ext]
    if options.kind == "rgba":
        return (
            f"{name} has no alpha channel: use .png, .webp or .tif for a cut-out, "
            "or add --bg COLOUR for a composite, or --alpha-only for the matte"
        )
    return f"a 16-bit matte needs .png or .tif (an 8-bit --alpha-only matte fits {name} too)"


# -- backgrounds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backdrop:
    """A ``--bg`` ready to use: one colour, or an image decoded once for the whole batch."""

    colour: tuple[float, float, float] | None = None
    image: np.ndarray | None = field(default=None, compare=False, repr=False)

    def fill(self, height: int, width: int) -> np.ndarray:
        """The background for an image of this size (an image is cover-resized, never stretched)."""
        if self.image is None:
            return np.broadcast_to(np.asarray(self.colour, np.float32), (height, width, 3))
        from mattecli.compositing import cover_resize

        return cover_resize(self.image, (height, width))


def prepare_background(spec: str) -> Backdrop:
    """Check ``--bg`` and decode a background image now, before the model loads and before any image is
    matted, so that a missing or broken file is one error up front rather than one per image."""
    from mattecli.compositing import NAMED_COLOURS, parse_color
    from mattecli.media import IMAGE_SUFFIXES, read_image

    try:
        return Backdrop(colour=parse_color(spec))
    except MatteError:
        if spec.strip().lower() in ("transparent", "none"):
            raise
    path = Path(spec).expanduser()
    if path.is_dir():
        raise MatteError("--bg is a folder; give an image file or a colour", path)
    if path.is_file():
        try:
            return Backdrop(image=read_image(path).rgb)
        except MatteError as error:
            raise MatteError(f"{error} (--bg)") from None
    if path.suffix.lower() in IMAGE_SUFFIXES or "/" in spec or os.sep in spec:
        raise MatteError("no such file (--bg)", path)
    names = ", ".join(sorted(NAMED_COLOURS))
    raise MatteError(
        f"--bg is not a colour or an image file; use a colour name ({names}), #rgb, #rrggbb or an image file",
        spec,
    )


# -- planning ---------------------------------------------------------------------------------------


def is_own_output(path: Path) -> bool:
    """Whether a file's name is one that ``matte image`` gives its results next to the inputs."""
    name = path.name.lower()
    if name.endswith(PREVIEW_SUFFIX):
        return "." in name[: -len(PREVIEW_SUFFIX)]  # NAME.matte.preview.jpg, not holiday.preview.jpg
    plain = Path(name)
    return plain.suffix in _ALL_FORMATS and plain.stem.endswith(tuple(OUTPUT_TAGS.values()))


def preview_path(target: Path) -> Path:
    """Where the preview sheet of an output goes: ``a.matte.png`` -> ``a.matte.preview.jpg``."""
    return target.with_name(target.stem + PREVIEW_SUFFIX)


def plan_jobs(inputs: list[str], output: str | Path | None, options: OutputOptions) -> list[ImageJob]:
    """Map inputs (files, folders, globs, ``-``) to output paths, refusing what cannot work.

    ``output``: None (next to the inputs), ``-`` (stdout), a file or a folder: see the module docstring
    for how the name decides. Pass it as the user wrote it: a trailing ``/`` matters. Raises MatteError
    for anything the run would otherwise find out only after loading the model.
    """
    check_options(options)
    text = None if output is None else os.fspath(output)
    to_stdout = text == "-" or (text is None and "-" in inputs)
    if to_stdout and sys.stdout.isatty():
        raise MatteError(
            "will not write image bytes to a terminal: redirect stdout (> out.png), pipe it (| ...), "
            "or give -o FILE"
        )
    sources = _stdin_source(inputs) if "-" in inputs else _collect(inputs)
    single = len(inputs) == 1 and sources[0].explicit
    if to_stdout:
        jobs = [_stdout_job(sources, options)]
    elif text is not None and _names_a_file(text):
        jobs = [_file_job(sources, Path(text), options, single)]
    else:
        jobs, sources = _folder_jobs(sources, None if text is None else Path(text), options, single)
    _refuse_replacing_inputs(jobs, sources, options)
    if not options.overwrite:
        _refuse_existing(jobs, options)
    return jobs


def _stdin_source(inputs: list[str]) -> list[_Source]:
    if len(inputs) > 1:
        raise MatteError("- (stdin) must be the only input")
    return [_Source(STDIN, Path("stdin"), explicit=True, image=_read_stdin())]


def _collect(inputs: list[str]) -> list[_Source]:
    """Expand every argument; drop our own outputs from what folders and globs found."""
    from mattecli.media import collect_inputs

    found: dict[Path, _Source] = {}
    for text in inputs:
        explicit = Path(text).expanduser().is_file()
        pairs = collect_inputs([text])
        kept = [pair for pair in pairs if explicit or not is_own_output(pair[0])]
        if not kept:
            raise MatteError(
                "holds only outputs of matte image (NAME.matte.png, ...); name a file to matte it again", text
            )
        for path, relative in kept:
            found.setdefault(_identity(path), _Source(path, relative, explicit))
    return sorted(found.values(), key=lambda s: (str(s.path).lower(), str(s.path)))


def _names_a_file(text: str) -> bool:
    """A suffix means a file; a trailing slash, no suffix or an existing folder mean a folder."""
    path = Path(text).expanduser()
    return not (text.endswith(("/", os.sep)) or path.suffix == "" or path.is_dir())


def _stdout_job(sources: list[_Source], options: OutputOptions) -> ImageJob:
    if len(sources) > 1:
        raise MatteError(
            f"-o - writes one image to stdout but {len(sources)} images were given; give a folder"
        )
    if options.preview:
        raise MatteError("--preview needs a file or folder output, not stdout")
    return _job(sources[0], STDOUT, strict=True)


def _file_job(sources: list[_Source], target: Path, options: OutputOptions, single: bool) -> ImageJob:
    if len(sources) > 1:
        raise MatteError(
            f"-o {target} names one file but {len(sources)} images were given; give a folder "
            f"(-o {target.with_suffix('')}/)"
        )
    refusal = format_refusal(target.suffix.lower(), options)
    if refusal:
        raise MatteError(refusal, target)
    if options.extension is not None and not _same_format(options.extension, target.suffix):
        raise MatteError(
            f"--format {options.extension} is for folder outputs and stdout; -o {target} is a file"
        )
    return _job(sources[0], target, strict=single)


def _same_format(extension: str, suffix: str) -> bool:
    """``--format jpg`` and ``NAME.jpeg`` agree."""
    return _FORMAT_NAMES[normal_extension(extension)] == _FORMAT_NAMES.get(suffix.lower())


def _folder_jobs(
    sources: list[_Source], folder: Path | None, options: OutputOptions, single: bool
) -> tuple[list[ImageJob], list[_Source]]:
    """One job per source, in ``folder`` (mirroring sub-folders) or next to each source (``None``); also
    returns the sources that remain inputs.

    Sources found by expansion that this run would itself write are earlier results in an output folder
    inside the inputs: they are dropped, repeatedly, until the plan is stable. Results are tagged when
    they go next to inputs.
    """
    ext = normal_extension(options.extension or "png")
    while True:
        jobs = _targets(sources, folder, options.kind, ext, tagged=folder is None)
        written = {_identity(path) for job in jobs for path in (job.target, preview_path(job.target))}
        kept = [s for s in sources if s.explicit or _identity(s.path) not in written]
        if len(kept) == len(sources):
            break
        sources = kept
    if folder is not None and any(_is_within(s.path, folder) for s in sources):
        jobs = _targets(sources, folder, options.kind, ext, tagged=True)
    return [ImageJob(job.source, job.target, strict=single, image=job.image) for job in jobs], sources


def _targets(
    sources: list[_Source], folder: Path | None, kind: str, ext: str, tagged: bool
) -> list[ImageJob]:
    """Output paths; ``x.jpg`` and ``x.png`` that would share one get their source format in the name
    (``x-jpg.matte.png``, ``x-png.matte.png``), before the tag so that the name still reads as ours."""
    tag = OUTPUT_TAGS[kind] if tagged else ""

    def place(source: _Source) -> tuple[Path, str]:
        parent = source.path.parent if folder is None else (folder / source.relative).parent
        return parent, Path(source.relative.name).stem

    places = [place(source) for source in sources]
    counts = Counter(parent / (stem + tag + ext) for parent, stem in places)
    jobs = []
    for source, (parent, stem) in zip(sources, places, strict=True):
        if counts[parent / (stem + tag + ext)] > 1:
            stem = f"{stem}-{source.path.suffix.lstrip('.').lower()}"
        jobs.append(_job(source, parent / (stem + tag + ext)))
    return jobs


def _job(source: _Source, target: Path, strict: bool = False) -> ImageJob:
    return ImageJob(source.path, target, strict=strict, image=source.image)


def _read_stdin() -> LoadedImage:
    """Read and decode the piped image now: stdin can be read once, and garbage is found before the
    model loads."""
    from mattecli.media import decode_image

    if sys.stdin is None or sys.stdin.isatty():
        raise MatteError("is a terminal: pipe an image in (cat photo.jpg | matte image -)", STDIN)
    return decode_image(sys.stdin.buffer.read(), str(STDIN))


def _refuse_replacing_inputs(jobs: list[ImageJob], sources: list[_Source], options: OutputOptions) -> None:
    """No output may be an input: not the same path, not through a symlink, not a hard link to it."""
    paths = {_identity(s.path): s.path for s in sources if s.path != STDIN}
    inodes = {_inode(s.path): s.path for s in sources if s.path != STDIN}
    inodes.pop(None, None)
    for job in jobs:
        for target in job.files(options):
            if target == STDOUT:
                continue
            replaced = paths.get(_identity(target)) or inodes.get(_inode(target))
            if replaced is not None:
                raise MatteError(f"output would replace an input ({replaced}); choose another -o", target)


def _refuse_existing(jobs: list[ImageJob], options: OutputOptions) -> None:
    """A single file named on the command line must not silently skip: say that its output exists."""
    for job in jobs:
        if not job.strict:
            continue
        for target in job.files(options):
            if target != STDOUT and (target.exists() or target.is_symlink()):
                raise MatteError("exists (use --overwrite)", target)


def _identity(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _is_within(path: Path, folder: Path) -> bool:
    try:
        _identity(path).relative_to(_identity(folder))
    except ValueError:
        return False
    return True


# -- running ----------------------------------------------------------------------------------------


def run_jobs(
    matter,
    jobs: list[ImageJob],
    options: OutputOptions,
    on_progress: Callable[[ImageJob, str], None] | None = None,
    backdrop: Backdrop | None = None,
    on_tile: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Process every job; existing outputs are skipped unless ``overwrite``; failures are collected.

    A job is skipped when any file it would write exists (the result, or the preview sheet with
    ``--preview``). ``on_progress(job, status)`` is called after each job with status "done", "skipped"
    or "failed". ``backdrop``: a prepared ``--bg`` (prepared here when None). ``on_tile(done, total)`` is
    called after each full-resolution refinement tile of the image being matted (for a progress bar).
    """
    if options.background and backdrop is None:
        backdrop = prepare_background(options.background)
    summary = BatchSummary()
    start = time.perf_counter()
    for job in jobs:
        existing = [path for path in job.files(options) if path != STDOUT and path.exists()]
        if existing and not options.overwrite:
            summary.skipped.append(existing[0])
            status = "skipped"
        else:
            try:
                process_image(matter, job, options, backdrop, on_tile)
                summary.done += 1
                status = "done"
            except MatteError as exc:
                summary.failed.append((job.source, str(exc)))
                status = "failed"
        if on_progress is not None:
            on_progress(job, status)
    summary.seconds = time.perf_counter() - start
    return summary


def process_image(
    matter,
    job: ImageJob,
    options: OutputOptions,
    backdrop: Backdrop | None = None,
    on_tile: Callable[[int, int], None] | None = None,
) -> None:
    """Matte one image and write its output(s) atomically.

    Everything is encoded in memory before the first byte is written, so an image that fails leaves no
    file and no folder behind.
    """
    from mattecli import media

    if options.background and backdrop is None:
        backdrop = prepare_background(options.background)
    image = job.image if job.image is not None else media.read_image(job.source)
    try:
        result = matter.matte(
            image,
            decontaminate=options.decontaminate,
            keep_input_alpha=options.keep_input_alpha,
            on_tile=on_tile,
        )
    except (ValueError, RuntimeError, MemoryError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise MatteError(f"could not process image ({reason})", job.source) from None
    suffix = normal_extension(options.extension or "png") if job.target == STDOUT else job.target.suffix
    data = encode_result(result, options, suffix, backdrop, name=job.target)
    sheet = None
    if options.preview:
        from mattecli.compositing import preview_sheet

        sheet = media.encode_rgb(preview_sheet(result.pixels, result.alpha, result.foreground_pixels), ".jpg")
    if job.target == STDOUT:
        write_stdout(data)
        return
    write_file(job.target, data, options.overwrite)
    if sheet is not None:
        write_file(preview_path(job.target), sheet, options.overwrite)


def encode_result(
    result, options: OutputOptions, suffix: str, backdrop: Backdrop | None = None, name: Path | None = None
) -> bytes:
    """The requested output of one :class:`~mattecli.inference.MatteResult`, encoded as ``suffix``."""
    from mattecli import media
    from mattecli.compositing import composite

    if options.alpha_only:
        return media.encode_alpha(result.alpha, suffix, depth=options.depth, name=name)
    if options.background:
        backdrop = backdrop or prepare_background(options.background)
        height, width = result.alpha.shape
        picture = composite(
            result.foreground_pixels, result.alpha, backdrop.fill(height, width), dtype=np.uint8
        )
        return media.encode_rgb(picture, suffix, name=name)
    return media.encode_rgba(result.foreground_pixels, result.alpha, suffix, name=name)


def write_file(path: Path, data: bytes, overwrite: bool) -> None:
    """Write encoded bytes atomically (a hidden temporary file, then a move; folders made as needed)."""
    from mattecli.atomic import atomic_output, describe_error

    with atomic_output(path, overwrite) as temporary:
        try:
            temporary.write_bytes(data)
        except OSError as error:
            raise MatteError(f"cannot write ({describe_error(error)})", path) from None


def write_stdout(data: bytes) -> None:
    """Write the image bytes, and nothing else, to stdout."""
    stream = sys.stdout.buffer
    try:
        stream.write(data)
        stream.flush()
    except BrokenPipeError:
        # The reader went away. Point stdout at /dev/null so that Python's own flush at exit does not
        # complain a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise MatteError("the program reading the output stopped (broken pipe)", STDOUT) from None
