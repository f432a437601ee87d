"""``matte image``: photos in, finished cut-outs out (files, folders, globs, or a pipe: ``-``).

Everything that can be checked without the model (options, the output's name and format, ``--bg``,
existing outputs of a single file) is checked first, so a mistake costs no model load and creates no
folder. Messages and progress go to stderr; with ``-o -`` stdout carries the image bytes alone.
"""

from __future__ import annotations

import typer

from mattecli.cli.common import (
    DecontaminateOption,
    DeviceOption,
    MaxSizeOption,
    ModelOption,
    QuietOption,
    RefineOption,
    TtaOption,
    cli_errors,
    console,
    fail,
    is_interactive,
    load_matter,
    prefer_sleeping_threads,
)


def image_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ...,
        metavar="INPUT",
        help="Image files, folders (searched recursively), globs, or - to read one image from stdin.",
    ),
    output: str | None = typer.Option(
        None,
        "-o",
        "--output",
        metavar="PATH",
        help="Output file (a name with a suffix; one image), folder (ends in /, has no suffix, or exists), "
        "or - for stdout (default for stdin input).",
    ),
    bg: str | None = typer.Option(
        None, "--bg", metavar="COLOUR|FILE", help="Composite over a colour (name or #hex) or an image file."
    ),
    alpha_only: bool = typer.Option(False, "--alpha-only", help="Write the matte as grayscale."),
    depth: int = typer.Option(
        8, "--depth", metavar="8|16", help="Bit depth of --alpha-only output: 8 or 16."
    ),
    preview: bool = typer.Option(
        False,
        "--preview",
        help="Also write a preview sheet (input | matte | cut-out) beside each output: "
        "a.matte.png -> a.matte.preview.jpg.",
    ),
    decontaminate: DecontaminateOption = True,
    ignore_input_alpha: bool = typer.Option(
        False,
        "--ignore-input-alpha",
        help="By default an input's own transparency is kept: pixels transparent in the input stay "
        "transparent; this flag mattes the RGB alone.",
    ),
    output_format: str | None = typer.Option(
        None,
        "--format",
        metavar="FORMAT",
        help="Output format for folder outputs and stdout: png (default), webp, tif, jpg, bmp.",
    ),
    model: ModelOption = "default",
    device: DeviceOption = "auto",
    max_size: MaxSizeOption = None,
    refine: RefineOption = None,
    tta: TtaOption = False,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: QuietOption = False,
) -> None:
    """Cut people and objects out of photos: writes RGBA PNGs, composites or mattes.

    One image file named here (or - for stdin): an existing output is an error, exit 1 (--overwrite
    replaces it). Folders, globs and several inputs: existing outputs are skipped, so a rerun finishes
    what is left, and earlier results found there (NAME.matte.png, NAME.composite.*, NAME.alpha.*,
    NAME.*.preview.jpg) are never inputs. An output never replaces an input.

    Exit status: 0 all done or skipped, 1 an error or any failed image, 2 a usage error (an option value
    that cannot be parsed, is out of range or contradicts another option), 130 Ctrl-C, 143 SIGTERM,
    129 SIGHUP.
    """
    _refuse_flag_values(ctx, inputs)
    with cli_errors():
        prefer_sleeping_threads()
        from mattecli.photo.backgrounds import prepare_background
        from mattecli.photo.outputs import OutputOptions
        from mattecli.photo.planning import plan_jobs

        options = OutputOptions(
            background=bg,
            alpha_only=alpha_only,
            depth=depth,
            preview=preview,
            decontaminate=decontaminate,
            keep_input_alpha=not ignore_input_alpha,
            overwrite=overwrite,
            extension=output_format,
        )
        jobs = plan_jobs(inputs, output, options)
        backdrop = prepare_background(bg) if bg is not None else None  # decoded once, before the model
        if len(jobs) == 1:
            from mattecli.photo.pipeline import decode_ahead

            jobs = [decode_ahead(jobs[0], options)]  # decoded while torch and the model load
        matter = load_matter(model, device, max_size, quiet, refine, tta)
        summary = _run(matter, jobs, options, quiet, backdrop)
    single = len(jobs) == 1 and jobs[0].strict
    _report(summary, quiet, single)
    if single and not quiet and summary.done:
        _say_written(jobs[0], options)


def _refuse_flag_values(ctx: typer.Context, inputs: list[str]) -> None:
    """``--alpha-only true``: click takes ``true`` as an input file. When an input that does not exist is
    such a word and follows an on/off flag on the command line, say that the flag takes no value (a usage
    error, exit 2); the planner's "no such file" carries a general hint otherwise."""
    import itertools
    import sys
    from pathlib import Path

    from mattecli.image.inputs import BOOLEAN_WORDS

    words = [text for text in inputs if text.strip().lower() in BOOLEAN_WORDS and not Path(text).exists()]
    if not words:
        return
    flags = {
        name
        for param in ctx.command.params
        if getattr(param, "is_flag", False)
        for name in (*param.opts, *getattr(param, "secondary_opts", ()))
    }
    argv = sys.argv[1:]
    for before, word in itertools.pairwise(argv):
        if word in words and before in flags:
            raise fail(f"{before} takes no value: write {before} alone ({word!r} is no input file)", 2)


def _say_written(job, options) -> None:
    """One image named on the command line: say what was written, as matte video does."""
    from rich.markup import escape

    from mattecli.photo.planning import STDOUT

    if job.target == STDOUT:
        return
    files = job.files(options)
    also = f" and {escape(str(files[1]))}" if len(files) > 1 else ""
    console.print(f"wrote [bold]{escape(str(job.target))}[/]{also}", soft_wrap=True)


def _run(matter, jobs, options, quiet: bool, backdrop):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from mattecli.photo.pipeline import run_jobs

    if quiet or not is_interactive():
        return run_jobs(matter, jobs, options, backdrop=backdrop)
    if len(jobs) == 1:
        return _run_one_with_tile_progress(matter, jobs, options, backdrop)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("matting", total=len(jobs), rate="")

        def advance(job, status) -> None:
            elapsed = progress.tasks[0].elapsed or 1e-9
            done = progress.tasks[0].completed + 1
            progress.update(task, advance=1, rate=f"{done / elapsed:.2f} images/s")

        return run_jobs(matter, jobs, options, on_progress=advance, backdrop=backdrop)


def _run_one_with_tile_progress(matter, jobs, options, backdrop):
    """One image: a bar for its full-resolution refinement tiles, shown only once a tile is done (small
    images have none, and a bar that never moves is noise)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from mattecli.photo.pipeline import run_jobs

    columns = (
        TextColumn("refining"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tiles"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = None

        def on_tile(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = progress.add_task("refining", total=total)
            progress.update(task, completed=done, total=total)

        return run_jobs(matter, jobs, options, backdrop=backdrop, on_tile=on_tile)


def _report(summary, quiet: bool, single: bool) -> None:
    """Failures one line each; for batches the counts, with why files were skipped."""
    from rich.markup import escape

    for _source, reason in summary.failed:
        console.print(f"[bold red]error:[/] {escape(reason)}", soft_wrap=True)
    for target in summary.skipped if single else ():
        # Only a file that appeared after planning gets here (planning refuses one that exists).
        console.print(f"[bold red]error:[/] {escape(str(target))}: exists (use --overwrite)", soft_wrap=True)
    if not quiet and not single:
        rate = summary.done / summary.seconds if summary.seconds > 0 else 0.0
        skipped = len(summary.skipped)
        why = " (exist; --overwrite replaces them)" if skipped else ""
        console.print(
            f"done {summary.done}, skipped {skipped}{why}, failed {len(summary.failed)} "
            f"in {summary.seconds:.1f} s ({rate:.2f} images/s)",
            markup=False,
            soft_wrap=True,
        )
    if summary.failed or (single and summary.skipped):
        raise typer.Exit(1)
