"""Large photos (issue 21): matte quality, time and peak memory of the full-resolution settings.

Stand-ins, not real large photos: real labelled high-resolution photos are not available, so the held-out
validation photos are enlarged: ``val_people`` and ``val_ccp`` x3 and x4, ``val_portraits`` x3, bicubic,
their alpha labels enlarged alike, written as JPEG quality 95 to a temporary folder. An enlarged photo holds
no more detail than the original, so these numbers show whether full-resolution work damages the matte
(holes in torsos, lost limbs) and what it costs, not how much real fine detail it could recover.

Each setting runs in its own process (its peak resident memory is that process's maximum) and mattes every
photo as ``matte image`` does: decode, matte, decontaminate, encode an RGBA PNG (the time per photo covers
all of it; scoring does not count). Scores are ``matte eval``'s (:mod:`mattecli.metrics`): mask IoU, MSE,
SAD and gradient error (/1000), and the half-transparent share of the matte ("soft"; the labels' own share
is printed as ``label``).

    python benchmarks/bench_large.py                                 # every setting, every photo (long)
    python benchmarks/bench_large.py --limit 2 --settings no-refine,guided    # smoke test
    python benchmarks/bench_large.py --speed 12,48,100               # `matte image` end to end: time, memory
    python benchmarks/bench_large.py --profile 12                    # where the time goes on a 12 MP photo

Settings: ``no-refine`` (the global pass upsampled), ``tiles`` (tiled refinement before issue 21), ``band``
(tiles only in the global matte's soft band), ``guided`` (guided upsampling in the band), ``band+guided``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RECIPE = ROOT / "weights" / "recipe"
SETTINGS = ("no-refine", "tiles", "band", "guided", "band+guided")
#: (split, data folder, scale factors)
SPLITS = (("people", "people", (3, 4)), ("ccp", "ccp", (3, 4)), ("portraits", "portraits", (3,)))
SCORES = ("iou", "mse", "sad", "grad", "soft", "label")


# -- stand-in photos ------------------------------------------------------------------------------


def make_photos(data: Path, out: Path, limit: int | None) -> list[tuple[str, Path, Path]]:
    """Enlarged photos and labels in ``out``: (group, photo.jpg, label.png) per photo."""
    import cv2

    made = []
    for split, folder, scales in SPLITS:
        names = (RECIPE / f"val_{split}.txt").read_text().split()[:limit]
        for name in names:
            image = cv2.imread(str(next((data / folder / "image").glob(f"{name}.*"))), cv2.IMREAD_COLOR)
            label = cv2.imread(str(next((data / folder / "alpha").glob(f"{name}.*"))), cv2.IMREAD_GRAYSCALE)
            for scale in scales:
                size = (image.shape[1] * scale, image.shape[0] * scale)
                photo = out / f"{split}_x{scale}_{name}.jpg"
                cv2.imwrite(
                    str(photo),
                    cv2.resize(image, size, interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 95],
                )
                alpha = out / f"{split}_x{scale}_{name}.png"
                cv2.imwrite(str(alpha), cv2.resize(label, size, interpolation=cv2.INTER_CUBIC))
                made.append((f"{split} x{scale}", photo, alpha))
    return made


def make_megapixel_photo(data: Path, megapixels: float, out: Path) -> Path:
    """The first held-out portrait enlarged (bicubic) to about ``megapixels``, as JPEG q95."""
    import cv2

    name = (RECIPE / "val_portraits.txt").read_text().split()[0]
    image = cv2.imread(str(next((data / "portraits" / "image").glob(f"{name}.*"))), cv2.IMREAD_COLOR)
    scale = (megapixels * 1e6 / (image.shape[0] * image.shape[1])) ** 0.5
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    path = out / f"portrait_{megapixels:g}mp.jpg"
    cv2.imwrite(
        str(path), cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 95]
    )
    return path


# -- one setting, in its own process ---------------------------------------------------------------


def load_matter(model: str, setting: str):
    from mattecli.inference import Matter

    if setting == "no-refine":
        return Matter(model=model, device="cpu", refine=False)
    return Matter(model=model, device="cpu", refinement=setting)


def worker(model: str, setting: str, listing: Path) -> None:
    """Matte each photo of ``listing`` (JSON) as ``matte image`` does; print one JSON line per photo."""
    import cv2

    from mattecli.image.decoding import read_image
    from mattecli.image.encoding import encode_rgba
    from mattecli.metrics import evaluate, soft_share

    matter = load_matter(model, setting)
    warm = np.full((64, 64, 3), 128, np.uint8)
    matter.matte(warm)  # oneDNN's first call builds its kernels
    for group, photo, label in json.loads(listing.read_text()):
        start = time.perf_counter()
        result = matter.matte(read_image(photo))
        encode_rgba(result.foreground_pixels, result.alpha, ".png")
        seconds = time.perf_counter() - start
        gt = cv2.imread(label, cv2.IMREAD_GRAYSCALE)
        scores = evaluate(result.alpha, gt)
        row = {key: scores[key] for key in ("iou", "mse", "sad", "grad", "soft")}
        row.update(group=group, photo=Path(photo).name, seconds=seconds, label=soft_share(gt, gt))
        print(json.dumps(row), flush=True)


def run_setting(model: str, setting: str, listing: Path) -> tuple[list[dict], float]:
    """Rows of one setting and its process's peak resident memory (MB)."""
    command = [sys.executable, __file__, "--worker", setting, "--listing", str(listing), "--model", model]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{setting}: worker failed (status {status})")
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")], usage.ru_maxrss / 1024


def report(setting: str, rows: list[dict], peak_mb: float) -> None:
    groups = [*sorted({row["group"] for row in rows}), "all"]
    for group in groups:
        chosen = [row for row in rows if group in ("all", row["group"])]
        means = {key: float(np.mean([row[key] for row in chosen])) for key in SCORES}
        seconds = [row["seconds"] for row in chosen]
        print(
            f"{setting:12s} {group:14s} n={len(chosen):3d}  IoU {means['iou']:.3f}  MSE {means['mse']:.4f}  "
            f"SAD {means['sad']:7.2f}  grad {means['grad']:7.2f}  soft {means['soft']:.3f} "
            f"(label {means['label']:.3f})  {np.mean(seconds):5.2f} s/photo "
            f"({min(seconds):.2f}-{max(seconds):.2f})"
            + (f"  peak {peak_mb:.0f} MB" if group == "all" else "")
        )


# -- speed: `matte image` end to end, and where the time goes ---------------------------------------


def speed(model: str, data: Path, megapixels: list[float], tmp: Path) -> None:
    """``matte image X -o X.png`` in a fresh process per size: wall time and peak resident memory (the
    time includes Python's start-up and loading the model)."""
    for size in megapixels:
        photo = make_megapixel_photo(data, size, tmp)
        command = [
            sys.executable,
            "-m",
            "mattecli",
            "image",
            str(photo),
            "-o",
            str(tmp / "out.png"),
            "--overwrite",
            "--quiet",
            "--model",
            model,
            "--device",
            "cpu",
        ]
        start = time.perf_counter()
        process = subprocess.Popen(command)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        print(
            f"{size:g} MP: matte image {wall:.2f} s end to end, peak {usage.ru_maxrss / 1024:.0f} MB"
            + ("" if status == 0 else f" (FAILED, status {status})")
        )


def profile(model: str, data: Path, megapixels: float, tmp: Path) -> None:
    """Time each stage of the default setting on one photo, and PNG encoding at several levels."""
    import cv2

    from mattecli.image.conversion import to_uint8
    from mattecli.image.decoding import read_image
    from mattecli.inference import Matter
    from mattecli.tiling import resize, working_size

    photo = make_megapixel_photo(data, megapixels, tmp)
    matter = Matter(model=model, device="cpu")
    matter.matte(np.full((64, 64, 3), 128, np.uint8))
    times: dict[str, float] = {}

    def timed(stage: str, function, *args):
        start = time.perf_counter()
        value = function(*args)
        times[stage] = time.perf_counter() - start
        return value

    pixels = timed("decode", lambda: read_image(photo).pixels)
    height, width = pixels.shape[:2]
    h, w = working_size(height, width, matter.max_size)
    small = timed("shrink", matter._shrink, pixels, h, w, True)
    import torch

    coarse = timed("network", lambda: matter._forward(torch.from_numpy(small[None]).permute(0, 3, 1, 2)))
    coarse = coarse.numpy()[0, 0]
    alpha = timed("upsample", resize, coarse, height, width)
    if matter.refinement == "tiles":
        alpha = timed(f"refine ({matter.refinement})", matter._refine_tiles_old, pixels, alpha, coarse, None)
    else:
        alpha = timed(f"refine ({matter.refinement})", matter._refine_in_band, pixels, alpha, coarse, None)
    foreground = timed("decontaminate", matter._estimate_foreground_pixels, pixels, alpha)
    from mattecli.foreground import estimate_foreground

    whole = np.empty_like(pixels)
    timed("(decontaminate whole image)", lambda: estimate_foreground(pixels, alpha, out=whole))
    differing = (whole != foreground).any(axis=2) & (alpha >= 0.5 / 255)
    print(
        f"  where-needed vs whole-image decontamination: {differing.mean():.2e} of visible pixels differ, "
        f"by at most {np.abs(whole.astype(int) - foreground).max()} codes"
    )
    bgra = timed("to 8-bit BGRA", lambda: np.dstack([foreground[:, :, ::-1], to_uint8(alpha)]))
    sizes = {}
    for level in (None, 0, 1, 3, 6, 9):
        name = f"PNG level {'default' if level is None else level}"
        parameters = [] if level is None else [cv2.IMWRITE_PNG_COMPRESSION, level]
        sizes[name] = len(timed(name, cv2.imencode, ".png", bgra, parameters)[1]) / 1e6
    print(f"{megapixels:g} MP ({width} x {height}), refinement {matter.refinement}:")
    for stage, seconds in times.items():
        size = f"  {sizes[stage]:6.1f} MB" if stage in sizes else ""
        print(f"  {stage:30s} {seconds:6.2f} s{size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--limit", type=int, default=None, help="photos per split (smoke tests)")
    parser.add_argument("--speed", default=None, help="comma-separated megapixels: `matte image` end to end")
    parser.add_argument("--profile", type=float, default=None, help="megapixels: time each stage")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--listing", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.model, args.worker, args.listing)
        return
    with tempfile.TemporaryDirectory(prefix="bench_large_") as folder:
        tmp = Path(folder)
        if args.profile:
            profile(args.model, args.data, args.profile, tmp)
            return
        if args.speed:
            speed(args.model, args.data, [float(size) for size in args.speed.split(",")], tmp)
            return
        photos = make_photos(args.data, tmp, args.limit)
        listing = tmp / "photos.json"
        listing.write_text(json.dumps([[group, str(photo), str(label)] for group, photo, label in photos]))
        print(f"{len(photos)} stand-in photos (enlarged held-out photos, JPEG q95)")
        for setting in args.settings.split(","):
            if setting not in SETTINGS:
                raise SystemExit(f"unknown setting {setting!r} (choose from {', '.join(SETTINGS)})")
            rows, peak = run_setting(args.model, setting, listing)
            report(setting, rows, peak)


if __name__ == "__main__":
    main()
