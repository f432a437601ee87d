"""The training loop: one stage of the Late Fusion CNN, single process or one process per device.

``train(config)`` does the whole run: builds (or restores) the model, optimiser, schedule and data order;
steps; validates and checkpoints every N steps; exports inference weights at the end. Everything that makes
a run resumable and reproducible is decided here:

* every step consumes one global batch, so the step counter alone locates the run in its data order;
* checkpoints carry all states (model, optimiser, schedule, GradScaler, RNGs of every process);
* only the main process (rank 0) writes files, after collectives that all processes join.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mattecli.config import ModelConfig, get_config
from mattecli.errors import MatteError
from mattecli.losses import stage_loss, weight_decay_penalty
from mattecli.training import checkpoint as ckpt
from mattecli.training import distributed as dist_utils
from mattecli.training.logging import RunLogger
from mattecli.training.runconfig import (
    RESUMABLE_OVERRIDES,
    RunConfig,
    merge,
    read_config_file,
    to_toml,
)
from mattecli.training.schedule import TriangularCyclicLR
from mattecli.training.stages import (
    BranchesOnly,
    bn_training_modules,
    configure_stage,
    set_stage_mode,
)

#: Epochs trained when neither --steps nor --epochs is given.
DEFAULT_EPOCHS = 10.0
DEFAULT_MODEL_CONFIG = "lite"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    step: int
    total_steps: int
    checkpoint: Path | None
    weights: Path | None
    last_validation: dict[str, Any] | None
    stopped_early: bool = False


# ------------------------------------------------------------------------------------ configuration


def prepare_config(flags: dict[str, Any], config_file: str | None = None) -> RunConfig:
    """The run's configuration from command-line flags (None = not given) and an optional TOML file.

    When resuming, the checkpoint's own configuration is the base: only settings that do not change what
    a step computes (length, logging, validation, workers) may be overridden; anything else that differs
    is refused, because the resumed run would no longer end where the uninterrupted one does.
    """
    resume = flags.get("resume")
    if resume is None:
        file_values = read_config_file(config_file) if config_file else {}
        return merge(file_values, flags).validate()
    if config_file:
        raise MatteError("--config cannot be combined with --resume (the run's own config is used)")
    state, path = ckpt.load_checkpoint(resume)
    saved = RunConfig.from_json(state["config"])
    changes: dict[str, Any] = {"resume": str(path)}
    for key, value in flags.items():
        if value is None or key == "resume":
            continue
        if key in RESUMABLE_OVERRIDES:
            changes[key] = value
        elif getattr(saved, key) != value:
            raise MatteError(
                f"--{key.replace('_', '-')} cannot change when resuming "
                f"(the run used {getattr(saved, key)!r})",
                path,
            )
    return replace(saved, **changes).validate()


def resolve_model_config(name_or_file: str) -> ModelConfig:
    """A registered config name (``lite``, ``paper``) or a JSON file holding a ModelConfig."""
    if name_or_file.endswith(".json") or os.sep in name_or_file:
        path = Path(name_or_file)
        if not path.is_file():
            raise MatteError("model config file not found", path)
        try:
            return ModelConfig.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, TypeError) as exc:
            raise MatteError(f"not a valid model config ({exc})", path) from None
    try:
        return get_config(name_or_file)
    except ValueError as exc:
        raise MatteError(str(exc)) from None


_WIDTH_LABELS = {
    "decoder_channels": "decoder width",
    "fusion_channels": "fusion widths",
    "fusion_image_channels": "fusion image width",
}


def apply_widths(model_config: ModelConfig, run: RunConfig) -> ModelConfig:
    """The model config with the run's width settings applied (the same object when there are none).

    ``fusion_channels`` is one width for every fusion layer or a list with one per layer. The name gets a
    suffix saying what changed: ``-w24`` when all three widths became 24, else ``-d24``, ``-f32`` (or
    ``-f32x16``) and ``-i16`` for the decoder, fusion and fusion-image widths that were set.
    """
    wanted = _wanted_widths(model_config, run)
    if not wanted:
        return model_config
    changed = model_config.replace(**wanted)
    return changed.replace(name=f"{model_config.name}-{_width_suffix(wanted)}")


def _wanted_widths(model_config: ModelConfig, run: RunConfig) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    if run.decoder_channels is not None:
        wanted["decoder_channels"] = int(run.decoder_channels)
    if run.fusion_channels is not None:
        value = run.fusion_channels
        layers = len(model_config.fusion_channels)
        wanted["fusion_channels"] = (
            tuple(value) if isinstance(value, list | tuple) else (int(value),) * layers
        )
    if run.fusion_image_channels is not None:
        wanted["fusion_image_channels"] = int(run.fusion_image_channels)
    return wanted


def _width_suffix(wanted: dict[str, Any]) -> str:
    fusion = wanted.get("fusion_channels")
    if len(wanted) == 3 and len(set(fusion)) == 1:
        width = fusion[0]
        if wanted["decoder_channels"] == width == wanted["fusion_image_channels"]:
            return f"w{width}"
    parts = []
    if "decoder_channels" in wanted:
        parts.append(f"d{wanted['decoder_channels']}")
    if fusion is not None:
        parts.append("f" + (str(fusion[0]) if len(set(fusion)) == 1 else "x".join(map(str, fusion))))
    if "fusion_image_channels" in wanted:
        parts.append(f"i{wanted['fusion_image_channels']}")
    return "-".join(parts)


def check_init_widths(model_config: ModelConfig, run: RunConfig, source: str) -> None:
    """Width settings must describe the model that --init holds (they cannot reshape trained weights)."""
    for key, want in _wanted_widths(model_config, run).items():
        have = getattr(model_config, key)
        if want != have:
            shown = lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
            raise MatteError(
                f"{_WIDTH_LABELS[key]} {shown(want)} asked for, but the --init model holds {shown(have)}",
                source,
            )


def plan_budget(
    rate: float, seconds_left: float, hold: int, cycles: int, max_steps: int | None = None
) -> tuple[int, int]:
    """(half-cycle steps, total steps) for ``cycles`` whole learning-rate cycles after ``hold`` steps.

    ``rate`` is the measured speed (steps/s) and ``seconds_left`` what remains of the time budget; the
    cycles share the steps that fit, ending at a low point. At least one step per half cycle is kept, so
    an exhausted budget still ends on a low point; ``max_steps`` caps the total.
    """
    half = int(max(rate, 0.0) * max(seconds_left, 0.0) // (2 * cycles))
    if max_steps is not None:
        half = min(half, (max_steps - hold) // (2 * cycles))
    half = max(1, half)
    return half, hold + 2 * cycles * half


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA when supported (else fp16), fp32 elsewhere. fp16 needs CUDA or MPS."""
    if requested == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if requested == "fp16" and device.type == "cpu":
        raise MatteError("--precision fp16 needs a GPU; use fp32 (or bf16) on the CPU")
    if requested == "fp64" and device.type == "mps":
        raise MatteError("--precision fp64 is not supported on MPS")
    return requested


_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# ------------------------------------------------------------------------------------ model set-up


def load_init_weights(path: str) -> tuple[dict[str, Tensor], ModelConfig, dict[str, Any]]:
    """Model tensors, config and provenance from a weights file or a training checkpoint (``--init``)."""
    file = Path(path).expanduser()
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        from mattecli.weights import read_metadata

        config, provenance = read_metadata(file)
        try:
            tensors = load_file(str(file))
        except Exception as exc:
            raise MatteError(f"weights file is corrupted ({exc})", file) from None
        return tensors, config, provenance
    state, found = ckpt.load_checkpoint(file)
    config = ModelConfig.from_json(state["model_config"])
    return state["model"], config, {"checkpoint": str(found), **ckpt.checkpoint_summary(state)}


def load_model_tensors(model: nn.Module, tensors: dict[str, Tensor], source: str) -> None:
    """Load strictly, except for the encoder's unused classifier head (weights files leave it out)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors and not is_unused_tensor(k)]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        detail = f"missing {missing[:2]}" if missing else f"unexpected {unexpected[:2]}"
        raise MatteError(f"weights do not match the model config ({detail})", source)
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise MatteError(
                f"tensor {key} has shape {tuple(value.shape)}, model needs {tuple(expected[key].shape)}",
                source,
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=False)


def is_unused_tensor(key: str) -> bool:
    """Whether ``key`` belongs to the encoder's ImageNet classifier head, which matting never runs (weights
    files leave it out; checkpoints keep it)."""
    from mattecli.models.late_fusion import unused_tensor_prefixes

    return key.startswith(unused_tensor_prefixes())


def build_model(config: ModelConfig, pretrained: bool) -> nn.Module:
    """A LateFusionNet, with ImageNet encoder weights when asked (a one-line error if unavailable)."""
    from mattecli.models import LateFusionNet

    try:
        return LateFusionNet(config, pretrained_encoder=pretrained)
    except MatteError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160]
        raise MatteError(
            f"cannot load ImageNet weights for the {config.encoder} encoder ({reason}); "
            "train with --no-pretrained or start from --init WEIGHTS"
        ) from None


# ------------------------------------------------------------------------------------ the trainer


class Trainer:
    """One training run. Build with :func:`train`; the pieces are attributes for tests and notebooks."""

    def __init__(self, config: RunConfig, info: dist_utils.DistInfo, command: str | None) -> None:
        self.cfg = config
        self.info = info
        self.command = command
        self.device = info.device
        self.precision = resolve_precision(config.precision, self.device)
        self.resume_state: dict[str, Any] | None = None
        self.init_provenance: dict[str, Any] | None = None
        if config.threads:
            torch.set_num_threads(config.threads)
        if self.device.type == "cuda":
            # Training crops all have one size, so cuDNN's per-shape algorithm search pays for itself.
            torch.backends.cudnn.benchmark = True

        if config.resume:
            self.resume_state, resume_path = ckpt.load_checkpoint(config.resume)
            folder = resume_path.parent
            self.run_dir = folder.parent if folder.name == ckpt.CHECKPOINT_DIR else folder
        else:
            self.run_dir = self._new_run_dir()
        self.model_config = self._model_config()
        self._seed_everything(config.seed)
        self.model = self._build_model()
        self._build_data()
        self.start_step_hint = int(self.resume_state["step"]) if self.resume_state is not None else 0
        self.total_steps = self._total_steps()
        self._build_optimisation()
        self.start_step = 0
        self.last_validation: dict[str, Any] | None = None
        if self.resume_state is not None:
            self._restore(self.resume_state)
        self.net = self._wrap(self.model)
        self._compute = self._compiled(self._forward_loss) if config.compile else self._forward_loss
        self._stop_requested = False

    # -- set-up ---------------------------------------------------------------------------------

    def _new_run_dir(self) -> Path:
        if self.cfg.out:
            run_dir = Path(self.cfg.out).expanduser()
        else:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = Path("runs") / f"{self.cfg.stage}-{stamp}"
        run_dir = Path(dist_utils.broadcast_object(str(run_dir)))
        if ckpt.list_checkpoints(run_dir):
            raise MatteError(
                "run folder already has checkpoints; continue it with --resume, or pick another --out",
                run_dir,
            )
        return run_dir

    def _model_config(self) -> ModelConfig:
        """The checkpoint's config when resuming; else --init's (which --model-config must match, if
        given); else --model-config (default ``lite``)."""
        if self.resume_state is not None:
            return ModelConfig.from_json(self.resume_state["model_config"])
        named = resolve_model_config(self.cfg.model_config) if self.cfg.model_config else None
        if self.cfg.init is None:
            return apply_widths(named or resolve_model_config(DEFAULT_MODEL_CONFIG), self.cfg)
        tensors, config, provenance = load_init_weights(self.cfg.init)
        self._init_tensors = tensors
        self.init_provenance = provenance
        check_init_widths(config, self.cfg, self.cfg.init)
        if named is not None and apply_widths(named, self.cfg) != config:
            raise MatteError(
                f"--init holds a {config.name!r} model but --model-config is {named.name!r}",
                self.cfg.init,
            )
        return config

    @staticmethod
    def _seed_everything(seed: int) -> None:
        from mattecli.training.loader import seed_rngs

        seed_rngs(seed)

    def _build_model(self) -> nn.Module:
        fresh = self.resume_state is None and self.cfg.init is None
        model = build_model(self.model_config, pretrained=self.cfg.pretrained and fresh)
        if self.cfg.init is not None and self.resume_state is None:
            load_model_tensors(model, self._init_tensors, self.cfg.init)
            del self._init_tensors
        if self.resume_state is not None:
            load_model_tensors(model, self.resume_state["model"], str(self.cfg.resume))
        if self.info.distributed:
            for module in bn_training_modules(model, self.cfg.stage):
                dist_utils.convert_sync_batchnorm(module, self.device)
        # fp64 is for numerical checks (e.g. that N processes match one exactly); fp32 otherwise.
        self.param_dtype = torch.float64 if self.precision == "fp64" else torch.float32
        # channels_last (NHWC) lets oneDNN and cuDNN pick their fast convolution kernels, as at inference:
        # 1.6-1.7x the samples/s of lite training on the 2-core CPU (benchmarks/RESULTS.md). Weights files
        # are written contiguous (mattecli.weights), so nothing downstream sees the layout.
        model.to(self.device, dtype=self.param_dtype, memory_format=torch.channels_last)
        self.trainable = configure_stage(model, self.cfg.stage)
        set_stage_mode(model, self.cfg.stage)
        return model

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.cfg.stage == "seg":
            model = BranchesOnly(model)  # stage 1 never needs the fusion net's output
        if not self.info.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers are equal on every process already (synchronised or frozen BN statistics), so DDP's
        # default per-forward buffer broadcast from rank 0 changes nothing; it is kept for safety.
        return DistributedDataParallel(model, device_ids=device_ids)

    def _build_data(self) -> None:
        from torch.utils.data import DataLoader

        from mattecli.data import build_dataset, collate, worker_init_fn
        from mattecli.training.loader import GlobalBatchSampler, KeyedSamples, keyed_collate

        cfg = self.cfg
        base = build_dataset(
            cfg.data, size=cfg.size, train=True, seed=cfg.seed, epoch_length=cfg.epoch_length
        )
        if cfg.batch_size % self.info.world_size:
            raise MatteError(
                f"--batch-size {cfg.batch_size} (the global batch) is not divisible by the "
                f"{self.info.world_size} processes"
            )
        if len(base) < cfg.batch_size:
            raise MatteError(
                f"the training data has {len(base)} samples, fewer than one batch of {cfg.batch_size}",
                cfg.data,
            )
        self.sampler = GlobalBatchSampler(
            len(base), cfg.batch_size, self.info.rank, self.info.world_size, cfg.seed
        )
        self.steps_per_epoch = self.sampler.steps_per_epoch
        self.loader = DataLoader(
            KeyedSamples(base, cfg.seed),
            batch_sampler=self.sampler,
            num_workers=cfg.workers,
            collate_fn=keyed_collate(collate),
            worker_init_fn=worker_init_fn if cfg.workers else None,
            persistent_workers=cfg.workers > 0,
            pin_memory=self.device.type == "cuda",
        )
        self.val_dataset = None
        if cfg.val:
            size = cfg.val_size or self.model_config.default_size
            self.val_dataset = build_dataset(cfg.val, size=size, train=False, seed=cfg.seed)

    def _total_steps(self) -> int:
        """The run's length; with a time budget, an upper limit until the probe has decided it."""
        if self.cfg.time_budget is not None:
            # Steps before the probe ends run at lr_min (the hold); the cycles begin after it.
            self.lr_hold = self.start_step_hint + self.cfg.probe_steps
            return self.cfg.steps if self.cfg.steps is not None else _UNDECIDED_STEPS
        self.lr_hold = self.cfg.lr_hold_steps
        if self.cfg.steps is not None:
            return self.cfg.steps
        epochs = self.cfg.epochs if self.cfg.epochs is not None else DEFAULT_EPOCHS
        return max(1, math.ceil(epochs * self.steps_per_epoch))

    def _build_optimisation(self) -> None:
        cfg = self.cfg
        low, high = cfg.lr_range()
        decay = cfg.optimizer_weight_decay if cfg.weight_decay == "paper" else 0.0
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(
                self.trainable, lr=low, momentum=cfg.momentum, weight_decay=decay
            )
        else:
            # The fused kernel updates every tensor in a few launches instead of several per tensor: on a
            # GPU, where this small network's step is a few thousand short kernels, that is a real share.
            fused = self.device.type == "cuda" or None
            self.optimizer = torch.optim.AdamW(self.trainable, lr=low, weight_decay=decay, fused=fused)
        half_cycle = cfg.half_cycle_steps or max(1, round(cfg.half_cycle_epochs * self.steps_per_epoch))
        self.schedule = TriangularCyclicLR(self.optimizer, low, high, half_cycle)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def _restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint: optimiser, schedule, scaler, step and this process's RNGs."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_step = int(state["step"])
        rng_states = state["rng"]
        rank = self.info.rank if len(rng_states) == self.info.world_size else 0
        ckpt.restore_rng_state(rng_states[rank])
        self.last_validation = json.loads(state.get("metrics", "{}")) or None
        self.init_provenance = json.loads(state.get("init", "{}")) or None

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_text(self.run_dir / "run.toml", to_toml(cfg))
        logger = RunLogger(
            self.run_dir if info.is_main else None,
            self.total_steps,
            self.start_step,
            quiet=cfg.quiet,
        )
        self.logger = logger
        logger.record("event", self._start_event())
        logger.info(self._start_message())
        previous_handlers = self._install_signal_handlers()
        step, checkpoint_path = self.start_step, None
        try:
            step, checkpoint_path, stopped = self._loop(logger)
            weights = None
            if not stopped and step >= self.total_steps:
                if cfg.val and (self.last_validation is None or self.last_validation.get("step") != step):
                    self._validate(step)
                checkpoint_path = self._checkpoint(step)
                weights = self._export_final(checkpoint_path)
                logger.info(f"done: {step} steps; weights {weights}; checkpoint {checkpoint_path}")
            return TrainResult(
                self.run_dir,
                step,
                self.total_steps,
                checkpoint_path,
                weights,
                self.last_validation,
                stopped,
            )
        finally:
            self._restore_signal_handlers(previous_handlers)
            logger.close()

    def _loop(self, logger: RunLogger) -> tuple[int, Path | None, bool]:
        step = self.start_step
        checkpoint_path = None
        window = _Window()
        skipped: list[str] = []
        batches = self._batches(step)
        probe = _Probe(step, self.cfg.probe_steps) if self.cfg.time_budget is not None else None
        while step < self.total_steps:
            cfg = self.cfg  # the time budget's decision replaces it (length, half cycle, checkpoints)
            t0 = time.perf_counter()
            batch = next(batches)
            t_data = time.perf_counter() - t0
            skipped.extend(batch.get("skipped") or [])
            lr = self._apply_lr(step)
            parts, took_step = self._train_step(batch)
            step += 1
            window.add(parts, t_data, time.perf_counter() - t0, len(batch["image"]), took_step)
            if probe is not None and (rate := probe.observe(step)) is not None:
                self._decide_budget(logger, step, rate, probe.elapsed())
                probe, cfg = None, self.cfg
            if step % cfg.log_every == 0 or step == self.total_steps or self._stop_requested:
                self._report_skipped(skipped, step)
                self._log_window(logger, window, step, lr)
                window, skipped = _Window(), []
            if cfg.val and step % cfg.val_every == 0 and step < self.total_steps:
                self._validate(step)
            if self._checkpoint_due(step) and step < self.total_steps:
                checkpoint_path = self._checkpoint(step)
            if cfg.stop_after is not None and step >= cfg.stop_after and step < self.total_steps:
                logger.info(f"stopping after step {step} (--stop-after)")
                return step, checkpoint_path, True
            if self._stop_requested:
                checkpoint_path = self._checkpoint(step)
                logger.warn(f"interrupted at step {step}; continue with: matte train --resume {self.run_dir}")
                raise KeyboardInterrupt
        return step, checkpoint_path, False

    def _checkpoint_due(self, step: int) -> bool:
        """Every ``ckpt_every`` steps, counted from the end of the learning-rate hold (so that with
        ``half_cycle_steps`` they can fall on the cycle's low points); not at the hold's last step."""
        return step != self.lr_hold and (step - self.lr_hold) % self.cfg.ckpt_every == 0

    def _apply_lr(self, step: int) -> float:
        """The rate for the step after ``step`` completed ones: ``lr_min`` during the hold, then the cycles."""
        if step >= self.lr_hold:
            return self.schedule.apply(step - self.lr_hold)
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.low
        return self.schedule.low

    def _decide_budget(self, logger: RunLogger, step: int, rate: float, elapsed: float) -> None:
        """Fix the run's length from the probe's speed, as if it had been configured that way."""
        cfg = self.cfg
        assert cfg.time_budget is not None
        left = (cfg.time_budget - elapsed) * _BUDGET_MARGIN
        plan = plan_budget(rate, left, step, cfg.budget_cycles, cfg.steps)
        half, total = dist_utils.broadcast_object(plan)  # every process follows rank 0's measurement
        self.total_steps = self.logger.total_steps = total
        self.schedule.half_cycle_steps = half
        self.lr_hold = step
        self.cfg = replace(
            cfg,
            steps=total,
            epochs=None,
            half_cycle_steps=half,
            lr_hold_steps=step,
            ckpt_every=2 * half,
            time_budget=None,
        )
        if self.info.is_main:
            ckpt.atomic_write_text(self.run_dir / "run.toml", to_toml(self.cfg))
        samples = rate * cfg.batch_size
        logger.record(
            "event",
            {
                "event": "budget",
                "step": step,
                "steps_per_s": round(rate, 4),
                "samples_per_s": round(samples, 2),
                "elapsed_s": round(elapsed, 2),
                "budget_s": cfg.time_budget,
                "half_cycle_steps": half,
                "total_steps": total,
            },
        )
        logger.info(
            f"time budget: {samples:.1f} samples/s after {elapsed:.0f} s of {cfg.time_budget:.0f}; "
            f"{cfg.budget_cycles} cycle(s) of {2 * half} steps, {total} steps in all"
        )

    def _batches(self, step: int) -> Iterator[dict[str, Any]]:
        """Batches from ``step`` on, epoch after epoch (the order depends on seed and epoch only)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        while True:
            self.sampler.set_epoch(epoch, position)
            yield from self.loader
            epoch, position = epoch + 1, 0

    def _train_step(self, batch: dict[str, Any]) -> tuple[dict[str, Tensor], bool]:
        """Forward, loss (float32), backward, clip, optimiser step. Returns the loss parts and whether
        the optimiser stepped (a non-finite gradient skips the step on every process alike)."""
        cfg = self.cfg
        non_blocking = self.device.type == "cuda"
        image = batch["image"].to(self.device, self.param_dtype, non_blocking=non_blocking)
        image = image.contiguous(memory_format=torch.channels_last)
        alpha = batch["alpha"].to(self.device, self.param_dtype, non_blocking=non_blocking)
        loss, penalty = self._compute(image, alpha)
        total = loss.total + penalty
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        max_norm = cfg.clip_norm if cfg.clip_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, max_norm)
        finite = bool(torch.isfinite(grad_norm))
        if finite or self.scaler.is_enabled():
            self.scaler.step(self.optimizer)  # the scaler itself skips steps with inf/NaN gradients
        self.scaler.update()
        parts = {"loss": total.detach(), **loss.parts, "weight_decay": penalty.detach()}
        parts["grad_norm"] = grad_norm.detach()
        return parts, finite

    def _forward_loss(self, image: Tensor, alpha: Tensor) -> tuple[Any, Tensor]:
        """The network under autocast, then the stage's loss and the weight-decay penalty in float32:
        the part of a step that ``compile = true`` hands to ``torch.compile`` as one graph."""
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()
        with autocast:
            out = self.net(image)
        out = _to_float32(out)
        loss = stage_loss(self.cfg.stage, out, alpha, authors_extras=self.cfg.authors_extras)
        return loss, weight_decay_penalty(self.model, self.cfg.weight_decay)

    def _compiled(self, function: Any) -> Any:
        """``torch.compile`` of the forward and loss. Every training batch has one shape (square crops,
        whole batches), so the graph compiles once; validation and export use the plain module."""
        backend = "inductor" if self.cfg.compile is True else str(self.cfg.compile)
        import torch._dynamo

        if backend not in torch._dynamo.list_backends(exclude_tags=()):
            known = ", ".join(torch._dynamo.list_backends())
            raise MatteError(f"compile: unknown torch.compile backend {backend!r} (known: {known})")
        return torch.compile(function, backend=backend)

    # -- reporting ------------------------------------------------------------------------------

    def _start_event(self) -> dict[str, Any]:
        return {
            "event": "resume" if self.resume_state is not None else "start",
            "step": self.start_step,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.info.world_size,
            "device": str(self.device),
            "precision": self.precision,
            "command": self.command,
            "config": self.cfg.to_dict(saved_only=True),
            "model_config": json.loads(self.model_config.to_json()),
        }

    def _start_message(self) -> str:
        verb = f"resuming at step {self.start_step}" if self.start_step else "training"
        if self.cfg.time_budget is not None:
            length = f"{self.cfg.time_budget:g} s (steps set after a {self.cfg.probe_steps}-step probe)"
        else:
            length = f"{self.total_steps} steps"
        return (
            f"{verb}: stage {self.cfg.stage}, model {self.model_config.name}, "
            f"{length} ({self.steps_per_epoch}/epoch, batch {self.cfg.batch_size}"
            f"{f' over {self.info.world_size} processes' if self.info.distributed else ''}), "
            f"{self.device} {self.precision}; run folder {self.run_dir}"
        )

    def _report_skipped(self, messages: list[str], step: int) -> None:
        """Warn about the unreadable files every process met since the last log line (each file once:
        the data package skips a bad file for the rest of the run after reporting it)."""
        everywhere = dist_utils.gather_objects(messages) if self.info.distributed else [messages]
        for text in dict.fromkeys(m for ms in everywhere for m in ms):
            self.logger.warn(f"skipped bad sample {text}", step=step)

    def _log_window(self, logger: RunLogger, window: _Window, step: int, lr: float) -> None:
        values = dist_utils.all_reduce_mean(window.means(), self.device)
        samples_per_s = window.samples * self.info.world_size / max(window.seconds, 1e-9)
        record = {
            "step": step,
            "epoch": round(step / self.steps_per_epoch, 4),
            "lr": lr,
            **{k: round(v, 6) for k, v in values.items()},
            "samples_per_s": round(samples_per_s, 3),
            "data_wait": round(window.data_seconds / max(window.seconds, 1e-9), 4),
            "skipped_steps": window.skipped,
        }
        logger.record("train", record)
        shown = {k: v for k, v in values.items() if k != "grad_norm"}
        logger.progress(step, {"lr": lr, **shown}, samples_per_s)
        if window.skipped:
            logger.warn(f"{window.skipped} step(s) skipped for non-finite gradients", step=step)

    # -- validation, checkpoints, export -------------------------------------------------------

    def _validate(self, step: int) -> None:
        """Metrics on the validation set (main process; the others wait), then back to training mode."""
        if self.info.is_main and self.val_dataset is not None:
            from mattecli.evaluation import validate_model

            preview = self.run_dir / "previews" / f"step-{step:07d}.png"
            summary = validate_model(
                self.model,
                self.val_dataset,
                self.device,
                limit=self.cfg.val_limit,
                preview_path=preview if self.cfg.previews > 0 else None,
                preview_count=self.cfg.previews,
            )
            self.last_validation = {"step": step, **summary}
            self.logger.record("val", self.last_validation)
            shown = " ".join(f"{k}={v:.4g}" for k, v in summary.items() if isinstance(v, float))
            self.logger.info(f"validation at step {step} ({summary['region']} image): {shown}")
        self.last_validation = dist_utils.broadcast_object(self.last_validation)
        set_stage_mode(self.model, self.cfg.stage)
        dist_utils.barrier()

    def _checkpoint(self, step: int) -> Path:
        """All processes hand in their RNG states; the main process writes the file."""
        rng_states = dist_utils.gather_objects(ckpt.capture_rng_state())
        path = self.run_dir / ckpt.CHECKPOINT_DIR / ckpt.checkpoint_name(step)
        if self.info.is_main:
            state = {
                "format": ckpt.FORMAT,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "step": step,
                "epoch": step // self.steps_per_epoch,
                "position": step % self.steps_per_epoch,
                "steps_per_epoch": self.steps_per_epoch,
                "rng": [_cpu_rng(s) for s in rng_states],
                "world_size": self.info.world_size,
                "stage": self.cfg.stage,
                "config": self.cfg.to_json(),
                "model_config": self.model_config.to_json(),
                "command": self.command or "",
                "init": json.dumps(self.init_provenance or {}, default=str),
                "metrics": json.dumps(self.last_validation or {}),
                "saved_at": datetime.now().isoformat(timespec="seconds"),
            }
            ckpt.atomic_torch_save(state, path)
            # Keep the metadata (not the tensors) for the provenance of the final export.
            self._last_checkpoint_state = {
                k: v for k, v in state.items() if k not in ("model", "optimizer", "rng")
            }
            ckpt.prune_checkpoints(self.run_dir, self.cfg.keep_checkpoints)
            self.logger.record("event", {"event": "checkpoint", "step": step, "path": str(path)})
        dist_utils.barrier()
        return path

    def _export_final(self, checkpoint_path: Path) -> Path | None:
        if not self.info.is_main:
            return None
        from mattecli.training.export import save_exported

        state = self._last_checkpoint_state
        return save_exported(self.model, state, checkpoint_path, self.run_dir / WEIGHTS_NAME)

    # -- signals --------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        """Ctrl-C / SIGTERM finish the current step, write a checkpoint and exit (single process only:
        processes of a distributed run could see the signal at different steps)."""
        if self.info.distributed or sys.platform == "win32":
            return {}
        import threading

        if threading.current_thread() is not threading.main_thread():
            return {}

        def request_stop(signum: int, frame: Any) -> None:
            if self._stop_requested:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self._stop_requested = True

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: The length of a time-budgeted run without --steps until its probe has decided it.
_UNDECIDED_STEPS = 10**9
#: Share of the time left after the probe that the planned cycles may fill: the speed can drift after the
#: probe (the data workers' queue, filled during the warm-up, drains; a shared machine gets busier), and a
#: run that overruns is stopped off its learning rate's low point.
_BUDGET_MARGIN = 0.95


class _Probe:
    """Times the first steps of a time-budgeted run: the first third is warm-up (compilation, cuDNN's
    algorithm search, the data workers' first batches), the rest measures steps/s."""

    def __init__(self, start_step: int, probe_steps: int) -> None:
        self.started = time.perf_counter()
        self.warm_step = start_step + max(1, probe_steps // 3)
        self.last_step = start_step + probe_steps
        self.warm_time: float | None = None

    def observe(self, step: int) -> float | None:
        """Call after each step; returns the measured steps/s once the probe is over, else None."""
        now = time.perf_counter()
        if step == self.warm_step:
            self.warm_time = now
        if step < self.last_step or self.warm_time is None:
            return None
        return (step - self.warm_step) / max(now - self.warm_time, 1e-9)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class _Window:
    """Sums over the steps between two log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.samples = 0
        self.seconds = 0.0
        self.data_seconds = 0.0
        self.skipped = 0

    def add(
        self, parts: dict[str, Tensor], data_s: float, step_s: float, samples: int, stepped: bool
    ) -> None:
        for key, value in parts.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.count += 1
        self.samples += samples
        self.seconds += step_s
        self.data_seconds += data_s
        self.skipped += 0 if stepped else 1

    def means(self) -> dict[str, float]:
        return {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}


def _to_float32(out: Any) -> Any:
    """Losses run in float32 (or wider) whatever autocast produced (small epsilons need it)."""
    from dataclasses import fields

    changes = {}
    for f in fields(out):
        value = getattr(out, f.name)
        if isinstance(value, Tensor):
            changes[f.name] = _widen(value)
        elif isinstance(value, tuple):
            changes[f.name] = tuple(_widen(v) for v in value)
    return replace(out, **changes)


def _widen(tensor: Tensor) -> Tensor:
    return tensor if tensor.dtype == torch.float64 else tensor.float()


def _cpu_rng(state: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.cpu() if isinstance(v, Tensor) else v) for k, v in state.items()}


def command_line() -> str:
    """This process's command line, for provenance."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


def train(config: RunConfig, command: str | None = None) -> TrainResult:
    """Run one training stage as configured; the whole run, start (or resume) to exported weights.

    Under torchrun each process calls this; they coordinate through the default process group.
    """
    config.validate()
    info = dist_utils.setup(config.device)
    try:
        return Trainer(config, info, command or command_line()).run()
    finally:
        dist_utils.teardown()
