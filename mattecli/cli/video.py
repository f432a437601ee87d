"""``matte video``: a clip in, a matted clip out (ProRes 4444 with alpha, VP9 with alpha, PNG frames,
a composite over a new background, or the matte alone), streaming, with the original audio."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

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
    is_interactive,
    load_matter,
    prefer_sleeping_threads,
)
from mattecli.video.formats import CODEC_TABLE, codec_help  # the standard library only: --help stays fast
from mattecli.video.limits import DEFAULT_STRENGTH, MAX_STRENGTH  # likewise


def video_command(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Video file to matte."),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        metavar="PATH",
        help="Output file (.mov, .webm, .mp4, .mkv) or folder for PNG frames "
        "(default: INPUT.matte.mov, or INPUT.matte.mp4 with --bg).",
    ),
    bg: str | None = typer.Option(
        None,
        "--bg",
        metavar="COLOUR|FILE",
        help="Composite over a colour (name or #hex), an image, or a video (looped).",
    ),
    codec: str | None = typer.Option(
        None,
        "--codec",
        metavar="CODEC",
        help=codec_help(),
    ),
    batch_size: int = typer.Option(4, "--batch-size", metavar="N", help="Frames per model call."),
    start: str | None = typer.Option(
        None, "--start", metavar="TIME", help="Start at this time (seconds or mm:ss.ms)."
    ),
    end: str | None = typer.Option(
        None, "--end", metavar="TIME", help="Stop at this time (seconds or mm:ss.ms)."
    ),
    temporal: float = typer.Option(
        DEFAULT_STRENGTH,
        "--temporal",
        metavar="X",
        help=f"Smooth the matte over time where the picture is still (0 = off, up to {MAX_STRENGTH:g}).",
    ),
    decontaminate: DecontaminateOption = True,
    model: ModelOption = "default",
    device: DeviceOption = "auto",
    max_size: MaxSizeOption = None,
    refine: RefineOption = None,
    tta: TtaOption = False,
    allow_partial: bool = typer.Option(
        False,
        "--allow-partial",
        help="Write the frames of a damaged or truncated clip that decode, with a warning "
        "(otherwise such a clip is an error).",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace an existing output (without it, an existing output is an error (exit 1)).",
    ),
    quiet: QuietOption = False,
) -> None:
    """Matte a video: ProRes 4444 with alpha by default, or a composite with --bg; audio is kept."""
    with cli_errors():
        prefer_sleeping_threads()
        from mattecli.video import as_frame_fn, check_video_options, plan_video, run_plan

        check_video_options(batch_size, temporal)
        plan = plan_video(
            input_path,
            output,
            bg=bg,
            codec=codec,
            start=start,
            end=end,
            overwrite=overwrite,
            bg_option="--bg",
        )
        matter = load_matter(model, device, max_size, quiet, refine, tta)
        with _progress_bar(plan, enabled=not quiet and is_interactive()) as progress:
            report = run_plan(
                plan,
                as_frame_fn(matter, decontaminate),
                batch_size=batch_size,
                temporal=temporal,
                allow_partial=allow_partial,
                progress=progress,
            )
    if report.partial:
        _warn_partial(report)
    if not quiet:
        _summary(report, bg is not None)


@contextlib.contextmanager
def _progress_bar(plan, enabled: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich progress bar on stderr (frames, frames/s, ETA) fed by the pipeline's callback, or None."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(plan.info.path.name, total=plan.expected_frames, rate="")

        def update(done: int, total: int | None) -> None:
            elapsed = bar.tasks[0].elapsed or 1e-9
            bar.update(task, completed=done, rate=f"{done / elapsed:.1f} frames/s")

        yield update


def _warn_partial(report) -> None:
    from rich.markup import escape

    from mattecli.video.planning import partial_message

    message = partial_message(report.frames, report.expected_frames)
    console.print(f"[bold yellow]warning:[/] {escape(str(report.source))}: {message}", soft_wrap=True)


def _summary(report, composite: bool) -> None:
    from rich.markup import escape

    kind = CODEC_TABLE[report.codec].written[composite]
    audio = ", audio kept" if report.audio else ""
    fps = f"{float(report.frame_rate):.3f}".rstrip("0").rstrip(".")
    console.print(
        f"wrote [bold]{escape(str(report.output))}[/]: {report.frames} frames {report.width}x{report.height} at "
        f"{fps} fps ({report.duration:.2f} s), {kind}{audio}; "
        f"{report.frames_per_second:.1f} frames/s",
        soft_wrap=True,
    )
    if report.padded_from is not None:
        codec = CODEC_TABLE[report.codec].label
        console.print(
            f"note: {codec} needs even sides: the {report.padded_from[0]}x{report.padded_from[1]} frames "
            f"were padded to {report.width}x{report.height} (the last column or row repeated)",
            soft_wrap=True,
        )
    if report.sar != 1:
        console.print(
            f"pixel aspect ratio {report.sar.numerator}:{report.sar.denominator} kept "
            "(the pixels are not square; players show the picture as the source)",
            soft_wrap=True,
        )
    flicker = report.flicker
    if flicker.still_pixels:
        console.print(
            f"still-edge flicker {flicker.raw:.4f} -> {flicker.smoothed:.4f} "
            f"(mean alpha change per frame where the picture is still)",
            soft_wrap=True,
        )
