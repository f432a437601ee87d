"""One model-card row from the folders ``evaluate.sh`` wrote: means (and medians where the targets name them).

    python weights/recipe/summarise_eval.py runs/eval-round4 [runs/eval-candidate ...]

Prints a Markdown table: people photos against the soft alpha (IoU mean / median, SAD, MSE, the share of
half-transparent pixels), against the binary masks (IoU mean / median), then the IoU of the cut-out
composites, CCP, DAVIS and the portraits. A split that was not evaluated shows as a dash.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

SPLITS = ("people-alpha", "people-mask", "cutouts", "ccp", "davis", "portraits")


def read_split(folder: Path) -> tuple[dict, list[dict]] | None:
    """The split's summary.json and per_image.csv rows, or None when it was not evaluated."""
    summary = folder / "summary.json"
    if not summary.is_file():
        return None
    with (folder / "per_image.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return json.loads(summary.read_text(encoding="utf-8")), rows


def median_iou(rows: list[dict]) -> float:
    return statistics.median(float(row["iou"]) for row in rows)


def row(folder: Path) -> str:
    """A table row for one evaluate.sh output folder."""
    splits = {name: read_split(folder / name) for name in SPLITS}
    cells = [folder.name]
    alpha = splits["people-alpha"]
    if alpha:
        summary, rows = alpha
        cells.append(
            f"{summary['iou']:.3f} / {median_iou(rows):.3f} / {summary['sad']:.2f} / "
            f"{summary['mse']:.4f} / {100 * summary['soft']:.1f} %"
        )
    else:
        cells.append("-")
    mask = splits["people-mask"]
    cells.append(f"{mask[0]['iou']:.3f} / {median_iou(mask[1]):.3f}" if mask else "-")
    for name in SPLITS[2:]:
        split = splits[name]
        cells.append(f"{split[0]['iou']:.3f}" if split else "-")
    return "| " + " | ".join(cells) + " |"


def main(folders: list[str]) -> None:
    print(
        "| model | people vs alpha IoU mean / median / SAD / MSE / soft | vs mask IoU mean / median "
        "| cut-outs IoU | CCP IoU | DAVIS IoU | portraits IoU |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for folder in folders:
        print(row(Path(folder)))


if __name__ == "__main__":
    main(sys.argv[1:])
