"""Throughput of the training data pipeline (decode + augment + composite) on the real training data.

Decoding and resizing, not the network, are what a CPU training step waits on when the data loader is
slow, so this measures samples per second at the training size for 0 and 2 DataLoader workers.

    python benchmarks/bench_data.py [--data ../shared/data] [--size 320] [--samples 240]

The default data folder is ``../shared/data`` next to the repository (people/, cutouts/, backgrounds/).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mattecli.data import DataSpec, SourceSpec, build_dataset, collate, worker_init_fn

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def real_spec(data: Path) -> DataSpec:
    """The mixture the default model trains on: photos, their foregrounds re-composited, cut-outs."""
    backgrounds = data / "backgrounds"
    return DataSpec(
        (
            SourceSpec(data / "people", kind="pairs", weight=2.0),
            SourceSpec(data / "people", kind="composition", backgrounds=backgrounds, weight=1.0),
            SourceSpec(data / "cutouts", kind="cutouts", backgrounds=backgrounds, weight=1.0),
        )
    )


def measure(spec: DataSpec, size: int, samples: int, workers: int, batch_size: int = 8) -> float:
    """Samples per second over ``samples`` training samples (worker start-up included)."""
    dataset = build_dataset(spec, size=size, train=True, seed=0, epoch_length=samples)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=worker_init_fn,
        generator=torch.Generator().manual_seed(0),
    )
    start = time.perf_counter()
    count = sum(batch["image"].shape[0] for batch in loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--samples", type=int, default=240)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    torch.set_num_threads(2)
    spec = real_spec(args.data.resolve())
    measure(spec, args.size, 16, 0)  # warm the file cache so the first setting is not penalised
    for workers in args.workers:
        rate = measure(spec, args.size, args.samples, workers)
        print(f"train {args.size}x{args.size}, {workers} workers: {rate:.1f} samples/s")
    evaluation = build_dataset(spec, size=args.size, train=False)
    start = time.perf_counter()
    count = min(len(evaluation), args.samples)
    for index in range(count):
        evaluation[index]
    rate = count / (time.perf_counter() - start)
    print(f"eval long side {args.size}, 0 workers: {rate:.1f} samples/s")


if __name__ == "__main__":
    main()
