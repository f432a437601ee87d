"""`matte image` throughput and memory with the default model on this machine.

Prints images/s at 1, 4 and 12 megapixels (whole pipeline: matte + decontamination + RGBA PNG encode),
the time share of decontamination, the throughput at a 512 px long side (the default model's working size),
and peak resident memory for a 50-megapixel image (measured in a fresh subprocess).

    python benchmarks/bench_image.py                  # bundled default model
    python benchmarks/bench_image.py --model lite.safetensors --repeats 3
    python benchmarks/bench_image.py --sizes 1 --big 0 --tta   # with the mirrored second pass
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"


def make_photo(megapixels: float) -> np.ndarray:
    """The bundled example photo scaled to the requested size (3:2), as float32 RGB."""
    import cv2

    from mattecli.image.decoding import read_image

    base = read_image(EXAMPLE).rgb
    height = round((megapixels * 1e6 / 1.5) ** 0.5)
    width = round(height * 1.5)
    return cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def load_matter(model: str, refine: bool | None = None, tta: bool = False):
    from mattecli.inference import Matter

    return Matter(model=model, device="cpu", refine=refine, tta=tta)


def time_pipeline(matter, image: np.ndarray, repeats: int) -> dict:
    from mattecli.image.encoding import write_rgba_png

    alpha_s, fg_s, total_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats + 1):
            start = time.perf_counter()
            alpha = matter.predict_alpha(image)
            t_alpha = time.perf_counter()
            fg = matter.estimate_foreground(image, alpha)
            t_fg = time.perf_counter()
            write_rgba_png(Path(tmp) / f"{i}.png", fg, alpha)
            end = time.perf_counter()
            if i:  # the first run warms up oneDNN's kernel caches
                alpha_s.append(t_alpha - start)
                fg_s.append(t_fg - t_alpha)
                total_s.append(end - start)
    med = lambda xs: float(np.median(xs))  # noqa: E731
    return {"alpha_s": med(alpha_s), "decontaminate_s": med(fg_s), "total_s": med(total_s)}


def peak_memory_child(model: str, megapixels: float, refine: bool | None, tta: bool) -> None:
    matter = load_matter(model, refine, tta)
    image = make_photo(megapixels)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as tmp:
        from mattecli.image.encoding import write_rgb, write_rgba_png

        src = Path(tmp) / "big.png"
        write_rgb(src, image)
        del image
        start = time.perf_counter()
        result = matter.matte(src)
        write_rgba_png(Path(tmp) / "out.png", result.foreground, result.alpha)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak / 1024, "before_mb": base / 1024, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--sizes", nargs="+", type=float, default=[1, 4, 12])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", type=float, default=50.0, help="megapixels of the memory test (0: skip)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-refine", action="store_true", help="skip full-resolution refinement")
    parser.add_argument("--tta", action="store_true", help="average with the mirrored image (matte --tta)")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        peak_memory_child(args.model, args.child, False if args.no_refine else None, args.tta)
        return
    import torch

    matter = load_matter(args.model, False if args.no_refine else None, args.tta)
    print(
        f"model {matter.model_name} ({matter.config.name}), working size {matter.max_size}, "
        f"{torch.get_num_threads()} threads{', mirrored TTA' if args.tta else ''}"
    )
    small = make_photo(512 * 341 / 1e6)
    r = time_pipeline(matter, small, args.repeats * 3)
    print(
        f"512 x 341 : {1 / r['total_s']:.2f} images/s (matte {r['alpha_s']:.3f} s, decontaminate {r['decontaminate_s']:.3f} s)"
    )
    for mp in args.sizes:
        r = time_pipeline(matter, make_photo(mp), args.repeats)
        share = r["decontaminate_s"] / r["total_s"]
        print(
            f"{mp:4.0f} MP   : {1 / r['total_s']:.2f} images/s (matte {r['alpha_s']:.2f} s, decontaminate "
            f"{r['decontaminate_s']:.2f} s = {100 * share:.0f} % of the total {r['total_s']:.2f} s)"
        )
    if args.big:
        cmd = [sys.executable, __file__, "--model", args.model, "--child", str(args.big)]
        cmd += ["--threads", str(args.threads)] if args.threads else []
        cmd += ["--no-refine"] if args.no_refine else []
        cmd += ["--tta"] if args.tta else []
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(
            f"{args.big:.0f} MP peak resident memory: {out['peak_mb']:.0f} MB ({out['seconds']:.1f} s incl. read and write)"
        )


if __name__ == "__main__":
    main()
