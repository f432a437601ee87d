"""``matte image``: photos in, finished cut-outs out."""

from __future__ import annotations

from pathlib import Path

import typer

from mattecli.cli.common import (
    TTA_HELP,
    cli_errors,
    console,
    is_interactive,
    load_matter,
    prefer_sleeping_threads,
)


def image_command(
    inputs: list[str] = typer.Argument(..., help="Image files, folders (searched recursively) or globs."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Output file (one input) or folder (many inputs)."
    ),
    bg: str | None = typer.Option(
        None, "--bg", help="Composite over a colour (name or #hex) or an image file."
    ),
    alpha_only: bool = typer.Option(False, "--alpha-only", help="Write the matte as grayscale."),
    depth: int = typer.Option(8, "--depth", help="Bit depth of --alpha-only output: 8 or 16."),
    preview: bool = typer.Option(
        False, "--preview", help="Also write NAME.preview.jpg: input | matte | cut-out."
    ),
    decontaminate: bool = typer.Option(
        True, "--decontaminate/--no-decontaminate", help="Remove background colour from soft edges."
    ),
    output_format: str | None = typer.Option(
        None, "--format", help="Output format for folder outputs: png (default), webp, tif, jpg."
    ),
    model: str = typer.Option("default", "--model", "-m", help="Built-in model name or weights file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    max_size: int | None = typer.Option(
        None,
        "--max-size",
        help="Long side the network sees (multiple of 32; default: the model's).",
    ),
    refine: bool | None = typer.Option(
        None,
        "--refine/--no-refine",
        help="Refine edges at full resolution in tiles (default: when the image is over twice --max-size).",
        show_default=False,
    ),
    tta: bool = typer.Option(False, "--tta", help=TTA_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
) -> None:
    """Cut people and objects out of photos: writes RGBA PNGs, composites or mattes."""
    with cli_errors():
        prefer_sleeping_threads()
        from mattecli.image_pipeline import OutputOptions, plan_jobs

        options = OutputOptions(
            background=bg,
            alpha_only=alpha_only,
            depth=depth,
            preview=preview,
            decontaminate=decontaminate,
            overwrite=overwrite,
            extension=output_format,
        )
        if bg is not None:
            from mattecli.compositing import parse_color

            if not Path(bg).is_file():
                parse_color(bg)  # fail before loading the model
        jobs = plan_jobs(inputs, output, options)
        matter = load_matter(model, device, max_size, quiet, refine, tta)
        summary = _run(matter, jobs, options, quiet)
    _report(summary, quiet, single=len(jobs) == 1)


def _run(matter, jobs, options, quiet: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from mattecli.image_pipeline import run_jobs

    if quiet or len(jobs) == 1 or not is_interactive():
        return run_jobs(matter, jobs, options)
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

        return run_jobs(matter, jobs, options, on_progress=advance)


def _report(summary, quiet: bool, single: bool) -> None:
    for _source, reason in summary.failed:
        console.print(f"[bold red]error:[/] {reason}", soft_wrap=True)
    if single and not summary.failed and not quiet:
        for target in summary.skipped:
            console.print(f"skipped {target}: it exists (use --overwrite)")
    if not quiet and not single:
        rate = summary.done / summary.seconds if summary.seconds > 0 else 0.0
        console.print(
            f"done {summary.done}, skipped {len(summary.skipped)}, failed {len(summary.failed)} "
            f"in {summary.seconds:.1f} s ({rate:.2f} images/s)"
        )
    if summary.failed:
        raise typer.Exit(1)
