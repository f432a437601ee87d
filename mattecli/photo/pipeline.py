"""Running a planned ``matte image`` batch: matte each job's image and write its output(s), counting
what was done, skipped (outputs exist) and failed.

This is what ``matte image`` runs, usable from Python too::

    from mattecli import Matter
    from mattecli.photo import OutputOptions, plan_jobs, prepare_background, run_jobs
    options = OutputOptions(background="beach.jpg")
    jobs = plan_jobs(["shots/"], "cut/", options)      # checks everything it can without the model
    backdrop = prepare_background(options.background)  # decoded once, up front
    summary = run_jobs(Matter(), jobs, options, backdrop=backdrop)

The steps before this one: :mod:`~mattecli.photo.planning` (inputs -> jobs, everything refused before the
model loads), :mod:`~mattecli.photo.outputs` (options, formats, names), :mod:`~mattecli.photo.backgrounds`
(``--bg``). A bad file in a batch is reported and skipped so that a run over 2,000 product shots finishes;
the summary's ``failed`` list says which files failed and why.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mattecli.atomic import describe_error
from mattecli.errors import MatteError
from mattecli.image.decoding import read_image
from mattecli.image.encoding import encode_rgb, write_bytes
from mattecli.photo.backgrounds import Backdrop, prepare_background
from mattecli.photo.outputs import OutputOptions, normal_extension, preview_path
from mattecli.photo.planning import STDOUT, ImageJob


@dataclass
class BatchSummary:
    """Counts for the end-of-run summary; ``failed`` holds (path, one-line reason)."""

    done: int = 0
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


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
    backdrop = resolved_backdrop(options, backdrop)
    summary = BatchSummary()
    start = time.perf_counter()
    for job in jobs:
        try:
            existing = [path for path in job.files(options) if path != STDOUT and path.exists()]
            if existing and not options.overwrite:
                summary.skipped.append(existing[0])
                status = "skipped"
            else:
                process_image(matter, job, options, backdrop, on_tile)
                summary.done += 1
                status = "done"
        except MatteError as exc:
            summary.failed.append((job.source, str(exc)))
            status = "failed"
        except OSError as exc:  # e.g. an output name too long for the file system: this image only
            summary.failed.append(
                (job.source, str(MatteError(describe_error(exc), exc.filename or job.target)))
            )
            status = "failed"
        if on_progress is not None:
            on_progress(job, status)
    summary.seconds = time.perf_counter() - start
    return summary


def decode_ahead(job: ImageJob, options: OutputOptions) -> ImageJob:
    """``job`` with its picture being decoded in a background thread, for :func:`process_image` to pick
    up: the decode of one large photo (0.1-0.2 s at 12 MP) then overlaps loading torch and the model on
    the other core. Jobs with a picture already, or whose outputs exist without ``overwrite`` (skipped),
    come back as they are. Errors surface when the picture is used, as without it."""
    if job.image is not None or job.decoding is not None:
        return job
    if not options.overwrite and any(path != STDOUT and path.exists() for path in job.files(options)):
        return job
    return replace(job, decoding=_Decoding(job.source))


class _Decoding:
    """``read_image(path)`` in a daemon thread (a daemon, so an interrupted run never waits for it)."""

    def __init__(self, path: Path) -> None:
        import threading

        self._path = path
        self._value = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="decode-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = read_image(self._path)
        except BaseException as exc:  # handed to the thread that uses the picture
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._value


def process_image(
    matter,
    job: ImageJob,
    options: OutputOptions,
    backdrop: Backdrop | None = None,
    on_tile: Callable[[int, int], None] | None = None,
) -> None:
    """Matte one image and write its output(s) atomically.

    Everything is encoded in memory before the first byte is written, so an image that fails leaves no
    file and no folder behind. ``backdrop``: as for :func:`run_jobs`.
    """
    backdrop = resolved_backdrop(options, backdrop)
    if job.image is not None:
        image = job.image
    elif isinstance(job.decoding, _Decoding):
        image = job.decoding.result()
    else:
        image = read_image(job.source)
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

        sheet = encode_rgb(preview_sheet(result.pixels, result.alpha, result.foreground_pixels), ".jpg")
    if job.target == STDOUT:
        write_stdout(data)
        return
    write_bytes(job.target, data, options.overwrite)
    if sheet is not None:
        write_bytes(preview_path(job.target), sheet, options.overwrite)


def encode_result(
    result, options: OutputOptions, suffix: str, backdrop: Backdrop | None = None, name: Path | None = None
) -> bytes:
    """The requested output of one :class:`~mattecli.inference.MatteResult`, encoded as ``suffix``
    (:func:`mattecli.render.encode`); ``backdrop``: as for :func:`run_jobs`."""
    from mattecli.render import encode

    background = resolved_backdrop(options, backdrop) if options.kind == "composite" else None
    return encode(result, options.kind, suffix, background, depth=options.depth, name=name)


def resolved_backdrop(options: OutputOptions, backdrop: Backdrop | None) -> Backdrop | None:
    """The one resolved ``--bg``: ``backdrop`` when the caller prepared it (``matte image`` does, before the
    model loads), else ``options.background`` read now (once per batch: :func:`run_jobs` passes it on)."""
    if backdrop is None and options.background:
        return prepare_background(options.background)
    return backdrop


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
