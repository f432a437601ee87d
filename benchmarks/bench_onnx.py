"""Network throughput on the CPU: onnxruntime on the exported ONNX file vs mattecli's PyTorch path.

The PyTorch side is what ``Matter`` runs (``Matter._forward``: BatchNorm folded, channels_last, inference
mode); the ONNX side is ``matte export MODEL -o model.onnx`` run by onnxruntime's CPU provider. Both get the
same thread count and the same N x 3 x H x W float32 batch in [0, 1]. The machine may be shared, so the two
are measured in interleaved rounds (the order alternating) and every round is printed with the spread.

    python benchmarks/bench_onnx.py                          # bundled model, 352 x 512 (a 512 x 341 photo), 2 threads
    python benchmarks/bench_onnx.py --rounds 5 --images 10 --threads 1
    python benchmarks/bench_onnx.py --model runs/joint --height 512 --width 512 --batch 4
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def images_per_second(run: Callable[[], object], batches: int, batch_size: int) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        run()
    return batches * batch_size / (time.perf_counter() - start)


def make_runners(args: argparse.Namespace, onnx_file: Path) -> dict[str, Callable[[], object]]:
    import onnxruntime as ort
    import torch

    from mattecli.inference import Matter
    from mattecli.modelfiles.onnx_export import OnnxNet

    torch.set_num_threads(args.threads)
    image = np.random.default_rng(0).random((args.batch, 3, args.height, args.width), dtype=np.float32)
    matter = Matter(args.model, device="cpu")
    batch = torch.from_numpy(image)
    runners: dict[str, Callable[[], object]] = {"pytorch": lambda: matter._forward(batch)}
    for spinning in (True, False) if args.spinning_too else (False,):
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads help on an idle machine and hurt on a shared one; PyTorch's OpenMP
        # threads sleep when OMP_WAIT_POLICY=PASSIVE (as the CLI sets it).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        name = "onnxruntime" + (" (spinning)" if spinning else "")
        runners[name] = lambda session=session: session.run(None, {"image": image})
    # The proposed integration: Matter's own _forward with OnnxNet in place of the PyTorch network.
    onnx_matter = Matter(args.model, device="cpu")
    onnx_matter.net = OnnxNet(onnx_file, threads=args.threads)
    runners["Matter + OnnxNet"] = lambda: onnx_matter._forward(batch)
    # Same answer before timing anything.
    reference = runners["pytorch"]().numpy()
    for name, run in runners.items():
        if name != "pytorch":
            difference = float(np.abs(np.asarray(run()[0]) - reference).max())
            print(f"{name}: max |alpha - pytorch| = {difference:.2e}")
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="weights file, model name or run folder")
    parser.add_argument("--height", type=int, default=352)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--images", type=int, default=8, help="batches per backend per round")
    parser.add_argument("--spinning-too", action="store_true", help="also time onnxruntime with spinning")
    args = parser.parse_args()

    from mattecli.modelfiles.onnx_export import export_onnx

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        onnx_file = export_onnx(args.model, Path(folder) / "model.onnx")
        print(f"export: {time.perf_counter() - start:.1f} s, {onnx_file.stat().st_size / 1e6:.1f} MB")
        runners = make_runners(args, onnx_file)
        for run in runners.values():
            run()  # warm-up: allocator, oneDNN primitives, onnxruntime's arena
        results: dict[str, list[float]] = {name: [] for name in runners}
        for round_index in range(args.rounds):
            order = list(runners) if round_index % 2 == 0 else list(reversed(runners))
            line = []
            for name in order:
                rate = images_per_second(runners[name], args.images, args.batch)
                results[name].append(rate)
                line.append(f"{name} {rate:.2f}")
            print(f"round {round_index + 1}: " + ", ".join(line) + " images/s")
    shape = f"{args.batch} x 3 x {args.height} x {args.width}"
    print(f"\n{args.model}, input {shape}, {args.threads} threads, {args.rounds} rounds x {args.images}:")
    for name, rates in results.items():
        print(
            f"  {name:24s} median {statistics.median(rates):.2f} images/s "
            f"(min {min(rates):.2f}, max {max(rates):.2f})"
        )
    base = statistics.median(results["pytorch"])
    for name, rates in results.items():
        if name != "pytorch":
            print(f"  {name} / pytorch: {statistics.median(rates) / base:.2f}x (medians)")


if __name__ == "__main__":
    main()
