"""Measuring a model: validation during training and ``matte eval`` on a labelled folder.

Both report the four matting metrics of the field (SAD, MSE, Gradient, Connectivity, see
:mod:`mattecli.metrics`) and the IoU of the thresholded matte, summed over the unknown region of the trimaps
when the data has trimaps (the Composition-1k protocol) and over the whole image otherwise (portrait
benchmarks). The two are not comparable, so every number travels with its ``region``.

``matte eval`` measures what users get: the model runs through :class:`~mattecli.inference.Matter` (resize to
a multiple of 32, predict, resize back) and pairs folders are scored against their mattes at the original
resolution. Composited sources (fg + backgrounds, cut-outs) have no original resolution; they are scored at
the data set's evaluation size.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mattecli.atomic import write_bytes
from mattecli.errors import MatteError
from mattecli.image.conversion import to_uint8
from mattecli.metrics import METRICS

PREVIEW_HEIGHT = 160


# ------------------------------------------------------------------------------------ shared pieces


def trimap_to_uint8(trimap: np.ndarray | None) -> np.ndarray | None:
    """The data package's trimaps (0, 0.5, 1 floats) as the metrics' 0/128/255 uint8."""
    if trimap is None:
        return None
    t = np.asarray(trimap, dtype=np.float32)
    out = np.full(t.shape, 128, np.uint8)
    out[t <= 0.25] = 0
    out[t >= 0.75] = 255
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each metric over rows; ``region`` is the rows' common region or ``mixed``."""
    regions = sorted({str(r["region"]) for r in rows})
    summary: dict[str, Any] = {
        "count": len(rows),
        "region": regions[0] if len(regions) == 1 else "mixed",
    }
    for metric in METRICS:
        values = [float(r[metric]) for r in rows if r.get(metric) is not None]
        summary[metric] = float(np.mean(values)) if values else float("nan")
    if len(regions) > 1:
        summary["by_region"] = {
            region: summarise([r for r in rows if r["region"] == region]) for region in regions
        }
    return summary


def write_preview_sheet(
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path, height: int = PREVIEW_HEIGHT
) -> Path:
    """One PNG with a row per image: input | prediction | ground truth (written atomically)."""
    import cv2

    lines = []
    for image, pred, gt in rows:
        tiles = [_to_rgb_uint8(image), _to_rgb_uint8(pred), _to_rgb_uint8(gt)]
        h, w = tiles[0].shape[:2]
        width = max(1, round(w * height / h))
        tiles = [cv2.resize(t, (width, height), interpolation=cv2.INTER_AREA) for t in tiles]
        gap = np.full((height, 4, 3), 255, np.uint8)
        lines.append(np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1))
    sheet_width = max(line.shape[1] for line in lines)
    padded = [
        np.pad(line, ((0, 4), (0, sheet_width - line.shape[1]), (0, 0)), constant_values=255)
        for line in lines
    ]
    sheet = np.concatenate(padded, axis=0)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - PNG encoding of uint8 never fails
        raise MatteError("cannot encode the preview sheet", path)
    write_bytes(path, encoded.tobytes())
    return path


def _to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return to_uint8(a)


# ------------------------------------------------------------------------------------ validation


def validate_model(
    model: Any,
    dataset: Any,
    device: Any,
    *,
    limit: int | None = None,
    preview_path: Path | None = None,
    preview_count: int = 4,
) -> dict[str, Any]:
    """Mean metrics of ``model`` on an eval-mode data set (items already at multiples of 32).

    Used during training: the metrics are computed at the validation size, not the original resolution
    (cheaper; fine for comparing steps of one run). Leaves the model in eval mode; the caller restores
    its training mode.
    """
    import torch

    from mattecli.metrics import evaluate

    model.eval()
    dtype = next(model.parameters()).dtype
    rows, previews = [], []
    count = len(dataset) if limit is None else min(limit, len(dataset))
    with torch.no_grad():
        for index in range(count):
            item = dataset[index]
            image = item["image"].unsqueeze(0).to(device, dtype)
            pred = model(image).alpha[0, 0].float().cpu().numpy()
            gt = item["alpha"][0].numpy()
            trimap = item.get("trimap")
            trimap = trimap_to_uint8(trimap[0].numpy()) if trimap is not None else None
            rows.append({"name": item["name"], **evaluate(pred, gt, trimap)})
            if len(previews) < preview_count:
                previews.append((item["image"].permute(1, 2, 0).numpy(), pred, gt))
    if not rows:
        raise MatteError("the validation set is empty")
    if preview_path is not None and previews:
        write_preview_sheet(previews, preview_path)
    return summarise(rows)


# ------------------------------------------------------------------------------------ matte eval


@dataclass
class EvalSample:
    """One image to score: RGB float H x W x 3, ground-truth alpha H x W, optional uint8 trimap."""

    name: str
    image: np.ndarray
    alpha: np.ndarray
    trimap: np.ndarray | None = None


@dataclass
class EvalReport:
    """The result of :func:`evaluate_data`: one row per image and the summary."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def iter_eval_samples(data: str | Path, size: int, seed: int = 0) -> Iterator[EvalSample]:
    """The labelled images of a data folder or spec: pairs sources at their original resolution,
    composited sources at ``size`` (long side). Unreadable files are reported and skipped."""
    from mattecli.data import build_dataset, load_data_spec
    from mattecli.data.reading import SampleError, read_alpha, read_rgb, read_trimap
    from mattecli.data.sources import PairSource, Reporter
    from mattecli.data.spec import DataSpec

    spec = load_data_spec(data)
    reporter = Reporter()
    for source_spec in spec.sources:
        if source_spec.resolved_kind == "pairs":
            source = PairSource(source_spec, reporter)
            for name in source.names:
                image_path, alpha_path = source.pairs[name]
                try:
                    rgb = read_rgb(image_path).astype(np.float32) / 255.0
                    alpha = read_alpha(alpha_path)
                    trimap = None
                    if source.trimap_dir is not None:
                        if name not in source.trimaps:
                            raise SampleError(source.trimap_dir / name, "no trimap for this image")
                        trimap = read_trimap(source.trimaps[name])
                except SampleError as error:
                    reporter.warn(error.path, error.problem)
                    continue
                problem = _size_mismatch(rgb, alpha, trimap)
                if problem:
                    reporter.warn(alpha_path, problem)
                    continue
                yield EvalSample(f"{source.prefix}/{name}", rgb, alpha, _trimap_uint8(trimap))
        else:
            single = DataSpec(sources=(source_spec,), augment=spec.augment, path=spec.path)
            dataset = build_dataset(single, size=size, train=False, seed=seed)
            for index in range(len(dataset)):
                item = dataset[index]
                trimap = item.get("trimap")
                yield EvalSample(
                    item["name"],
                    item["image"].permute(1, 2, 0).numpy(),
                    item["alpha"][0].numpy(),
                    trimap_to_uint8(trimap[0].numpy()) if trimap is not None else None,
                )


def _size_mismatch(rgb: np.ndarray, alpha: np.ndarray, trimap: np.ndarray | None) -> str | None:
    """What differs, in width x height, or None when the image, its matte and its trimap agree."""

    def size(array: np.ndarray) -> str:
        return f"{array.shape[1]}x{array.shape[0]}"

    if alpha.shape != rgb.shape[:2]:
        return f"matte is {size(alpha)} but its image is {size(rgb)}"
    if trimap is not None and trimap.shape != alpha.shape:
        return f"trimap is {size(trimap)} but the matte is {size(alpha)}"
    return None


def _trimap_uint8(trimap: np.ndarray | None) -> np.ndarray | None:
    """A trimap read from disk: values near 0/255 are known, the rest unknown (uint8 0/128/255)."""
    if trimap is None:
        return None
    t = np.asarray(trimap, dtype=np.float32)
    if t.max() > 1.0:  # pragma: no cover - read_trimap returns [0, 1] floats; accept 0..255 as well
        t = t / 255.0
    return trimap_to_uint8(t)


def evaluate_data(
    data: str | Path,
    model: str,
    *,
    out: Path | None = None,
    device: str = "auto",
    max_size: int | None = None,
    tta: bool = False,
    save_pred: bool = False,
    limit: int | None = None,
    overwrite: bool = False,
    progress: Any = None,
) -> EvalReport:
    """Score ``model`` on every labelled image of ``data``; write CSV + JSON (+ PNG mattes) to ``out``.

    Args:
        data: A data folder (layout auto-detected) or a TOML data spec.
        model: Anything ``--model`` takes (:mod:`mattecli.modelfiles.loading`): a model name, a weights file, an
            exported ``.onnx`` file, a training checkpoint or a run folder.
        out: Folder for ``per_image.csv``, ``summary.json`` and ``pred/`` (None: write nothing).
        max_size: Long side of the network input (the model's default when None).
        tta: Average each matte with the mirrored image's (see :class:`~mattecli.inference.Matter`).
        save_pred: Keep each predicted matte as an 8-bit PNG in ``out/pred``.
        limit: Score only the first N images.
        overwrite: Replace results already in ``out``.
        progress: Optional callable(done, name) for a progress display.
    """
    from mattecli.inference import Matter
    from mattecli.metrics import evaluate

    matter = Matter(model=model, device=device, max_size=max_size, tta=tta)
    files = _output_files(out, overwrite) if out is not None else {}
    rows: list[dict[str, Any]] = []
    samples = iter_eval_samples(data, matter.max_size)
    for sample in samples:
        if limit is not None and len(rows) >= limit:
            break
        start = time.perf_counter()
        pred = matter.predict_alpha(np.ascontiguousarray(sample.image, dtype=np.float32))
        seconds = time.perf_counter() - start
        metrics = evaluate(pred, sample.alpha, sample.trimap)
        height, width = sample.alpha.shape
        rows.append(
            {"name": sample.name, **metrics, "height": height, "width": width, "seconds": round(seconds, 4)}
        )
        if save_pred and out is not None:
            _save_matte(out / "pred" / f"{_safe_name(sample.name)}.png", pred)
        if progress is not None:
            progress(len(rows), sample.name)
    if not rows:
        raise MatteError("no labelled images found to evaluate", data)
    summary = summarise(rows)
    summary.update(
        {
            "model": str(model),
            "model_config": matter.config.name,
            "data": str(data),
            "max_size": matter.max_size,
            "tta": matter.tta,
            "device": str(matter.device),
        }
    )
    if out is not None:
        _write_csv(files["csv"], rows)
        write_bytes(files["json"], (json.dumps(summary, indent=2) + "\n").encode())
    return EvalReport(rows, summary, files)


def _output_files(out: Path, overwrite: bool) -> dict[str, Path]:
    out = Path(out).expanduser()
    files = {"csv": out / "per_image.csv", "json": out / "summary.json"}
    existing = [p for p in files.values() if p.exists()]
    if existing and not overwrite:
        raise MatteError("results already exist (pass --overwrite to replace them)", existing[0])
    for folder in (out, *out.parents):  # found now, not after scoring every image
        if folder.exists():
            if not folder.is_dir():
                raise MatteError(
                    "--out must be a folder" if folder == out else "is a file, not a folder", folder
                )
            break
    return files


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = ["name", *METRICS, "region", "height", "width", "seconds"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    write_bytes(path, buffer.getvalue().encode("utf-8"))


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return value


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


def _save_matte(path: Path, alpha: np.ndarray) -> None:
    import cv2

    ok, encoded = cv2.imencode(".png", to_uint8(alpha))
    if not ok:  # pragma: no cover
        raise MatteError("cannot encode the matte", path)
    write_bytes(path, encoded.tobytes())
