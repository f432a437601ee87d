"""Video pipeline benchmark: end-to-end frames/s against the model alone, peak memory against clip
length, and still-edge flicker with and without temporal smoothing.

    python benchmarks/bench_video.py                 # everything, CPU: about six minutes on 2 cores
    python benchmarks/bench_video.py --only speed    # or memory, flicker
    python benchmarks/bench_video.py --device cuda   # the model on a GPU

On synthetic H.264 clips (a textured background, a still and a moving shape, a tone):

* ``model``: ``Matter.matte_frames`` alone on the already-decoded frames, in the same batches, vs
  ``pipeline``: ``matte_video`` end to end (probe, decode, matte, temporal smoothing, ProRes 4444
  encode, audio copy). Wall-clock (best of ``--repeats`` alternating runs) and CPU seconds per frame.
* ``io_only``: the pipeline with a model that returns at once: what the ffmpeg side costs.
* ``stand_in``: a model that sleeps instead of computing (as the calling thread does while a GPU
  works), at 2/3 of the I/O side's speed: the pipeline should keep its pace, which shows that reading,
  matting and writing overlap. On a CPU-only machine the model and the encoder share the cores, so
  there the pipeline costs roughly the ``io_only`` CPU time on top of the model.
* peak resident memory of the Python process and of each ffmpeg child, for a clip and a four times
  longer one (each in a fresh process): it should not grow.
* still-edge flicker (see mattecli.video.temporal) at temporal strengths 0, 0.5 and 0.8, for a per-frame
  colour key and for the LITE network with random weights, on a clip with camera grain.

The model is the LITE configuration with random weights (speed does not depend on the weights),
matting at its working size without full-resolution tile refinement (``--refine`` turns it on; that
is about 15 times slower on a CPU, which makes the pipeline's share negligible).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As `matte video` does: idle OpenMP threads sleep instead of spinning, so the decoder and encoder get
# the cores the model is not using (set before torch loads; an explicit setting wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


SKIN = np.array([230, 180, 150], np.float32)


def make_clip(path: Path, width: int, height: int, frames: int, rate: int = 30, noise: float = 0.0) -> Path:
    # With noise the encoder gets a high quality (crf 8), as a camera's bitrate would keep the grain.
    """A textured still background, a soft-edged ellipse standing still on the left and one crossing
    the frame, plus a 440 Hz tone; ``noise`` adds fresh Gaussian sensor noise (standard deviation in
    grey levels) to every frame, which is what makes per-frame mattes flicker on still edges."""
    from mattecli.video.ffmpeg import ffmpeg_exe

    rng = np.random.default_rng(0)
    small = rng.integers(40, 220, (height // 16 + 2, width // 16 + 2, 3)).astype(np.uint8)
    import cv2

    background = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    command = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(rate),
        "-i", "pipe:0", "-f", "lavfi", "-t", f"{frames / rate:.3f}", "-i", "sine=frequency=440",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "8" if noise else "18", "-pix_fmt", "yuv420p",
        "-c:a", "aac", str(path),
    ]  # fmt: skip

    def ellipse(cx: float) -> np.ndarray:
        inside = ((xx - cx) / (width * 0.08)) ** 2 + ((yy - height * 0.55) / (height * 0.3)) ** 2
        return np.clip((1.0 - inside) * 4, 0, 1)[..., None]

    still = ellipse(width * 0.1)
    with subprocess.Popen(command, stdin=subprocess.PIPE) as process:
        for i in range(frames):
            alpha = np.maximum(still, ellipse(width * (0.3 + 0.6 * i / max(frames - 1, 1))))
            frame = background * (1 - alpha) + SKIN * alpha
            if noise:
                frame += rng.normal(0.0, noise, frame.shape).astype(np.float32)
            process.stdin.write(np.clip(frame, 0, 255).astype(np.uint8).tobytes())
        process.stdin.close()
    return path


def decode_all(path: Path) -> np.ndarray:
    from mattecli.video import probe
    from mattecli.video.ffmpeg import ffmpeg_exe

    info = probe(path)
    raw = subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3).copy()


def build_matter(args: argparse.Namespace, max_size: int | None = None):
    import torch

    from mattecli.inference import Matter
    from mattecli.models import LateFusionNet
    from mattecli.models.config import LITE

    torch.manual_seed(0)
    refine = None if args.refine else False
    return Matter(LateFusionNet(LITE), device=args.device, max_size=max_size, refine=refine)


def cpu_seconds() -> float:
    """CPU time used so far by this process (all threads) and its finished children (the ffmpegs)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def model_alone(matter, decoded: np.ndarray, batch_size: int) -> tuple[float, float]:
    """frames/s and CPU seconds per frame of ``Matter.matte_frames`` on frames already in memory."""
    began, cpu = time.perf_counter(), cpu_seconds()
    for i in range(0, len(decoded), batch_size):
        matter.matte_frames(decoded[i : i + batch_size])
    return len(decoded) / (time.perf_counter() - began), (cpu_seconds() - cpu) / len(decoded)


def pipeline(clip: Path, out: Path, frame_fn, batch_size: int, temporal: float = 0.5) -> tuple[float, ...]:
    """frames/s and CPU seconds per frame of ``matte_video`` end to end, probing included (ProRes 4444
    with alpha, audio copied, temporal smoothing), and the steady-state frames/s between the first and
    the last batch written (without the start-up and the drain at the end, which a long clip amortises).
    """
    from mattecli.video import matte_video

    marks: list[tuple[float, int]] = []
    began, cpu = time.perf_counter(), cpu_seconds()
    report = matte_video(
        clip, out, frame_fn, batch_size=batch_size, temporal=temporal, overwrite=True,
        progress=lambda done, total: marks.append((time.perf_counter(), done)),
    )  # fmt: skip
    wall = time.perf_counter() - began
    steady = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0]) if len(marks) > 1 else 0.0
    return report.frames / wall, (cpu_seconds() - cpu) / report.frames, steady


def no_model(frames: np.ndarray) -> tuple[np.ndarray, None]:
    return np.zeros(frames.shape[:3], np.float32), None


class AcceleratorStandIn:
    """A model that takes ``seconds_per_frame`` of wall time but no CPU (it sleeps, as the calling
    thread does while a GPU works): shows whether reading and writing really overlap the model."""

    def __init__(self, seconds_per_frame: float) -> None:
        self.seconds_per_frame = seconds_per_frame

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(self.seconds_per_frame * len(frames))
        return np.full(frames.shape[:3], 0.5, np.float32), frames * np.float32(1 / 255)


def stand_in_matter(frame_fn):
    """Give a frame function the ``matte_frames`` method that :func:`model_alone` calls."""

    class Wrapped:
        def matte_frames(self, frames):
            return frame_fn(frames)

    return Wrapped()


def speed(args: argparse.Namespace, folder: Path) -> list[dict]:
    """Model alone vs the pipeline, on the same clip and the same Matter.

    Wall-clock rates are the best of ``--repeats`` alternating runs (other work on a shared machine only
    slows runs down). CPU seconds per frame do not depend on such interference: on a machine whose cores
    the model keeps busy, the pipeline's extra CPU time is its cost in wall-clock time too.
    """
    matter = build_matter(args)
    rows = []
    for width, height, frames in ((1280, 720, args.frames_720), (1920, 1080, args.frames_1080)):
        clip = make_clip(folder / f"clip{height}.mp4", width, height, frames)
        out = folder / f"out{height}.mov"
        decoded = decode_all(clip)
        matter.matte_frames(decoded[:1])  # warm-up (allocations, cuDNN choices)
        model_fps = pipeline_fps = steady_fps = 0.0
        model_cpu = pipeline_cpu = float("inf")
        for _ in range(args.repeats):
            fps, cpu = model_alone(matter, decoded, args.batch_size)
            model_fps, model_cpu = max(model_fps, fps), min(model_cpu, cpu)
            fps, cpu, steady = pipeline(clip, out, matter, args.batch_size)
            pipeline_fps, pipeline_cpu, steady_fps = (
                max(pipeline_fps, fps),
                min(pipeline_cpu, cpu),
                max(steady_fps, steady),
            )
        io_fps, io_cpu, _ = pipeline(clip, out, no_model, args.batch_size)
        # An accelerator-like model at 2/3 of the I/O side's speed: the pipeline should keep its pace.
        stand_in = AcceleratorStandIn(1.5 / io_fps)
        stand_in_fps = model_alone(stand_in_matter(stand_in), decoded, args.batch_size)[0]
        stand_in_pipeline_fps, _, stand_in_steady = pipeline(clip, out, stand_in, args.batch_size)
        del decoded
        rows.append(
            {
                "size": f"{width}x{height}",
                "frames": frames,
                "model_fps": round(model_fps, 3),
                "pipeline_fps": round(pipeline_fps, 3),
                "wall_overhead_percent": round(100 * (model_fps / pipeline_fps - 1), 1),
                "pipeline_steady_fps": round(steady_fps, 3),
                "model_cpu_s_per_frame": round(model_cpu, 3),
                "pipeline_cpu_s_per_frame": round(pipeline_cpu, 3),
                "cpu_overhead_percent": round(100 * (pipeline_cpu / model_cpu - 1), 1),
                "io_only_fps": round(io_fps, 1),
                "io_only_cpu_s_per_frame": round(io_cpu, 3),
                "stand_in_model_fps": round(stand_in_fps, 2),
                "stand_in_pipeline_fps": round(stand_in_pipeline_fps, 2),
                "stand_in_overhead_percent": round(100 * (stand_in_fps / stand_in_pipeline_fps - 1), 1),
                "stand_in_steady_fps": round(stand_in_steady, 2),
                "stand_in_steady_overhead_percent": round(100 * (stand_in_fps / stand_in_steady - 1), 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def key_matter(frames: np.ndarray) -> tuple[np.ndarray, None]:
    """A per-frame colour key on the shapes' colour: like any single-frame matting method, its soft
    edges follow the sensor noise of each frame."""
    distance = np.linalg.norm(frames.astype(np.float32) - SKIN, axis=-1)
    return np.clip((60.0 - distance) / 40.0, 0.0, 1.0), None


def flicker(args: argparse.Namespace, folder: Path) -> list[dict]:
    """Still-edge flicker with and without temporal smoothing, on a noisy clip with a still and a
    moving shape, for two per-frame matters: the colour key, and the LITE network with random weights
    made steep (last layers x20) so that it draws edges rather than a flat 0.5."""
    import torch

    from mattecli.video import matte_video

    network = build_matter(args, max_size=320)
    with torch.no_grad():
        net = network.net
        for layer in (net.fg_decoder.fpn[-1].side, net.bg_decoder.fpn[-1].side, net.fusion.head):
            layer.weight.mul_(20.0)
    clip = make_clip(folder / "noisy.mp4", 640, 360, args.flicker_frames, noise=3.0)
    rows = []
    for name, matter in (("colour key", key_matter), ("lite, random steep", network)):
        for strength in (0.0, 0.5, 0.8):
            stats = matte_video(
                clip, folder / "flicker.mov", matter, temporal=strength, overwrite=True, progress=False
            ).flicker
            rows.append(
                {
                    "matter": name,
                    "temporal": strength,
                    "flicker_model": round(stats.raw, 4),
                    "flicker_written": round(stats.smoothed, 4),
                    "reduction_percent": round(100 * (1 - stats.smoothed / max(stats.raw, 1e-12)), 1),
                    "motion_deviation": round(stats.motion_deviation, 4),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    rows += person_flicker(args, folder)
    return rows


def person_flicker(args: argparse.Namespace, folder: Path) -> list[dict]:
    """Flicker of the bundled default model on a still portrait (the astronaut example) with camera grain:
    every change of alpha between frames is flicker, since nothing in the picture moves."""
    import imageio.v3 as iio
    import numpy as np

    from mattecli.inference import Matter
    from mattecli.video import matte_video

    photo = iio.imread(Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg").astype(
        np.float32
    )
    rng = np.random.default_rng(0)
    frames = [
        np.clip(photo + rng.normal(0, 3.0, photo.shape), 0, 255).astype(np.uint8)
        for _ in range(args.flicker_frames)
    ]
    clip = folder / "portrait.mp4"
    iio.imwrite(clip, np.stack(frames), fps=25, codec="libx264", quality=9)
    matter = Matter("default", device=args.device, tta=args.tta)
    rows = []
    for strength in (0.0, 0.5, 0.8):
        stats = matte_video(
            clip, folder / "p.mov", matter, temporal=strength, overwrite=True, progress=False
        ).flicker
        rows.append(
            {
                "matter": "default model, still portrait" + (", --tta" if args.tta else ""),
                "temporal": strength,
                "flicker_model": round(stats.raw, 4),
                "flicker_written": round(stats.smoothed, 4),
                "reduction_percent": round(100 * (1 - stats.smoothed / max(stats.raw, 1e-12)), 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def memory(args: argparse.Namespace, folder: Path) -> list[dict]:
    """Peak memory for a clip and one four times longer, each in a fresh process."""
    rows = []
    for frames in (args.memory_frames, 4 * args.memory_frames):
        clip = make_clip(folder / f"mem{frames}.mp4", 1280, 720, frames)
        command = [sys.executable, __file__, "--memory-run", str(clip), "--device", args.device]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append({"size": "1280x720", "frames": frames, **json.loads(result.stdout.splitlines()[-1])})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def memory_run(clip: Path, args: argparse.Namespace) -> None:
    """Child process of :func:`memory`: one pipeline run, then peak RSS of itself and its children."""
    import threading

    import torch

    torch.set_num_threads(2)
    from mattecli.video import matte_video

    matter = build_matter(args, max_size=256)
    watcher = ChildPeaks()
    thread = threading.Thread(target=watcher.watch, daemon=True)
    thread.start()
    began = time.perf_counter()
    report = matte_video(clip, clip.with_suffix(".out.mov"), matter, temporal=0.5, progress=False)
    watcher.done = True
    thread.join()
    kib = 1 if sys.platform != "darwin" else 1 / 1024  # ru_maxrss is KiB on Linux, bytes on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 1024
    print(json.dumps({
        "written": report.frames, "seconds": round(time.perf_counter() - began, 1),
        "python_peak_mib": round(own), "ffmpeg_peak_mib": watcher.peaks,
    }))  # fmt: skip


class ChildPeaks:
    """Peak RSS (VmHWM) of this process's ffmpeg children, polled from /proc (Linux). getrusage's
    RUSAGE_CHILDREN is no use here: it also counts the parent's pages a child had before exec."""

    def __init__(self) -> None:
        self.done = False
        self.peaks: dict[str, int] = {}

    def watch(self) -> None:
        proc = Path("/proc") / str(os.getpid())
        while not self.done and proc.exists():
            for task in (proc / "task").iterdir():
                with contextlib.suppress(OSError):
                    for pid in (task / "children").read_text().split():
                        self._sample(pid)
            time.sleep(0.05)

    def _sample(self, pid: str) -> None:
        with contextlib.suppress(OSError):
            command = (Path("/proc") / pid / "cmdline").read_bytes().decode().split("\0")
            if "ffmpeg" not in Path(command[0]).name:
                return  # a child between fork and exec still shows the parent's pages
            role = "decoder" if "pipe:1" in command else "encoder" if "pipe:0" in command else "probe"
            for line in (Path("/proc") / pid / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peaks[role] = max(self.peaks.get(role, 0), int(line.split()[1]) // 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--frames-720", type=int, default=48)
    parser.add_argument("--frames-1080", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs; the best counts")
    parser.add_argument("--memory-frames", type=int, default=20)
    parser.add_argument("--flicker-frames", type=int, default=30)
    parser.add_argument(
        "--only", choices=("speed", "memory", "flicker"), action="append", help="run only these parts"
    )
    parser.add_argument("--refine", action="store_true", help="full-resolution tile refinement too")
    parser.add_argument("--tta", action="store_true", help="default-model flicker with the mirrored pass")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--memory-run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        memory_run(args.memory_run, args)
        return
    import torch

    torch.set_num_threads(args.threads)
    parts = {"speed": speed, "memory": memory, "flicker": flicker}
    chosen = args.only or list(parts)
    with tempfile.TemporaryDirectory() as folder:
        results = {name: run(args, Path(folder)) for name, run in parts.items() if name in chosen}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
