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
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mattecli.errors import MatteError
from mattecli.modelfiles import checkpoint as ckpt
from mattecli.models.config import ModelConfig
from mattecli.training import checkpointing
from mattecli.training import distributed as dist_utils
from mattecli.training.budget import (
    UNDECIDED_STEPS,
    Probe,
    budget_event,
    budget_message,
    decided_config,
    plan_budget,
    seconds_left,
)
from mattecli.training.loader import build_training_data, seed_rngs
from mattecli.training.model_setup import (
    apply_widths,
    build_model,
    check_init_widths,
    load_init_weights,
    load_model_tensors,
    resolve_model_config,
)
from mattecli.training.optimisation import apply_lr, build_optimisation
from mattecli.training.placement import place_for_training, wrap_for_training
from mattecli.training.reporting import StepWindow, log_window, report_skipped, validate
from mattecli.training.run_log import RunLogger, drop_records_after
from mattecli.training.runconfig import (
    RunConfig,
    to_toml,
)
from mattecli.training.signals import StopRequest
from mattecli.training.step import AUTOCAST_DTYPES, TrainStep, resolve_precision

#: Epochs trained when neither --steps nor --epochs is given.
DEFAULT_EPOCHS = 10.0
DEFAULT_MODEL_CONFIG = "lite"
WEIGHTS_NAME = ckpt.WEIGHTS_NAME


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


# ------------------------------------------------------------------------------------ the trainer


class Trainer:
    """One training run. Build with :func:`train`; the pieces are attributes for tests and notebooks.

    The trainer decides what is built and in which order and runs the loop; each concern lives in its own
    module: the step (:mod:`~mattecli.training.step`), the time budget (:mod:`~mattecli.training.budget`),
    the optimiser (:mod:`~mattecli.training.optimisation`), the data order
    (:mod:`~mattecli.training.loader`), logging and validation (:mod:`~mattecli.training.reporting`),
    checkpoints (:mod:`~mattecli.training.checkpointing`) and signals (:mod:`~mattecli.training.signals`).
    """

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
            self.run_dir = ckpt.run_dir_of(resume_path)
        else:
            self.run_dir = checkpointing.new_run_dir(config.out, config.stage)
        self.model_config = self._model_config()
        seed_rngs(config.seed)
        self.model = self._build_model()
        self._build_data()
        self.start_step_hint = int(self.resume_state["step"]) if self.resume_state is not None else 0
        self.total_steps = self._total_steps()
        self.optimizer, self.schedule, self.scaler = build_optimisation(
            config, self.trainable, self.device, self.precision, self.steps_per_epoch
        )
        self.start_step = 0
        self.last_validation: dict[str, Any] | None = None
        if self.resume_state is not None:
            self._restore(self.resume_state)
        self.net = wrap_for_training(self.model, config.stage, self.device, info.distributed)
        self.train_step = TrainStep(
            config,
            net=self.net,
            model=self.model,
            optimizer=self.optimizer,
            scaler=self.scaler,
            trainable=self.trainable,
            device=self.device,
            param_dtype=self.param_dtype,
            autocast_dtype=AUTOCAST_DTYPES.get(self.precision),
        )
        self.stop = StopRequest()

    # -- set-up ---------------------------------------------------------------------------------

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

    def _build_model(self) -> nn.Module:
        fresh = self.resume_state is None and self.cfg.init is None
        model = build_model(self.model_config, pretrained=self.cfg.pretrained and fresh)
        if self.cfg.init is not None and self.resume_state is None:
            load_model_tensors(model, self._init_tensors, self.cfg.init)
            del self._init_tensors
        if self.resume_state is not None:
            load_model_tensors(model, self.resume_state["model"], str(self.cfg.resume))
        self.param_dtype, self.trainable = place_for_training(
            model, self.cfg.stage, self.device, self.precision, self.info.distributed
        )
        return model

    def _build_data(self) -> None:
        cfg, info = self.cfg, self.info
        self.sampler, self.loader = build_training_data(
            cfg, info.rank, info.world_size, pin_memory=self.device.type == "cuda"
        )
        self.steps_per_epoch = self.sampler.steps_per_epoch
        self.val_dataset = None
        if cfg.val:
            from mattecli.data import build_dataset

            size = cfg.val_size or self.model_config.default_size
            self.val_dataset = build_dataset(cfg.val, size=size, train=False, seed=cfg.seed)

    def _total_steps(self) -> int:
        """The run's length; with a time budget, an upper limit until the probe has decided it."""
        if self.cfg.time_budget is not None:
            # Steps before the probe ends run at lr_min (the hold); the cycles begin after it.
            self.lr_hold = self.start_step_hint + self.cfg.probe_steps
            return self.cfg.steps if self.cfg.steps is not None else UNDECIDED_STEPS
        self.lr_hold = self.cfg.lr_hold_steps
        if self.cfg.steps is not None:
            return self.cfg.steps
        epochs = self.cfg.epochs if self.cfg.epochs is not None else DEFAULT_EPOCHS
        return max(1, math.ceil(epochs * self.steps_per_epoch))

    def _restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint: optimiser, schedule, scaler, step and this process's RNGs."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_step = int(state["step"])
        rng_states = state["rng"]
        rank = self.info.rank if len(rng_states) == self.info.world_size else 0
        checkpointing.restore_rng_state(rng_states[rank])
        self.last_validation = json.loads(state.get("metrics", "{}")) or None
        self.init_provenance = json.loads(state.get("init", "{}")) or None

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        dropped = 0
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            checkpointing.atomic_write_text(self.run_dir / "run.toml", to_toml(cfg))
            if self.resume_state is not None:  # the steps after the checkpoint are run again
                dropped = drop_records_after(self.run_dir / "metrics.jsonl", self.start_step)
        logger = RunLogger(
            self.run_dir if info.is_main else None,
            self.total_steps,
            self.start_step,
            quiet=cfg.quiet,
        )
        self.logger = logger
        logger.record("event", {**self._start_event(), **({"dropped_records": dropped} if dropped else {})})
        logger.info(self._start_message())
        self.stop.install(info.distributed)
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
            self.stop.restore()
            logger.close()

    def _loop(self, logger: RunLogger) -> tuple[int, Path | None, bool]:
        step = self.start_step
        checkpoint_path = None
        window = StepWindow()
        skipped: list[str] = []
        batches = self._batches(step)
        probe = Probe(step, self.cfg.probe_steps) if self.cfg.time_budget is not None else None
        while step < self.total_steps:
            cfg = self.cfg  # the time budget's decision replaces it (length, half cycle, checkpoints)
            t0 = time.perf_counter()
            batch = next(batches)
            t_data = time.perf_counter() - t0
            skipped.extend(batch.get("skipped") or [])
            lr = apply_lr(self.optimizer, self.schedule, step, self.lr_hold)
            parts, took_step = self.train_step(batch)
            step += 1
            window.add(parts, t_data, time.perf_counter() - t0, len(batch["image"]), took_step)
            if probe is not None and (rate := probe.observe(step)) is not None:
                self._decide_budget(logger, step, rate, probe.elapsed())
                probe, cfg = None, self.cfg
            if step % cfg.log_every == 0 or step == self.total_steps or self.stop.requested:
                report_skipped(logger, skipped, step, self.info.distributed)
                log_window(
                    logger,
                    window,
                    step=step,
                    lr=lr,
                    steps_per_epoch=self.steps_per_epoch,
                    world_size=self.info.world_size,
                    device=self.device,
                )
                window, skipped = StepWindow(), []
            if cfg.val and step % cfg.val_every == 0 and step < self.total_steps:
                self._validate(step)
            if self._checkpoint_due(step) and step < self.total_steps:
                checkpoint_path = self._checkpoint(step)
            if cfg.stop_after is not None and step >= cfg.stop_after and step < self.total_steps:
                logger.info(f"stopping after step {step} (--stop-after)")
                return step, checkpoint_path, True
            if self.stop.requested:
                checkpoint_path = self._checkpoint(step)
                logger.warn(f"interrupted at step {step}; continue with: matte train --resume {self.run_dir}")
                raise self.stop.stopped()
        return step, checkpoint_path, False

    def _checkpoint_due(self, step: int) -> bool:
        """Every ``ckpt_every`` steps, counted from the end of the learning-rate hold (so that with
        ``half_cycle_steps`` they can fall on the cycle's low points); not at the hold's last step."""
        return step != self.lr_hold and (step - self.lr_hold) % self.cfg.ckpt_every == 0

    def _decide_budget(self, logger: RunLogger, step: int, rate: float, elapsed: float) -> None:
        """Fix the run's length from the probe's speed, as if it had been configured that way."""
        cfg = self.cfg
        plan = plan_budget(rate, seconds_left(cfg, elapsed), step, cfg.budget_cycles, cfg.steps)
        half, total = dist_utils.broadcast_object(plan)  # every process follows rank 0's measurement
        self.total_steps = self.logger.total_steps = total
        self.schedule.half_cycle_steps = half
        self.lr_hold = step
        self.cfg = decided_config(cfg, step, half, total)
        if self.info.is_main:
            checkpointing.atomic_write_text(self.run_dir / "run.toml", to_toml(self.cfg))
        logger.record("event", budget_event(cfg, step, rate, elapsed, half, total))
        logger.info(budget_message(cfg, rate, elapsed, half, total))

    def _batches(self, step: int) -> Iterator[dict[str, Any]]:
        """Batches from ``step`` on, epoch after epoch (the order depends on seed and epoch only)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        while True:
            self.sampler.set_epoch(epoch, position)
            yield from self.loader
            epoch, position = epoch + 1, 0

    # -- reporting, validation, checkpoints, export ---------------------------------------------

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

    def _validate(self, step: int) -> None:
        self.last_validation = validate(
            self.model,
            self.val_dataset,
            self.cfg,
            device=self.device,
            run_dir=self.run_dir,
            step=step,
            logger=self.logger,
            is_main=self.info.is_main,
            previous=self.last_validation,
        )

    def _checkpoint(self, step: int) -> Path:
        """All processes hand in their RNG states; the main process writes the file."""
        rng_states = dist_utils.gather_objects(checkpointing.capture_rng_state())
        path = self.run_dir / ckpt.CHECKPOINT_DIR / ckpt.checkpoint_name(step)
        if self.info.is_main:
            state = ckpt.training_state(
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.schedule,
                scaler=self.scaler,
                step=step,
                steps_per_epoch=self.steps_per_epoch,
                rng_states=rng_states,
                world_size=self.info.world_size,
                stage=self.cfg.stage,
                config_json=self.cfg.to_json(),
                model_config_json=self.model_config.to_json(),
                command=self.command,
                init_provenance=self.init_provenance,
                metrics=self.last_validation,
            )
            checkpointing.atomic_torch_save(state, path)
            self._last_checkpoint_state = ckpt.run_facts(state)
            checkpointing.prune_checkpoints(self.run_dir, self.cfg.keep_checkpoints)
            self.logger.record("event", {"event": "checkpoint", "step": step, "path": str(path)})
        dist_utils.barrier()
        return path

    def _export_final(self, checkpoint_path: Path) -> Path | None:
        if not self.info.is_main:
            return None
        from mattecli.training.export import save_exported

        state = self._last_checkpoint_state
        return save_exported(self.model, state, checkpoint_path, self.run_dir / WEIGHTS_NAME)


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
