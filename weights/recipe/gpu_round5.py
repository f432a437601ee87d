"""Round 5 on one GPU machine: seg, fusion and joint from ImageNet initialisation inside one deadline.

Called by gpu_round5.sh after the pack is unpacked and its foregrounds estimated. For each model (several
run side by side, sharing the GPU and the data workers) the three stages run one after the other; each
gets a share of the time left when it starts (``--shares``, so an early stage that ends sooner or later
than planned moves the others) and is a ``matte train`` run with a ``time_budget``: the trainer's own probe
measures samples/s in its first steps, then fits whole learning-rate cycles into the rest. A stage that
overruns its share gets SIGTERM (it finishes the step and writes a checkpoint; the next stage starts from
that). At the end the candidates (the fusion stage's result and the joint stage's checkpoint at each
low point of its learning rate) are exported and packed with the logs into ``OUT/results.tar.NN`` pieces
of at most 15 MiB (the device tool brings back 8 files of 16 MiB, 64 MiB together). Reassemble with
``cat results.tar.* | tar -x``.

Loss variants (``--loss paper crisp``, :data:`LOSS_VARIANTS`): seg does not depend on them, so each model
trains seg once and then fusion and joint once per variant, one variant after the other, each starting
from that seg run. The paper's variant keeps the model's name (``RUNS/lite2/fusion``, candidates
``lite2-joint-...``); another variant is named after it (``RUNS/lite2-crisp/fusion``, ``lite2-crisp-joint-...``).
With N variants each one's fusion and joint get 1/N of their shares.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # mattecli is not installed on the GPU machine; it runs from the checkout

STAGES = ("seg", "fusion", "joint")
#: A stage is ``matte train --config FILE --out DIR`` without the CLI layer, so that the machine's own
#: typer (whatever its version) plays no part; SIGTERM still makes the trainer checkpoint and stop.
_TRAIN = (
    "import sys; from mattecli.training import prepare_config, train; "
    "train(prepare_config({'out': sys.argv[2]}, sys.argv[1]))"
)
PIECE = 15 * 2**20
RESULTS_LIMIT = 60 * 2**20
#: The loss variants: the run settings each adds to its fusion and joint stages (seg is the same for all).
#: "paper" is the paper's configuration (the trainer's defaults); "crisp" is benchmarks/HAZE.md's proposal
#: for less haze: L_u weighs hard pixels like transition ones, and the branch terms weigh a fifth as much.
LOSS_VARIANTS = {
    "paper": {},
    "crisp": {"fusion_hard_weight": 1.0, "joint_branch_weight": 0.1},
}


@dataclass
class StageResult:
    model: str  # the run's name: the model, with "-VARIANT" for a loss variant other than the paper's
    stage: str
    status: str
    seconds: float
    loss: str | None = None  # the loss variant (None for seg, which all variants share)
    steps: int = 0
    samples_per_s: float | None = None
    data_wait: float | None = None
    budget: dict = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def model_settings(model: str) -> dict:
    """'lite2' or 'lite2-w24' (decoder, fusion and fusion-image widths 24) as run-config settings."""
    base, _, width = model.partition("-w")
    settings: dict = {"model_config": base}
    if width:
        settings.update(
            decoder_channels=int(width), fusion_channels=int(width), fusion_image_channels=int(width)
        )
    return settings


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def label(model: str, loss: str | None) -> str:
    """The name of a model's runs and candidates under a loss variant: the paper's (and seg, which has no
    variant) keeps the model's."""
    return model if loss in (None, "paper") else f"{model}-{loss}"


def check_losses(names: list[str]) -> list[str]:
    """The loss variants asked for, each once, in order; an unknown name is an error naming the known."""
    unknown = [n for n in names if n not in LOSS_VARIANTS]
    if unknown or not names:
        raise SystemExit(
            f"error: LOSS: unknown loss variant {' '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(LOSS_VARIANTS)}"
        )
    return list(dict.fromkeys(names))


class Pipeline:
    """One model's stages within the shared deadline: seg, then fusion and joint for each loss variant."""

    def __init__(self, args: argparse.Namespace, model: str, workers: int) -> None:
        self.args = args
        self.model = model
        self.workers = workers
        self.root = args.runs / model
        self.results: list[StageResult] = []

    def plan(self) -> list[tuple[str, str | None, float]]:
        """(stage, loss variant, share) in order: seg once (no variant: its loss has no such weights), then
        fusion and joint per variant, whose shares are split between the variants (seg keeps its share)."""
        seg, fusion, joint = self.args.shares
        count = len(self.args.loss)
        plan: list[tuple[str, str | None, float]] = [("seg", None, seg)]
        for loss in self.args.loss:
            plan += [("fusion", loss, fusion / count), ("joint", loss, joint / count)]
        return plan

    def run(self) -> None:
        pending = self.plan()
        while pending:
            stage, loss, share = pending.pop(0)
            name = label(self.model, loss)
            left = self.args.deadline - self.args.reserve - time.time()
            budget = left * share / (share + sum(item[2] for item in pending))
            init = self.init(stage, name)
            if budget < self.args.min_stage:
                self.results.append(StageResult(name, stage, f"skipped ({budget:.0f} s left)", 0.0, loss))
                log(f"{name} {stage}: skipped, {budget:.0f} s left")
            else:
                self.results.append(self.stage(stage, init, budget, name, loss))
            if stage != "joint" and not (self.args.runs / name / stage / "checkpoints").is_dir():
                # Nothing follows a seg run without a checkpoint, and a variant's joint needs its fusion.
                log(f"{name} {stage}: no checkpoint, stopping {'this model' if loss is None else name}")
                pending = [] if loss is None else [item for item in pending if item[1] != loss]

    def init(self, stage: str, name: str) -> Path | None:
        """Where a stage starts: seg from ImageNet, every variant's fusion from the model's one seg run,
        a variant's joint from its own fusion run."""
        return {"seg": None, "fusion": self.root / "seg", "joint": self.args.runs / name / "fusion"}[stage]

    def stage(self, stage: str, init: Path | None, budget: float, name: str, loss: str | None) -> StageResult:
        """One ``matte train`` run of ``stage`` for the run ``name`` (model or model-variant)."""
        args = self.args
        root = args.runs / name
        run_dir = root / stage
        low, high = args.lr[stage]
        settings = {
            "stage": stage,
            "data": str(args.spec),
            "size": args.size,
            "batch_size": args.batch,
            "workers": self.workers,
            "optimizer": "adamw",
            "lr_min": low,
            "lr_max": high,
            "device": args.device,
            "seed": args.seed,
            "time_budget": max(5.0, budget - args.startup),
            "budget_cycles": args.cycles[stage],
            "probe_steps": args.probe_steps,
            "log_every": args.log_every,
            "keep_checkpoints": 0,
            "ckpt_every": 10**6,
            "compile": args.compile,
        }
        weights = LOSS_VARIANTS[loss] if loss else {}
        settings.update(weights)
        if init is None:
            settings.update(model_settings(self.model), pretrained=True)
        else:
            settings["init"] = str(init)
        if args.threads:
            settings["threads"] = args.threads
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        config = root / f"{stage}.toml"
        config.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in settings.items()), encoding="utf-8")
        command = [sys.executable, "-c", _TRAIN, str(config), str(run_dir)]
        what = f", loss {loss}" + "".join(f", {k} {v}" for k, v in weights.items()) if loss else ""
        log(
            f"{name} {stage}: {budget:.0f} s ({settings['time_budget']:.0f} s of training), "
            f"init {init or 'ImageNet'}{what}"
        )
        start = time.time()
        with (root / f"{stage}.log").open("w", encoding="utf-8") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
            status = watch(process, start + budget + args.grace, args.deadline - args.reserve)
        result = summarise(name, stage, status, time.time() - start, run_dir)
        result.loss = loss
        log(
            f"{name} {stage}: {result.status} after {result.seconds:.0f} s, {result.steps} steps, "
            f"{result.samples_per_s or 0:.1f} samples/s, data wait {100 * (result.data_wait or 0):.1f} %"
        )
        if status != "done":
            tail = (root / f"{stage}.log").read_text(encoding="utf-8", errors="replace")[-1500:]
            print(tail, flush=True)
        return result


def watch(process: subprocess.Popen, soft: float, hard: float) -> str:
    """Wait for a stage; past its share (``soft``) or the global limit (``hard``), SIGTERM it (it writes a
    checkpoint and exits), and SIGKILL it if it has not gone 45 s later."""
    limit = min(soft, hard)
    while process.poll() is None:
        if time.time() > limit:
            log(f"stage over its time (pid {process.pid}): SIGTERM")
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(45)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                return "killed"
            return "stopped"
        time.sleep(1)
    return "done" if process.returncode == 0 else f"failed (exit {process.returncode})"


def summarise(model: str, stage: str, status: str, seconds: float, run_dir: Path) -> StageResult:
    result = StageResult(model, stage, status, seconds)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return result
    records = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    train = [r for r in records if r.get("type") == "train"]
    budget = [r for r in records if r.get("event") == "budget"]
    if train:
        result.steps = int(train[-1]["step"])
        steady = [r for r in train if not budget or r["step"] > budget[0]["step"]] or train
        result.samples_per_s = sum(r["samples_per_s"] for r in steady) / len(steady)
        result.data_wait = sum(r["data_wait"] for r in steady) / len(steady)
    if budget:
        result.budget = {
            k: budget[0][k] for k in ("samples_per_s", "half_cycle_steps", "total_steps", "elapsed_s")
        }
    return result


def low_points(run_dir: Path) -> list[Path]:
    """The run's checkpoints at the learning rate's low points (its resolved run.toml says where), plus
    the last one if the run was stopped between two."""
    import tomllib

    config = tomllib.loads((run_dir / "run.toml").read_text(encoding="utf-8"))
    checkpoints = sorted((run_dir / "checkpoints").glob("step-*.pt"))
    if not checkpoints:
        return []
    half, hold = config.get("half_cycle_steps"), config.get("lr_hold_steps", 0)
    step = lambda path: int(path.stem.split("-")[1])  # noqa: E731
    chosen = [p for p in checkpoints if half and step(p) > hold and (step(p) - hold) % (2 * half) == 0]
    if checkpoints[-1] not in chosen:
        chosen.append(checkpoints[-1])
    return chosen


def run_names(args: argparse.Namespace) -> list[str]:
    """Every model's runs under every loss variant (``lite2``, ``lite2-crisp``, ...), in order."""
    return [label(model, loss) for model in args.models for loss in args.loss]


def export_candidates(args: argparse.Namespace, models: list[str]) -> list[Path]:
    """Fusion results and the joint low points of the runs ``models`` (model or model-variant names) as
    weights files; float16 where float32 would not fit."""
    from mattecli.training import export_checkpoint

    wanted = []
    for model in models:
        for stage in ("joint", "fusion"):
            run_dir = args.runs / model / stage
            if (run_dir / "run.toml").is_file():
                picks = low_points(run_dir) if stage == "joint" else low_points(run_dir)[-1:]
                for rank, ckpt in enumerate(reversed(picks)):
                    wanted.append(((stage != "joint", rank), model, stage, ckpt))
    wanted.sort(key=lambda item: item[0])  # every model's newest joint low point first: likeliest to ship
    folder = args.runs / "candidates"
    folder.mkdir(parents=True, exist_ok=True)
    written, used = [], 0
    for _, model, stage, ckpt in wanted:
        target = folder / f"{model}-{stage}-{ckpt.stem}.safetensors"
        export_checkpoint(ckpt, target, overwrite=True)
        if used + target.stat().st_size > RESULTS_LIMIT - 4 * 2**20:
            export_checkpoint(ckpt, target, half=True, overwrite=True)
            target = target.rename(target.with_name(target.stem + "-fp16.safetensors"))
        if used + target.stat().st_size > RESULTS_LIMIT - 4 * 2**20:
            target.unlink()
            log(f"no room for {ckpt} in the results")
            continue
        used += target.stat().st_size
        written.append(target)
    return written


def pack_results(args: argparse.Namespace, candidates: list[Path], results: list[StageResult]) -> None:
    summary = {
        "models": args.models,
        "loss": {loss: LOSS_VARIANTS[loss] for loss in args.loss},
        "settings": {k: str(v) for k, v in vars(args).items() if k not in ("models",)},
        "stages": [vars(r) for r in results],
        "candidates": [{"file": p.name, "bytes": p.stat().st_size} for p in candidates],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    archive = args.runs / "results.tar"
    with tarfile.open(archive, "w") as tar:
        for path in candidates:
            tar.add(path, arcname=f"candidates/{path.name}")
        for model in dict.fromkeys([*args.models, *run_names(args)]):  # seg lies under the model's name
            for stage in STAGES:
                run_dir = args.runs / model / stage
                for name in ("run.toml", "metrics.jsonl"):
                    if (run_dir / name).is_file():
                        tar.add(run_dir / name, arcname=f"{model}/{stage}/{name}")
                for name in (f"{stage}.toml", f"{stage}.log"):
                    if (args.runs / model / name).is_file():
                        tar.add(args.runs / model / name, arcname=f"{model}/{name}")
        tar.add(args.out / "summary.json", arcname="summary.json")
    data = archive.read_bytes()
    for number, offset in enumerate(range(0, len(data), PIECE)):
        (args.out / f"results.tar.{number:02d}").write_bytes(data[offset : offset + PIECE])
    log(
        f"results: {len(data) / 2**20:.1f} MiB in {(len(data) + PIECE - 1) // PIECE} piece(s) under {args.out}"
    )


def parse_pairs(text: str, kind: type) -> dict:
    """'seg=2,joint=3' -> {'seg': 2, 'joint': 3}; 'seg=1e-4:1e-3' -> {'seg': (1e-4, 1e-3)}."""
    pairs = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        pairs[key] = tuple(kind(v) for v in value.split(":")) if ":" in value else kind(value)
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True, help="the packed data spec")
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deadline", type=float, required=True, help="Unix time by which all must be done")
    parser.add_argument("--models", nargs="+", default=["lite2"])
    parser.add_argument(
        "--loss",
        nargs="+",
        default=["paper"],
        help=f"loss variants: {', '.join(LOSS_VARIANTS)} (fusion, joint)",
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per run (CPU rehearsal)")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--shares", default="0.5,0.15,0.35", help="seg, fusion, joint shares of the time")
    parser.add_argument("--cycles", default="seg=2,fusion=1,joint=2")
    parser.add_argument("--lr", default="seg=2e-4:2e-3,fusion=2e-4:2e-3,joint=2e-5:2e-4")
    parser.add_argument("--probe-steps", type=int, default=30)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup", type=float, default=20.0, help="s of a stage outside its training loop")
    parser.add_argument(
        "--grace", type=float, default=25.0, help="s past its share before a stage is stopped"
    )
    parser.add_argument("--reserve", type=float, default=30.0, help="s kept for export and packing")
    parser.add_argument("--min-stage", type=float, default=15.0)
    args = parser.parse_args()
    args.shares = [float(s) for s in args.shares.split(",")]
    args.cycles = {**dict.fromkeys(STAGES, 1), **parse_pairs(args.cycles, int)}
    args.lr = parse_pairs(args.lr, float)
    args.loss = check_losses(args.loss)
    args.out.mkdir(parents=True, exist_ok=True)
    workers = max(1, args.workers // len(args.models))
    pipelines = [Pipeline(args, model, workers) for model in args.models]
    log(
        f"models {' '.join(args.models)}, loss {' '.join(args.loss)}, "
        f"{args.deadline - time.time():.0f} s to the deadline"
    )
    threads = [threading.Thread(target=p.run) for p in pipelines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [r for p in pipelines for r in p.results]
    candidates = export_candidates(args, run_names(args))
    pack_results(args, candidates, results)
    print(json.dumps([vars(r) for r in results], indent=1))
    print("candidates: " + ", ".join(f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)" for p in candidates))
    return 0 if candidates else 1


if __name__ == "__main__":
    sys.exit(main())
