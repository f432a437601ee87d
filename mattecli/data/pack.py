"""Pack the training split of a data spec into a compact, self-contained folder for another machine.

A rented GPU machine has the repository but not the data, and what can travel to it is limited (64 MiB a
call on the project's device machines). :func:`pack_training_data` copies exactly what a spec trains on,
as the data pipeline itself selects it (include/exclude lists applied, validation names left out):

* photos at a bounded long side (default 640 px) as JPEG (quality 92, or the source JPEG's own quality
  plus 10 when that is lower: a q75 photo re-encoded at q92 spends its bytes on its own artefacts),
* mattes resized to their photo's new size, as 8-bit PNG,
* no foreground colours: a composition source whose folder has photos travels as photo + matte, and
  :func:`estimate_pack_foregrounds` recomputes ``fg/`` there (blur-fusion, :mod:`mattecli.foreground`),
* RGBA cut-outs as they are (they are small), backgrounds like photos,

and writes a data spec inside the pack with the same sources, weights and augmentation, pointing at the
packed folders. :func:`verify_pack` compares a pack with its recipe (sample counts, names, and how close
samples are). Used by ``weights/recipe/pack_round5.sh``; also ``python -m mattecli.data.pack --help``.

The packed spec and its name lists are written by :mod:`mattecli.data.pack_spec`, the check against the
recipe is :mod:`mattecli.data.pack_verify`, the command line :mod:`mattecli.data.pack_cli`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mattecli.data.composites import BackgroundPool, CutoutSource
from mattecli.data.pack_spec import add_name_lists, spec_toml
from mattecli.data.reading import read_alpha, read_rgb
from mattecli.data.source_base import Reporter, Source
from mattecli.data.sources import make_source
from mattecli.data.spec import DataSpec, load_data_spec
from mattecli.errors import MatteError
from mattecli.image.conversion import to_uint8
from mattecli.image.decoding import read_image
from mattecli.image.formats import FORMAT_NAMES

MANIFEST = "manifest.json"
#: IJG's base luminance quantisation table (JPEG Annex K); a file's table is this scaled by its quality.
_IJG_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


@dataclass
class PackSummary:
    """What :func:`pack_training_data` wrote."""

    spec: Path
    counts: dict[str, int]
    foregrounds: list[str]
    bytes: int


# ---------------------------------------------------------------------------------------- images


def jpeg_quality(path: Path) -> float:
    """The IJG quality a JPEG file was saved at, from its luminance table (100 for non-JPEG files)."""
    from PIL import Image

    with Image.open(path) as image:
        tables = getattr(image, "quantization", None)
    if not tables:
        return 100.0
    scale = 100.0 * float(np.mean(tables[0])) / float(np.mean(_IJG_LUMINANCE))
    return float(np.clip((200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale, 1.0, 100.0))


def _fitted(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) scaled down so the long side is at most ``long_side`` (never scaled up)."""
    scale = min(1.0, long_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    _write(path, ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])


def _write_png(path: Path, pixels: np.ndarray) -> None:
    """A grey matte or a BGRA cut-out as a maximally compressed PNG."""
    _write(path, ".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def _write(path: Path, suffix: str, pixels: np.ndarray, params: list[int]) -> None:
    """Encode as ``suffix`` with OpenCV (BGR order) and write ``path`` (a ``.part`` name may differ)."""
    ok, data = cv2.imencode(suffix, pixels, params)
    if not ok:
        raise MatteError(f"cannot encode {FORMAT_NAMES[suffix]}", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data.tofile(str(path))


def _quality_for(source: Path, quality: int, margin: int) -> int:
    if source.suffix.lower() not in (".jpg", ".jpeg"):
        return quality
    return int(min(quality, round(jpeg_quality(source)) + margin))


def _pack_photo(job: tuple[Path, Path, Path | None, Path | None, int, int, int]) -> None:
    """Photo (and its matte, when given) resized to the long side; one job for a process pool."""
    source, target, alpha_source, alpha_target, long_side, quality, margin = job
    rgb = read_rgb(source)
    height, width = _fitted(*rgb.shape[:2], long_side)
    if (height, width) != rgb.shape[:2]:
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    _write_jpeg(target, rgb, _quality_for(source, quality, margin))
    if alpha_source is not None and alpha_target is not None:
        alpha = read_alpha(alpha_source)
        if alpha.shape != (height, width):
            alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_AREA)
        _write_png(alpha_target, to_uint8(alpha, half_up=True))


def _pack_cutout(source: Path, target: Path, long_side: int) -> None:
    """Small cut-outs are copied byte for byte; larger ones are resized with premultiplied colour.

    Decoded by the decoder training reads cut-outs with (:func:`mattecli.data.reading.read_rgba`): upright
    by EXIF, so a resized cut-out, which carries no EXIF, is the picture training saw; 16-bit codes stay
    16-bit until the resize."""
    target.parent.mkdir(parents=True, exist_ok=True)
    loaded = read_image(source)
    if loaded.alpha_pixels is None:
        raise MatteError("cut-out is not an RGBA image", source)
    height, width = _fitted(loaded.height, loaded.width, long_side)
    if (height, width) == (loaded.height, loaded.width) and source.suffix.lower() == ".png":
        shutil.copyfile(source, target)
        return
    codes = np.dstack([loaded.pixels, loaded.alpha_pixels])
    # Divided, not unit_float (its reciprocal is one ulp off on 126 of the 256 8-bit codes): packs stay
    # byte-identical with those made before.
    rgba = codes.astype(np.float32) / (65535.0 if codes.dtype == np.uint16 else 255.0)
    alpha = rgba[:, :, 3:]
    premultiplied = cv2.resize(rgba[:, :, :3] * alpha, (width, height), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_AREA)[:, :, None]
    colour = np.where(alpha > 1e-6, premultiplied / np.maximum(alpha, 1e-6), 0.0)
    out = to_uint8(np.concatenate([colour, alpha], axis=2), half_up=True)
    _write_png(target, cv2.cvtColor(out, cv2.COLOR_RGBA2BGRA))


# ---------------------------------------------------------------------------------------- packing


class _Layout:
    """Where each source folder goes inside the pack: ``data/NAME``, made unique when names collide."""

    def __init__(self) -> None:
        self.folders: dict[Path, str] = {}

    def folder(self, original: Path) -> str:
        if original not in self.folders:
            taken = set(self.folders.values())
            name, n = original.name, 1
            while f"data/{name}" in taken:
                n += 1
                name = f"{original.name}-{n}"
            self.folders[original] = f"data/{name}"
        return self.folders[original]


def _sources(spec: DataSpec) -> list[Source]:
    reporter = Reporter()
    return [make_source(source, reporter) for source in spec.sources]


def pack_training_data(
    spec_path: str | Path,
    dest: str | Path,
    *,
    long_side: int = 640,
    quality: int = 92,
    quality_margin: int = 10,
    workers: int | None = None,
) -> PackSummary:
    """Copy what the spec at ``spec_path`` trains on into ``dest`` (see the module docstring).

    ``dest`` must not exist or be empty. Returns the packed spec's path, the number of samples per source
    (``"KIND ROOT-NAME"``), the composition folders whose foregrounds are still to be estimated and the
    pack's size in bytes.
    """
    spec_path, dest = Path(spec_path), Path(dest)
    spec = load_data_spec(spec_path)
    if dest.exists() and any(dest.iterdir()):
        raise MatteError("pack folder is not empty", dest)
    layout = _Layout()
    photos: dict[Path, tuple[Path, Path, Path | None, Path | None, int, int, int]] = {}
    tables: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    foregrounds: list[str] = []
    for source_spec, source in zip(spec.sources, _sources(spec), strict=True):
        folder = layout.folder(source.root)
        table: dict[str, Any] = {"kind": source.kind, "root": folder, "weight": source_spec.weight}
        if source_spec.label:
            table["label"] = source_spec.label
        if isinstance(source, CutoutSource):
            for name in source.names:
                _pack_cutout(source.files[name], dest / folder / f"{name}.png", long_side)
        else:
            has_photos = source.kind == "pairs" or (source.root / "image").is_dir()
            for name in source.names:
                image_path, alpha_path = source.pairs[name]
                if source.kind == "composition" and has_photos:
                    image_path = _photo_of(source.root, name)
                sub = "image" if has_photos else "fg"
                job = (
                    image_path,
                    dest / folder / sub / f"{name}.jpg",
                    alpha_path,
                    dest / folder / "alpha" / f"{name}.png",
                    long_side,
                    quality,
                    quality_margin,
                )
                photos[job[1]] = job
            if source.kind == "composition" and has_photos and folder not in foregrounds:
                foregrounds.append(folder)
        table["_names"] = list(source.names)
        pool = getattr(source, "backgrounds", None)
        if isinstance(pool, BackgroundPool):
            bg_folder = layout.folder(pool.folder)
            table["backgrounds"] = bg_folder
            table["_backgrounds"] = [p.stem for p in pool.paths]
            for path in pool.paths:
                target = dest / bg_folder / f"{path.stem}.jpg"
                photos[target] = (path, target, None, None, long_side, quality, quality_margin)
        tables.append(table)
        counts[f"{source.kind} {source.root.name}"] = len(source)
    _run(_pack_photo, photos.values(), workers)
    add_name_lists(dest, tables)
    packed_spec = dest / spec_path.name
    packed_spec.write_text(spec_toml(spec, tables, spec_path), encoding="utf-8")
    manifest = {
        "format": 1,
        "recipe": str(spec_path),
        "spec": packed_spec.name,
        "long_side": long_side,
        "quality": quality,
        "counts": counts,
        "foregrounds": foregrounds,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    return PackSummary(packed_spec, counts, foregrounds, size)


def _photo_of(root: Path, name: str) -> Path:
    from mattecli.data.reading import list_images

    photos = list_images(root / "image")
    if name not in photos:
        raise MatteError(f"no photo for {name} (its foreground cannot be re-estimated)", root / "image")
    return photos[name]


def _run(function: Any, jobs: Iterable[Any], workers: int | None) -> None:
    jobs = list(jobs)
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(jobs) < 2:
        for job in jobs:
            function(job)
        return
    # Spawned, not forked: a fork of a process whose OpenMP / onnxruntime threads are running (a test run,
    # a notebook) can deadlock in the child on a lock some thread held at the fork.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_single_threaded) as pool:
        for _ in pool.map(function, jobs, chunksize=8):
            pass


def _single_threaded() -> None:
    cv2.setNumThreads(1)
    import torch

    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------- foregrounds


def _estimate_one(job: tuple[Path, Path, Path]) -> None:
    from mattecli.foreground import estimate_foreground

    image_path, alpha_path, target = job
    rgb = read_rgb(image_path)
    alpha = read_alpha(alpha_path)
    foreground = estimate_foreground(rgb, alpha)
    temporary = target.with_name(f".{target.name}.part")
    _write_jpeg(temporary, to_uint8(foreground, half_up=True), 95)
    os.replace(temporary, target)


def estimate_pack_foregrounds(dest: str | Path, workers: int | None = None) -> int:
    """Write ``fg/NAME.jpg`` (blur-fusion foreground colours, JPEG q95) for every photo of the pack's
    composition folders that has none yet; returns how many were written. Parallel over ``workers``
    processes (default: every core), one thread each."""
    dest = Path(dest)
    manifest = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    jobs = []
    for folder in manifest["foregrounds"]:
        root = dest / folder
        (root / "fg").mkdir(exist_ok=True)
        for image in sorted((root / "image").glob("*.jpg")):
            target = root / "fg" / image.name
            if not target.exists():
                jobs.append((image, root / "alpha" / f"{image.stem}.png", target))
    _run(_estimate_one, jobs, workers)
    return len(jobs)


if __name__ == "__main__":
    from mattecli.data.pack_cli import main

    sys.exit(main())
