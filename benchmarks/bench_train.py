"""Training throughput on this machine: samples/s and the share of step time spent waiting for data.

Runs the real trainer (``mattecli.training.train``) for a few steps per case, random initialisation, on a
generated pairs data set (or ``--data FOLDER``), and reads the numbers the trainer itself logs to
``metrics.jsonl``: the first ``--warmup`` steps are one logging window (allocator and oneDNN warm-up) and
are left out, the next ``--steps`` steps are the measurement.

    python benchmarks/bench_train.py                      # lite and paper, 320 px, batch 2
    # the CPU default (issue 20): precision, batch, crop and data workers on the real round-5 mixture
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train.py --models lite --stages seg \
        --data weights/recipe/train_round5_portraits.toml --precision fp32 bf16 --batch 8 --size 320 \
        --workers 1 --warmup 10 --steps 20
    python benchmarks/bench_train.py --models lite --workers 0 2 --stages seg joint --steps 10
    # on a GPU machine, with the packed round-5 data: batch sizes, torch.compile, data workers
    python benchmarks/bench_train.py --device cuda --data /tmp/round5/pack/train_round5.toml \
        --models lite2 --stages seg joint --size 512 --batch 32 64 --workers 15 --compile both \
        --warmup 10 --steps 20
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mattecli.training import RunConfig, train  # noqa: E402
from mattecli.training.run_log import read_metrics  # noqa: E402


def make_data(root: Path, n: int = 24, size: tuple[int, int] = (480, 640)) -> Path:
    """Photo-sized synthetic pairs (textured background, soft-edged blob), written as JPEG + PNG."""
    rng = np.random.default_rng(0)
    (root / "image").mkdir(parents=True)
    (root / "alpha").mkdir()
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, rng.uniform(0.2, 0.35) * h
        alpha = np.clip((r - np.hypot(xx - cx, (yy - cy) * 0.7)) / 8 + 0.5, 0, 1).astype(np.float32)
        background = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 3)
        image = alpha[..., None] * rng.uniform(120, 255, 3) + (1 - alpha[..., None]) * background
        cv2.imwrite(str(root / "image" / f"{i:03d}.jpg"), image.astype(np.uint8))
        cv2.imwrite(str(root / "alpha" / f"{i:03d}.png"), (alpha * 255).round().astype(np.uint8))
    return root


def run_case(
    data: Path,
    out: Path,
    model: str,
    stage: str,
    workers: int,
    size: int,
    batch: int,
    warmup: int,
    steps: int,
    device: str = "cpu",
    compile: bool = False,
    precision: str = "auto",
) -> dict:
    config = RunConfig(
        data=str(data),
        out=str(out),
        model_config=model,
        pretrained=False,
        stage=stage,
        size=size,
        batch_size=batch,
        workers=workers,
        steps=warmup + steps,
        log_every=warmup,
        ckpt_every=10**9,
        quiet=True,
        seed=0,
        device=device,
        compile=compile,
        precision=precision,
    )
    if steps % warmup:
        raise SystemExit("--steps must be a multiple of --warmup (both are logging windows)")
    start = time.perf_counter()
    train(config)
    wall = time.perf_counter() - start
    windows = [r for r in read_metrics(out / "metrics.jsonl") if r["type"] == "train"][1:]
    measured = sum(w["samples_per_s"] ** -1 for w in windows) / len(windows)  # s per sample
    return {
        "model": model,
        "stage": stage,
        "batch": batch,
        "compile": compile,
        "precision": precision,
        "size": size,
        "workers": workers,
        "samples_per_s": round(1.0 / measured, 3),
        "step_s": round(batch * measured, 3),
        "data_wait_share": round(float(np.mean([w["data_wait"] for w in windows])), 4),
        "wall_s_incl_setup": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lite", "paper"])
    parser.add_argument("--stages", nargs="+", default=["seg"])
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    parser.add_argument("--size", type=int, nargs="+", default=[320])
    parser.add_argument(
        "--precision", nargs="+", default=["auto"], help="auto, fp32, bf16 (autocast; on the CPU too)"
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--compile", choices=("off", "on", "both"), default="off", help="torch.compile the step (on a GPU)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--paper-steps", type=int, default=2, help="Measured steps for paper (slow).")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (use 1 on a busy machine: spinning "
        "OpenMP threads that wait for each other are far slower than one thread)",
    )
    parser.add_argument("--data", type=Path, help="A real data folder instead of generated pairs.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_data(Path(tmp) / "data")
        for model in args.models:
            steps = args.paper_steps if model == "paper" else args.steps
            warmup = 1 if model == "paper" else args.warmup
            compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
            cases = itertools.product(
                args.stages, args.workers, args.batch, compiles, args.size, args.precision
            )
            for stage, workers, batch, compile, size, precision in cases:
                out = Path(tmp) / f"{model}-{stage}-{workers}-{batch}-{int(compile)}-{size}-{precision}"
                result = run_case(
                    data,
                    out,
                    model,
                    stage,
                    workers,
                    size,
                    batch,
                    warmup,
                    steps,
                    args.device,
                    compile,
                    precision,
                )
                results.append(result)
                print(json.dumps(result), flush=True)
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads, device {args.device}"
    )
    print(
        "| model | stage | size | precision | batch | compile | workers | samples/s | s/step | data wait "
        "| wall incl. set-up |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['model']} | {r['stage']} | {r['size']} | {r['precision']} | {r['batch']} | "
            f"{r['compile']} | {r['workers']} | "
            f"{r['samples_per_s']} | {r['step_s']} | {100 * r['data_wait_share']:.1f} % | "
            f"{r['wall_s_incl_setup']} s |"
        )


if __name__ == "__main__":
    main()
