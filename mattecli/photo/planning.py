"""Planning a ``matte image`` run: inputs (files, folders, globs, stdin) -> one job per image, each
with its output path, before the model loads.

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
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mattecli.atomic import refuse_a_file_in_the_way
from mattecli.errors import MatteError
from mattecli.image.decoding import LoadedImage, decode_image
from mattecli.image.inputs import collect_inputs, identity
from mattecli.photo.outputs import (
    OUTPUT_TAGS,
    OutputOptions,
    check_output_options,
    format_refusal,
    is_own_output,
    normal_extension,
    preview_path,
    same_format,
)

#: Stand-ins for the standard streams in jobs and messages (``-`` on the command line).
STDIN = Path("<stdin>")
STDOUT = Path("<stdout>")


@dataclass(frozen=True)
class ImageJob:
    """One input and where its result goes. ``strict``: the input is a single file (or stdin) named on
    the command line, so an existing output is an error rather than a skip. ``image`` holds an input that
    was decoded while planning (stdin, which can be read only once)."""

    source: Path
    target: Path
    strict: bool = False
    image: LoadedImage | None = field(default=None, compare=False, repr=False)
    #: A decode of ``source`` started ahead (:func:`mattecli.photo.pipeline.decode_ahead`).
    decoding: object | None = field(default=None, compare=False, repr=False)

    def files(self, options: OutputOptions) -> tuple[Path, ...]:
        """Every file this job writes: the result and, with ``--preview``, its preview sheet."""
        if self.target == STDOUT or not options.preview:
            return (self.target,)
        return (self.target, preview_path(self.target))


@dataclass(frozen=True)
class _Source:
    path: Path
    relative: Path  # place below the folder or glob it was found in (mirrored in an output folder)
    explicit: bool  # named on the command line, not found by expanding a folder or glob
    image: LoadedImage | None = field(default=None, compare=False, repr=False)  # stdin, decoded


def plan_jobs(inputs: list[str], output: str | Path | None, options: OutputOptions) -> list[ImageJob]:
    """Map inputs (files, folders, globs, ``-``) to output paths, refusing what cannot work.

    ``output``: None (next to the inputs), ``-`` (stdout), a file or a folder: see the module docstring
    for how the name decides. Pass it as the user wrote it: a trailing ``/`` matters. Raises MatteError
    for anything the run would otherwise find out only after loading the model.
    """
    check_output_options(options)
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
        _refuse_shared_outputs(jobs, options)
    _refuse_replacing_inputs(jobs, sources, options)
    targets = {job.target.parent: job.target for job in jobs if job.target != STDOUT}
    for target in targets.values():
        refuse_a_file_in_the_way(target)  # -o photo.jpg/out.png: before the model loads
    if not options.overwrite:
        _refuse_existing(jobs, options)
    return jobs


def _stdin_source(inputs: list[str]) -> list[_Source]:
    if len(inputs) > 1:
        raise MatteError("- (stdin) must be the only input")
    return [_Source(STDIN, Path("stdin"), explicit=True, image=_read_stdin())]


def _collect(inputs: list[str]) -> list[_Source]:
    """Expand every argument; drop our own outputs from what folders and globs found."""
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
            found.setdefault(identity(path), _Source(path, relative, explicit))
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
    if options.extension is not None and not same_format(options.extension, target.suffix):
        raise MatteError(
            f"--format {options.extension} is for folder outputs and stdout; -o {target} is a file"
        )
    return _job(sources[0], target, strict=single)


def _folder_jobs(
    sources: list[_Source], folder: Path | None, options: OutputOptions, single: bool
) -> tuple[list[ImageJob], list[_Source]]:
    """One job per source, in ``folder`` (mirroring sub-folders) or next to each source (``None``); also
    returns the sources that remain inputs.

    Sources found by expansion that this run would write for another source are earlier results in an
    output folder inside the inputs: they are dropped, repeatedly, until the plan is stable. A source
    whose own untagged output name is its own name (``shots/a.png`` in ``matte image shots/ -o shots/``)
    is an input in its output folder, not an earlier result: it stays, and gets a tagged name. Results
    are tagged when they go next to inputs.
    """
    ext = normal_extension(options.extension or "png")
    while True:
        jobs = _targets(sources, folder, options.kind, ext, tagged=folder is None)
        writers: dict[Path, set[Path]] = {}
        for job in jobs:
            for path in (job.target, preview_path(job.target)):
                writers.setdefault(identity(path), set()).add(identity(job.source))
        kept = [
            s for s in sources if s.explicit or not writers.get(identity(s.path), set()) - {identity(s.path)}
        ]
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
    if sys.stdin is None or sys.stdin.isatty():
        raise MatteError("is a terminal: pipe an image in (cat photo.jpg | matte image -)", STDIN)
    return decode_image(sys.stdin.buffer.read(), str(STDIN))


def _refuse_replacing_inputs(jobs: list[ImageJob], sources: list[_Source], options: OutputOptions) -> None:
    """No output may be an input: not the same path, not through a symlink, not a hard link to it."""
    paths = {identity(s.path): s.path for s in sources if s.path != STDIN}
    inodes = {_inode(s.path): s.path for s in sources if s.path != STDIN}
    inodes.pop(None, None)
    for job in jobs:
        for target in job.files(options):
            if target == STDOUT:
                continue
            replaced = paths.get(identity(target)) or inodes.get(_inode(target))
            if replaced is not None:
                raise MatteError(f"output would replace an input ({replaced}); choose another -o", target)


def _refuse_shared_outputs(jobs: list[ImageJob], options: OutputOptions) -> None:
    """Two inputs of the same name (``a/x.png`` and ``b/x.png`` into one folder) must not share an
    output: the second would be skipped as existing, or replace the first with ``--overwrite``."""
    writers: dict[Path, Path] = {}
    for job in jobs:
        for target in job.files(options):
            first = writers.setdefault(identity(target), job.source)
            if first != job.source:
                raise MatteError(
                    f"{first} and {job.source} would both be written here; rename one, or matte them "
                    "into separate -o folders",
                    target,
                )


def _refuse_existing(jobs: list[ImageJob], options: OutputOptions) -> None:
    """A single file named on the command line must not silently skip: say that its output exists."""
    for job in jobs:
        if not job.strict:
            continue
        for target in job.files(options):
            if target != STDOUT and (target.exists() or target.is_symlink()):
                raise MatteError("exists (use --overwrite)", target)


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _is_within(path: Path, folder: Path) -> bool:
    try:
        identity(path).relative_to(identity(folder))
    except ValueError:
        return False
    return True
