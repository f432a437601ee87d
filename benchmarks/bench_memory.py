"""Peak resident memory of ``matte image`` on large photos, one fresh process per run.

Makes synthetic JPEGs itself (the bundled astronaut example scaled up to 4:3 at each size, with camera grain
so that they encode like photographs rather than flat colour), then runs the real command line on each,
with the default settings (full-resolution refinement is on: every size here is far over twice 512 px):

    matte image big.jpg -o big.png               # kind "rgba"
    matte image big.jpg --bg white -o big.jpg    # kind "white"

and reads the child's peak RSS from ``os.wait4`` (Linux reports ``ru_maxrss`` in KiB), so each figure is that
one process's own peak, not the maximum over every child so far as ``RUSAGE_CHILDREN`` would give.

    python benchmarks/bench_memory.py                          # 12, 50 and 100 MP, both kinds
    python benchmarks/bench_memory.py --sizes 100 --kinds rgba
    PYTHONPATH=/path/to/old/checkout python benchmarks/bench_memory.py   # measure another version

The child runs ``python -m mattecli`` with this interpreter and environment in the temporary folder, so
``PYTHONPATH`` chooses which mattecli is measured (the first line printed says which one it was).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"
KINDS = {"rgba": ([], ".png"), "white": (["--bg", "white"], ".jpg")}


def make_jpeg(path: Path, megapixels: float, seed: int = 0) -> tuple[int, int]:
    """Write the example photo scaled to ``megapixels`` (4:3) with grain (sigma 3 levels) as a JPEG.

    Noise is added a band of rows at a time so that making a 100 MP picture needs about 0.6 GB here.
    """
    import cv2

    base = cv2.imread(str(EXAMPLE))
    height = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    width = round(height * 4 / 3)
    big = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    for top in range(0, height, 256):
        rows = big[top : top + 256]
        grain = rng.normal(0.0, 3.0, rows.shape).astype(np.float32)
        rows[...] = np.clip(rows + grain, 0, 255).astype(np.uint8)
    if not cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise SystemExit(f"could not write {path}")
    return height, width


def run_matte(source: Path, kind: str, folder: Path, extra: list[str]) -> dict:
    """One ``matte image`` in a fresh process: its peak RSS (MB), wall time and output size."""
    options, suffix = KINDS[kind]
    target = folder / f"{source.stem}.{kind}{suffix}"
    command = [sys.executable, "-m", "mattecli", "image", str(source), "-o", str(target)]
    command += [*options, "--overwrite", "--quiet", *extra]
    start = time.perf_counter()
    # Not from the checkout's folder: ``python -m`` puts the working folder first on sys.path, ahead of
    # PYTHONPATH, so the child would import whatever mattecli lies there.
    process = subprocess.Popen(command, stderr=subprocess.PIPE, cwd=folder)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"matte image failed ({process.returncode}): {errors.strip()[-2000:]}")
    size = target.stat().st_size
    target.unlink()
    return {"peak_mb": usage.ru_maxrss / 1024, "seconds": seconds, "output_mb": size / 1e6}


def child_package(folder: Path) -> str:
    """Where the measured processes import mattecli from (they run in ``folder``, with this environment)."""
    code = "import mattecli, pathlib; print(pathlib.Path(mattecli.__file__).parent)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[12, 50, 100], help="megapixels")
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=["rgba", "white"])
    parser.add_argument("--folder", type=Path, help="where the test pictures go (default: a temporary one)")
    parser.add_argument("extra", nargs="*", help="more `matte image` options, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        print(f"measuring {child_package(folder)}, python {sys.version.split()[0]}")
        print("| image | megapixels | output | peak RSS | wall time | output size |")
        print("| --- | --- | --- | --- | --- | --- |")
        for megapixels in args.sizes:
            source = folder / f"photo{megapixels:g}mp.jpg"
            height, width = make_jpeg(source, megapixels)
            for kind in args.kinds:
                result = run_matte(source, kind, folder, args.extra)
                print(
                    f"| {width} x {height} | {width * height / 1e6:.1f} | {kind}{KINDS[kind][1]} "
                    f"| {result['peak_mb']:.0f} MB | {result['seconds']:.1f} s | {result['output_mb']:.0f} MB |",
                    flush=True,
                )
            source.unlink()


if __name__ == "__main__":
    main()
