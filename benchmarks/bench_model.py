"""Forward time, peak memory and FLOPs of the ``paper`` and ``lite`` networks on this machine's CPU.

Prints one line per (config, size) and the machine's measured float32 matmul peak, so the achieved GFLOP/s
of inference can be read against the hardware limit. Each measurement runs in a fresh subprocess so that
peak resident memory (ru_maxrss) belongs to that configuration alone.

    python benchmarks/bench_model.py                 # paper and lite at 512 and 1024
    python benchmarks/bench_model.py --configs lite --sizes 512 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best-of float32 matmul throughput: the practical compute ceiling of this CPU for torch."""
    import torch

    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def measure_one(config_name: str, size: int, repeats: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mattecli.modelfiles.catalog import get_config
    from mattecli.models import LateFusionNet

    net = LateFusionNet(get_config(config_name)).eval()
    x = torch.rand(1, 3, size, size)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.inference_mode():
        net(x)  # warm-up (allocator, oneDNN primitive caches)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - start)
        counter = FlopCounterMode(display=False)
        with counter:
            net(x)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = sorted(times)[len(times) // 2]
    flops = counter.get_total_flops()
    return {
        "config": config_name,
        "size": size,
        "threads": torch.get_num_threads(),
        "median_s": seconds,
        "gflops": flops / 1e9,
        "achieved_gflops_per_s": flops / seconds / 1e9,
        "peak_rss_mb": peak_mb,
        "rss_growth_mb": peak_mb - rss_before / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["paper", "lite"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]), args.repeats)))
        return
    import torch

    peak = matmul_peak_gflops()
    print(f"float32 matmul peak (2048^3, best of 10, {torch.get_num_threads()} threads): {peak:.1f} GFLOP/s")
    header = "config  size  time/img  GFLOPs  GFLOP/s  %peak  peak RSS"
    print(header)
    for config in args.configs:
        for size in args.sizes:
            cmd = [sys.executable, __file__, "--one", config, str(size), "--repeats", str(args.repeats)]
            cmd += ["--threads", str(args.threads)] if args.threads else []
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            print(
                f"{config:6s} {size:5d}  {r['median_s']:7.3f}s  {r['gflops']:6.1f}  "
                f"{r['achieved_gflops_per_s']:7.1f}  {100 * r['achieved_gflops_per_s'] / peak:4.0f}%  "
                f"{r['peak_rss_mb']:6.0f} MB"
            )


if __name__ == "__main__":
    main()
