"""`matte serve` throughput and latency on this machine's CPU, over loopback HTTP.

Starts `matte serve` in a subprocess (bundled default model, CPU, a free loopback port), then sends a bounded
number of `POST /v1/matte` requests (a 512 px JPEG, the RGBA PNG back) from 1, 4 and 16 concurrent clients,
each on its own keep-alive connection. Prints requests/s and latency (p50, p95) per level, how many model
calls served how many images (batching), and the load average, since the machine may be shared. Stops by
itself: each level sends a fixed number of requests, and no new request starts after --max-seconds.

    python benchmarks/bench_serve.py                          # levels 1 4 16, server --batch-size 1
    python benchmarks/bench_serve.py --batch-size 1 4         # one server per batch size, same levels
    python benchmarks/bench_serve.py --clients 1 --requests 8 --output composite
    python benchmarks/bench_serve.py --clients 1 --requests 1 --compare-batching 3   # why CPU batches are 1
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"
# As `matte serve` runs the model (cli.common.prefer_sleeping_threads); set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def photo(size: int) -> bytes:
    """The bundled example photo with its long side at ``size`` px, as a JPEG (quality 95)."""
    from PIL import Image

    with Image.open(EXAMPLE) as image:
        image = image.convert("RGB")
        scale = size / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        stream = io.BytesIO()
        image.save(stream, format="JPEG", quality=95)
    return stream.getvalue()


class Server:
    """`matte serve` on a free loopback port; its log goes to a temporary file."""

    def __init__(self, model: str, batch_size: int, queue_size: int, log: Path) -> None:
        command = [
            sys.executable, "-m", "mattecli", "serve", "--host", "127.0.0.1", "--port", "0",
            "--device", "cpu", "--model", model, "--quiet", "--batch-size", str(batch_size),
            "--queue-size", str(queue_size), "--timeout", "600",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_WAIT_POLICY": "PASSIVE"}
        self.log = log
        self.process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
        self.port = self._port()

    def _port(self) -> int:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("serving on http://127.0.0.1:"):
                    return int(line.split(":")[2].split("/")[0])
            if self.process.poll() is not None:
                sys.exit(f"matte serve exited:\n{self.log.read_text()}")
            time.sleep(0.1)
        sys.exit("matte serve did not start within 300 s")

    def health(self) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request("GET", "/healthz")
        data = json.loads(connection.getresponse().read())
        connection.close()
        return data

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def run_level(port: int, body: bytes, path: str, clients: int, requests: int, max_seconds: float) -> dict:
    """``requests`` requests from ``clients`` threads; latency per request, errors counted."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    issued = [0]
    stop_at = time.monotonic() + max_seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        headers = {"Content-Type": "image/jpeg"}
        while True:
            with lock:
                if issued[0] >= requests or time.monotonic() > stop_at:
                    break
                issued[0] += 1
            start = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status, data = 0, str(error).encode()
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            elapsed = time.perf_counter() - start
            with lock:
                if status == 200 and data.startswith((b"\x89PNG", b"\xff\xd8", b"RIFF")):
                    latencies.append(elapsed)
                else:
                    errors.append(f"{status}: {data[:120]!r}")
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    result = {"clients": clients, "ok": len(latencies), "errors": len(errors), "seconds": wall}
    if latencies:
        result |= {
            "requests_per_s": len(latencies) / wall,
            "p50_s": float(np.percentile(latencies, 50)),
            "p95_s": float(np.percentile(latencies, 95)),
        }
    if errors:
        result["first_error"] = errors[0]
    return result


def compare_batching(model: str, size: int, batch: int, rounds: int) -> None:
    """The server's two model paths in this process: ``batch`` images one by one (``predict_alpha``) against
    one batched call (``matte_frames``), interleaved, the first round a warm-up."""
    from PIL import Image

    from mattecli.inference import Matter

    matter = Matter(model=model, device="cpu")
    with Image.open(io.BytesIO(photo(size))) as image:
        pixels = np.asarray(image.convert("RGB"))
    frames = np.stack([pixels] * batch)
    print(f"\nmodel calls in-process, {pixels.shape[1]} x {pixels.shape[0]}, {batch} images per round:")
    for round_ in range(rounds + 1):
        start = time.perf_counter()
        for frame in frames:
            matter.predict_alpha(frame)
        singles = time.perf_counter() - start
        start = time.perf_counter()
        matter.matte_frames(frames, decontaminate=False)
        batched = time.perf_counter() - start
        label = "warm-up" if round_ == 0 else f"round {round_}"
        print(f"  {label}: one by one {singles:.2f} s, one batch {batched:.2f} s ({batched / singles:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--size", type=int, default=512, help="long side of the test photo (px)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument(
        "--requests", type=int, default=0, help="requests per level (default: max(12, 3 x clients))"
    )
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1], help="server --batch-size values")
    parser.add_argument("--output", default="cutout", choices=["cutout", "matte", "composite"])
    parser.add_argument(
        "--max-seconds", type=float, default=300.0, help="per level: no new request after this"
    )
    parser.add_argument(
        "--compare-batching",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="also time batch-4 vs 4 single calls",
    )
    args = parser.parse_args()

    body = photo(args.size)
    path = f"/v1/matte?output={args.output}"
    print(f"photo: {EXAMPLE.name} at {args.size} px long side, {len(body) / 1024:.0f} KB JPEG; {path}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as folder:
        for batch_size in args.batch_size:
            server = Server(
                args.model, batch_size, max(args.clients), Path(folder) / f"serve-{batch_size}.log"
            )
            try:
                for _ in range(2):  # warm-up: oneDNN picks its kernels on the first calls
                    run_level(server.port, body, path, 1, 1, args.max_seconds)
                print(f"\nserver --batch-size {batch_size}")
                print("clients  requests  errors  req/s   p50 s   p95 s   model calls/images  load avg")
                for clients in args.clients:
                    requests = args.requests or max(12, 3 * clients)
                    before = server.health()
                    result = run_level(server.port, body, path, clients, requests, args.max_seconds)
                    after = server.health()
                    calls = after["model_calls"] - before["model_calls"]
                    images = after["images"] - before["images"]
                    print(
                        f"{clients:7d}  {result['ok']:8d}  {result['errors']:6d}  "
                        f"{result.get('requests_per_s', 0):5.2f}  {result.get('p50_s', 0):6.2f}  "
                        f"{result.get('p95_s', 0):6.2f}   {calls:5d} / {images:<5d}        "
                        f"{os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
                    if result["errors"]:
                        print(f"         first error: {result['first_error']}")
            finally:
                server.stop()
    if args.compare_batching:
        compare_batching(args.model, args.size, 4, args.compare_batching)


if __name__ == "__main__":
    main()
