"""``matte eval``: score a model on a labelled folder with the field's four matting metrics and IoU."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mattecli.cli.common import (
    DeviceOption,
    MaxSizeOption,
    ModelOption,
    check_max_size,
    cli_errors,
    console,
    is_interactive,
)

_REGION_TEXT = {
    "unknown": "over the unknown region of the trimaps (Composition-1k protocol)",
    "whole": "over the whole image (no trimaps; portrait-benchmark protocol)",
    "mixed": "mixed: some images with trimaps (unknown region), some without (whole image)",
}


def eval_command(
    data: str = typer.Argument(
        ..., metavar="DATA", help="Labelled data: a folder (image/ + alpha/ [+ trimap/]) or a TOML spec."
    ),
    model: ModelOption = "default",
    out: Path | None = typer.Option(
        None, "--out", "-o", metavar="DIR", help="Folder for per_image.csv and summary.json (and pred/)."
    ),
    save_pred: bool = typer.Option(
        False, "--save-pred", help="Keep the predicted mattes as PNGs in OUT/pred (needs --out)."
    ),
    max_size: MaxSizeOption = None,
    device: DeviceOption = "auto",
    tta: bool = typer.Option(False, "--tta", help="Average with the mirrored image (as matte image --tta)."),
    limit: int | None = typer.Option(None, "--limit", metavar="N", help="Evaluate only the first N images."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace results already in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary line."),
) -> None:
    """Score a model on labelled photos: SAD, MSE, Gradient, Connectivity and IoU.

    SAD, Gradient and Connectivity are sums over the region scored, / 1000 as published (Deep Image
    Matting definitions); soft is the share of half-transparent predicted pixels. The region is the
    trimaps' unknown band where trimap/ exists, the whole image otherwise; the summary says which. The
    summary goes to stdout, progress and errors to stderr.
    """
    with cli_errors():
        from mattecli.errors import UsageError
        from mattecli.evaluation import evaluate_data

        if save_pred and out is None:
            raise UsageError("--save-pred needs --out DIR")
        if limit is not None and limit < 1:
            raise UsageError(f"--limit must be at least 1, got {limit}")
        check_max_size(max_size)
        show = is_interactive() and not quiet
        report = evaluate_data(
            data,
            model,
            out=out,
            device=device,
            max_size=max_size,
            tta=tta,
            save_pred=save_pred,
            limit=limit,
            overwrite=overwrite,
            progress=_progress_printer() if show else None,
        )
    _print_summary(report.summary, quiet)
    if out is not None and not quiet:
        console.print(f"wrote {report.files['csv']} and {report.files['json']}")


def _progress_printer():
    def show(done: int, name: str) -> None:
        console.print(f"\r{done} images ({name})", end="", markup=False, highlight=False)

    return show


_DECIMALS = {"mse": 4, "iou": 3, "soft": 3}


def _format(metric: str, value: float) -> str:
    return f"{value:.{_DECIMALS.get(metric, 2)}f}"


def _print_summary(summary: dict, quiet: bool) -> None:
    """The results go to stdout (progress and errors go to stderr)."""
    from rich.console import Console
    from rich.table import Table

    from mattecli.metrics import METRICS

    stdout = Console(highlight=False, soft_wrap=True)

    region = summary["region"]
    if not quiet and is_interactive():
        console.print()
    stdout.print(
        f"{summary['count']} images, model {summary['model']} ({summary['model_config']}, "
        f"{summary['max_size']} px{', mirrored TTA' if summary.get('tta') else ''}); metrics {_REGION_TEXT[region]}"
    )
    groups = summary.get("by_region") or {region: summary}
    if quiet:
        for name, values in groups.items():
            stdout.print(f"{name}: " + "  ".join(f"{key} {_format(key, values[key])}" for key in METRICS))
        return
    # On a terminal a boxed table; piped, the same columns without box drawing, for grep and awk.
    table = Table(title_justify="left", **({} if sys.stdout.isatty() else {"box": None, "pad_edge": False}))
    for column in ("region", "images", "SAD", "MSE", "Grad", "Conn", "IoU", "soft"):
        table.add_column(column, justify="right" if column != "region" else "left")
    for name, values in groups.items():
        table.add_row(
            name,
            str(values["count"]),
            *(_format(key, values[key]) for key in METRICS),
        )
    stdout.print(table)
