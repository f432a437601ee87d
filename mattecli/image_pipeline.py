"""Batch image matting: inputs -> planned outputs -> one file each, with skips and failures counted.

This is what ``matte image`` runs, usable from Python too::

    from mattecli import Matter
    from mattecli.image_pipeline import OutputOptions, plan_jobs, run_jobs
    jobs = plan_jobs(["shots/"], Path("cut/"), OutputOptions())
    summary = run_jobs(Matter(), jobs, OutputOptions())

A bad file is reported and skipped so that a run over 2,000 product shots finishes; the summary's
``failed`` list says which files failed and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mattecli.errors import MatteError

#: Suffixes that the default output names use, by kind of output.
OUTPUT_TAGS = {"rgba": ".matte", "composite": ".composite", "alpha": ".alpha"}
ALPHA_CAPABLE = {".png", ".webp", ".tif", ".tiff"}
COMPOSITE_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


@dataclass(frozen=True)
class OutputOptions:
    """What to write for each image (the ``matte image`` flags)."""

    background: str | None = None  # colour name, hex or image path: write a composite
    alpha_only: bool = False  # write the matte as grayscale
    depth: int = 8  # bit depth of --alpha-only output (8 or 16)
    preview: bool = False  # also write NAME.preview.jpg: input | matte | cut-out on a checkerboard
    decontaminate: bool = True  # estimate true foreground colours at soft edges
    overwrite: bool = False
    extension: str | None = None  # output format for folder outputs (default .png)

    @property
    def kind(self) -> str:
        if self.alpha_only:
            return "alpha"
        return "composite" if self.background else "rgba"


@dataclass(frozen=True)
class ImageJob:
    """One input file and where its result goes."""

    source: Path
    target: Path


@dataclass
class BatchSummary:
    """Counts for the end-of-run summary; ``failed`` holds (path, one-line reason)."""

    done: int = 0
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def check_options(options: OutputOptions) -> None:
    """Reject contradictory flags before any work starts."""
    if options.depth not in (8, 16):
        raise MatteError(f"--depth must be 8 or 16, got {options.depth}")
    if options.depth == 16 and not options.alpha_only:
        raise MatteError("--depth 16 applies to --alpha-only output")
    if options.alpha_only and options.background:
        raise MatteError("--alpha-only and --bg exclude each other")


def plan_jobs(inputs: list[str], output: Path | None, options: OutputOptions) -> list[ImageJob]:
    """Map inputs (files, folders, globs) to output paths.

    One input file and an output that is not an existing folder: the output is that file. Otherwise the
    output is a folder mirroring the inputs' sub-folders (default: next to each input, with a
    ``.matte``/``.composite``/``.alpha`` tag in the name so the input is never overwritten).
    """
    from mattecli.media import collect_inputs

    check_options(options)
    sources = collect_inputs(inputs)
    if output is not None:
        sources = [(s, rel) for s, rel in sources if not _is_inside(s, output)]
    if not sources:
        raise MatteError("no images to process", output)
    single_file = len(sources) == 1 and Path(inputs[0]).is_file() and len(inputs) == 1
    ext = _default_extension(options)
    if output is not None and single_file and not output.is_dir() and not _looks_like_dir(output):
        _check_extension(output, options)
        return [ImageJob(sources[0][0], output)]
    jobs = [
        ImageJob(source, _target_for(source, relative, output, options.kind, ext))
        for source, relative in sources
    ]
    return _disambiguate(jobs)


def _target_for(source: Path, relative: Path, output: Path | None, kind: str, ext: str) -> Path:
    if output is None:
        return source.with_name(source.stem + OUTPUT_TAGS[kind] + ext)
    return (output / relative).with_suffix(ext)


def _disambiguate(jobs: list[ImageJob]) -> list[ImageJob]:
    """``x.jpg`` and ``x.png`` in one folder would both become ``x.png``: give each of them its source
    format in the name (``x-jpg.png``, ``x-png.png``) instead of letting one overwrite the other."""
    counts: dict[Path, int] = {}
    for job in jobs:
        counts[job.target] = counts.get(job.target, 0) + 1
    return [
        ImageJob(
            job.source, job.target.with_stem(f"{job.target.stem}-{job.source.suffix.lstrip('.').lower()}")
        )
        if counts[job.target] > 1
        else job
        for job in jobs
    ]


def run_jobs(
    matter,
    jobs: list[ImageJob],
    options: OutputOptions,
    on_progress: Callable[[ImageJob, str], None] | None = None,
) -> BatchSummary:
    """Process every job; existing outputs are skipped unless ``overwrite``; failures are collected.

    ``on_progress(job, status)`` is called after each job with status "done", "skipped" or "failed".
    """
    summary = BatchSummary()
    start = time.perf_counter()
    for job in jobs:
        if job.target.exists() and not options.overwrite:
            summary.skipped.append(job.target)
            status = "skipped"
        else:
            try:
                process_image(matter, job, options)
                summary.done += 1
                status = "done"
            except MatteError as exc:
                summary.failed.append((job.source, str(exc)))
                status = "failed"
        if on_progress is not None:
            on_progress(job, status)
    summary.seconds = time.perf_counter() - start
    return summary


def process_image(matter, job: ImageJob, options: OutputOptions) -> None:
    """Matte one file and write its output(s) atomically."""
    from mattecli import media

    try:
        result = matter.matte(job.source, decontaminate=options.decontaminate)
    except (ValueError, RuntimeError, MemoryError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise MatteError(f"could not process image ({reason})", job.source) from None
    _ensure_folder(job.target.parent)
    overwrite = options.overwrite
    if options.alpha_only:
        media.write_alpha(job.target, result.alpha, depth=options.depth, overwrite=overwrite)
    elif options.background:
        media.write_rgb(job.target, result.composite(options.background), overwrite=overwrite)
    else:
        media.write_rgba_png(job.target, result.foreground, result.alpha, overwrite=overwrite)
    if options.preview:
        from mattecli.compositing import preview_sheet

        sheet = preview_sheet(result.image, result.alpha, result.foreground)
        target = job.target.with_name(job.target.stem + ".preview.jpg")
        media.write_rgb(target, sheet, overwrite=True)


def _default_extension(options: OutputOptions) -> str:
    ext = (options.extension or ".png").lower()
    if not ext.startswith("."):
        ext = "." + ext
    if options.kind != "composite" and ext not in ALPHA_CAPABLE:
        raise MatteError(f"format {ext} cannot store alpha; use .png, .webp or .tif")
    return ext


def _check_extension(path: Path, options: OutputOptions) -> None:
    ext = path.suffix.lower()
    allowed = COMPOSITE_FORMATS if options.kind == "composite" else ALPHA_CAPABLE
    if options.kind == "alpha" and options.depth == 16:
        allowed = {".png", ".tif", ".tiff"}
    if ext not in allowed:
        hint = " (JPEG has no alpha channel: add --bg COLOUR or use .png)" if ext in {".jpg", ".jpeg"} else ""
        raise MatteError(f"cannot write this output format{hint}; use {', '.join(sorted(allowed))}", path)


def _looks_like_dir(path: Path) -> bool:
    return str(path).endswith(("/", "\\")) or path.suffix == ""


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return folder.resolve() != path.resolve()


def _ensure_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MatteError(f"cannot create output folder ({exc.strerror})", folder) from None
