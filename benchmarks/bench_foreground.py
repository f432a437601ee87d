"""Time foreground estimation (blur fusion) in seconds per megapixel at 1, 4 and 12 MP.

Usage:  python benchmarks/bench_foreground.py [--device cuda] [--repeats 3] [--threads 2]

Reports the best wall-clock time of ``--repeats`` runs after one warm-up run (the first call also
pays for importing OpenCV and for the operating system handing out fresh memory), for the numpy
entry point (H x W x 3 arrays in and out, what ``matte image`` uses) and for the torch entry point
(N x 3 x H x W tensors already on the device, what a GPU video pipeline uses). The images are
random: the method's cost does not depend on the content. The "cpu" columns give the process's CPU
seconds per megapixel of the same runs (all threads together): on a machine shared with other jobs
they show the work done even when the wall-clock time is inflated by waiting for a core.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from mattecli.foreground import estimate_foreground, estimate_foreground_torch

SIZES = {1: (866, 1155), 4: (1732, 2309), 12: (3000, 4000)}  # (height, width), 4:3


def _best_time(function, repeats: int, synchronize) -> tuple[float, float]:
    """(best wall seconds, least CPU seconds) over ``repeats`` runs after a warm-up."""
    function()
    synchronize()
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        synchronize()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    cv2.setNumThreads(arguments.threads)  # the CPU box blurs run in OpenCV's own thread pool
    device = torch.device(arguments.device)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    rng = np.random.default_rng(0)
    print(f"device={device} threads={torch.get_num_threads()} repeats={arguments.repeats}")
    columns = f"{'s':>6} {'s/MP':>6} {'cpu/MP':>6}"
    print(f"{'MP':>4} {'size':>11}  numpy: {columns}  torch: {columns}")
    for megapixels, (height, width) in SIZES.items():
        image = rng.random((height, width, 3), dtype=np.float32)
        alpha = rng.random((height, width), dtype=np.float32)
        numpy_s, numpy_cpu = _best_time(
            lambda image=image, alpha=alpha: estimate_foreground(image, alpha, device=device),
            arguments.repeats,
            synchronize,
        )
        image_t = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous().to(device)
        alpha_t = torch.from_numpy(alpha)[None, None].to(device)
        torch_s, torch_cpu = _best_time(
            lambda image_t=image_t, alpha_t=alpha_t: estimate_foreground_torch(image_t, alpha_t),
            arguments.repeats,
            synchronize,
        )
        actual_mp = height * width / 1e6
        print(
            f"{megapixels:>4} {width:>5}x{height:<5}         {numpy_s:>6.3f} {numpy_s / actual_mp:>6.3f}"
            f" {numpy_cpu / actual_mp:>6.3f}         {torch_s:>6.3f} {torch_s / actual_mp:>6.3f}"
            f" {torch_cpu / actual_mp:>6.3f}"
        )


if __name__ == "__main__":
    main()
