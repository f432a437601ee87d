"""The default model on an accelerator: agreement with the CPU, and throughput.

Checks what no CPU run can: that ``Matter`` on CUDA (float16 autocast by default, and float32) gives the
committed example mattes, which were made on the CPU, and how fast the network and the batched video path
run there. Prints one table.

    python benchmarks/bench_device.py --device cuda [--model weights/lite.safetensors]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def agreement(matter, name: str) -> float:
    """Mean |alpha - committed CPU alpha| on one bundled example."""
    from mattecli.image.decoding import read_image

    committed = read_image(EXAMPLES / f"{name}.matte.png")
    predicted = matter.predict_alpha(read_image(EXAMPLES / f"{name}.jpg").rgb)
    return float(np.abs(predicted - committed.alpha).mean())


def images_per_second(matter, image: np.ndarray, repeats: int) -> float:
    matter.predict_alpha(image)  # warm-up: cuDNN/oneDNN kernel choice
    synchronize(matter.device)
    start = time.perf_counter()
    for _ in range(repeats):
        matter.predict_alpha(image)
    synchronize(matter.device)
    return repeats / (time.perf_counter() - start)


def frames_per_second(matter, frames: np.ndarray, repeats: int) -> float:
    matter.matte_frames(frames, decontaminate=False)
    synchronize(matter.device)
    start = time.perf_counter()
    for _ in range(repeats):
        matter.matte_frames(frames, decontaminate=False)
    synchronize(matter.device)
    return repeats * len(frames) / (time.perf_counter() - start)


def main() -> None:
    from mattecli.image.decoding import read_image
    from mattecli.inference import Matter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="default", help="model name or .safetensors file")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    photo = read_image(EXAMPLES / "astronaut.jpg").rgb
    rng = np.random.default_rng(0)
    frames = (rng.random((8, 720, 1280, 3)) * 255).astype(np.uint8)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(f"device: {name}; torch {torch.__version__}")
    print(
        "| precision | mean abs diff to CPU example (astronaut / grace_hopper) | 512 px images/s | 720p frames/s |"
    )
    print("| --- | --- | --- | --- |")
    for half in (True, False):
        matter = Matter(args.model, device=args.device, half=half)
        diffs = " / ".join(f"{agreement(matter, n):.5f}" for n in ("astronaut", "grace_hopper"))
        speed = images_per_second(matter, photo, args.repeats)
        video = frames_per_second(matter, frames, max(1, args.repeats // 4))
        print(f"| {'fp16' if matter.half else 'fp32'} | {diffs} | {speed:.1f} | {video:.1f} |")


if __name__ == "__main__":
    main()
