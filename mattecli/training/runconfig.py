"""The run configuration: every knob of a training run in one flat, serialisable dataclass.

A run is reproducible from its ``run.toml`` alone (``matte train --config RUN/run.toml``), so every value
that changes what is trained lives here, and the file is written beside the checkpoints. Values are merged
in three layers: the dataclass defaults, then a ``--config`` TOML file, then command-line flags (a flag the
user did not give is ``None`` and does not override).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mattecli.errors import MatteError, UsageError
from mattecli.losses import FUSION_WEIGHT_HARD, JOINT_BRANCH_WEIGHT, STAGES, WEIGHT_DECAY_MODES

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("auto", "bf16", "fp16", "fp32", "fp64")

#: The authors' cyclic learning-rate range per stage (lower, upper).
STAGE_LR_RANGES = {"seg": (5e-4, 1.5e-3), "fusion": (1e-5, 5e-4), "joint": (1e-5, 5e-4)}

#: Fields that may differ when a run is resumed: they change how the run is watched or how long it
#: goes, not what a given step computes. Everything else must match the checkpoint.
RESUMABLE_OVERRIDES = frozenset(
    {
        "steps",
        "epochs",
        "workers",
        "quiet",
        "val",
        "val_every",
        "val_size",
        "val_limit",
        "previews",
        "ckpt_every",
        "keep_checkpoints",
        "log_every",
        "threads",
        "stop_after",
        "device",
        "compile",
    }
)
#: Fields that never go into run.toml (they are about this invocation only).
_NOT_SAVED = frozenset({"resume", "stop_after", "quiet"})


@dataclass
class RunConfig:
    """All settings of one training run (see ``matte train --help`` for the meaning of each flag).

    ``batch_size`` is the GLOBAL batch: with N processes each one takes ``batch_size / N`` samples,
    so a run gives the same result (up to float rounding) on one GPU or eight.

    ``fusion_hard_weight`` and ``joint_branch_weight`` are L_u's weight on hard pixels (the paper's 0.1)
    and the joint stage's weight of the branches' CE + L_d (the paper's 0.5). The defaults are the
    paper's configuration; other values make a named variant (``weights/recipe/README-gpu.md``:
    ``LOSS=crisp``).

    Settings without a command-line flag (set them in a ``--config`` TOML file):

    * ``decoder_channels``, ``fusion_channels`` (one width for every fusion layer, or a list of them),
      ``fusion_image_channels``: widen or narrow the model config of a new run (the name gets a suffix
      such as ``-w24``); with ``--init`` they must match the file's config.
    * ``half_cycle_steps``: the learning-rate half cycle in steps (instead of ``half_cycle_epochs``);
      ``lr_hold_steps``: the first N steps run at ``lr_min`` before the cycles start.
    * ``time_budget`` (seconds of the training loop), ``budget_cycles``, ``probe_steps``: size the run to
      a wall-clock budget. The first ``probe_steps`` steps run at ``lr_min`` and measure the speed (their
      first third is warm-up: compilation, cuDNN's algorithm search); then ``budget_cycles`` whole
      learning-rate cycles that fit what is left of the budget follow, ending at a low point, with a
      checkpoint at each low point. ``steps``, if given, is an upper limit. The decision is written into
      ``run.toml`` (``steps``, ``half_cycle_steps``, ``lr_hold_steps``, ``ckpt_every``; no budget), so
      the file replays the run exactly and a resumed run does not probe again.
    * ``compile``: ``true`` hands the forward pass and loss to ``torch.compile`` (inductor: fewer, fused
      kernels, a GPU lever; the first steps are slow while it compiles); a string names another
      ``torch.compile`` backend (``"eager"`` and ``"aot_eager"`` trace without generating code: quick
      checks that the step compiles as one graph).
    """

    stage: str = "seg"
    data: str | None = None
    val: str | None = None
    out: str | None = None
    model_config: str | None = None
    pretrained: bool = True
    init: str | None = None
    resume: str | None = None
    size: int = 320
    batch_size: int = 2
    steps: int | None = None
    epochs: float | None = None
    epoch_length: int | None = None
    workers: int = 2
    seed: int = 0
    optimizer: str = "sgd"
    lr_min: float | None = None
    lr_max: float | None = None
    half_cycle_epochs: float = 2.0
    half_cycle_steps: int | None = None
    lr_hold_steps: int = 0
    momentum: float = 0.9
    clip_norm: float = 5.0
    weight_decay: str = "code"
    optimizer_weight_decay: float = 1e-4
    authors_extras: bool = True
    fusion_hard_weight: float = FUSION_WEIGHT_HARD
    joint_branch_weight: float = JOINT_BRANCH_WEIGHT
    precision: str = "auto"
    device: str = "auto"
    val_every: int = 500
    val_size: int | None = None
    val_limit: int | None = None
    previews: int = 4
    ckpt_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    threads: int | None = None
    quiet: bool = False
    stop_after: int | None = None
    decoder_channels: int | None = None
    fusion_channels: int | list[int] | None = None
    fusion_image_channels: int | None = None
    time_budget: float | None = None
    budget_cycles: int = 1
    probe_steps: int = 20
    compile: bool | str = False

    def lr_range(self) -> tuple[float, float]:
        """The (lower, upper) learning rates: the flags, else the authors' range for the stage."""
        low, high = STAGE_LR_RANGES[self.stage]
        return (
            self.lr_min if self.lr_min is not None else low,
            self.lr_max if self.lr_max is not None else high,
        )

    def validate(self) -> RunConfig:
        """Raise a one-line MatteError for impossible values; return self for chaining."""
        _choice("stage", self.stage, STAGES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("weight_decay", self.weight_decay, WEIGHT_DECAY_MODES)
        if self.data is None and self.resume is None:
            raise MatteError("no training data given (matte train DATA, or data = ... in --config)")
        if self.size <= 0 or self.size % 32:
            raise UsageError(f"--size must be a positive multiple of 32, got {self.size}")
        if self.val_size is not None and (self.val_size <= 0 or self.val_size % 32):
            raise UsageError(f"--val-size must be a positive multiple of 32, got {self.val_size}")
        for name in ("batch_size", "log_every", "val_every", "ckpt_every"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be positive")
        if self.steps is not None and self.steps <= 0:
            raise UsageError("--steps must be positive")
        if self.epochs is not None and self.epochs <= 0:
            raise UsageError("--epochs must be positive")
        if self.workers < 0:
            raise UsageError("--workers must be 0 or more")
        low, high = self.lr_range()
        if not 0 < low <= high:
            raise UsageError(f"learning rates must satisfy 0 < lr-min <= lr-max, got {low}, {high}")
        if self.half_cycle_epochs <= 0:
            raise UsageError("--half-cycle-epochs must be positive")
        if self.half_cycle_steps is not None and self.half_cycle_steps <= 0:
            raise UsageError("--half-cycle-steps must be positive")
        if self.lr_hold_steps < 0:
            raise MatteError("lr_hold_steps must be 0 or more")
        if not isinstance(self.compile, bool) and not (isinstance(self.compile, str) and self.compile):
            raise MatteError(
                f"compile must be true, false or a torch.compile backend name, got {self.compile!r}"
            )
        _loss_weight("fusion_hard_weight", self.fusion_hard_weight, zero_allowed=False)
        _loss_weight("joint_branch_weight", self.joint_branch_weight, zero_allowed=True)
        self._validate_widths()
        self._validate_budget()
        return self

    def _validate_widths(self) -> None:
        for name in ("decoder_channels", "fusion_channels", "fusion_image_channels"):
            value = getattr(self, name)
            widths = value if isinstance(value, list | tuple) else [] if value is None else [value]
            if value is not None and (not widths or min(widths) <= 0):
                raise MatteError(f"{name} must be positive, got {value!r}")

    def _validate_budget(self) -> None:
        if self.time_budget is None:
            return
        if self.time_budget <= 0:
            raise UsageError("--time-budget must be positive")
        if self.budget_cycles < 1:
            raise MatteError("budget_cycles must be at least 1")
        if self.probe_steps < 3:
            raise MatteError("probe_steps must be at least 3 (warm-up, then a measurement)")
        if self.steps is not None and self.steps < self.probe_steps + 2 * self.budget_cycles:
            raise MatteError(
                f"--steps {self.steps} leaves no room for the {self.probe_steps} probe steps and "
                f"{self.budget_cycles} cycle(s) of the time budget"
            )

    def to_dict(self, *, saved_only: bool = False) -> dict[str, Any]:
        """Plain dict (JSON/TOML-ready). ``saved_only`` drops per-invocation fields."""
        data = dataclasses.asdict(self)
        if saved_only:
            data = {k: v for k, v in data.items() if k not in _NOT_SAVED}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(saved_only=True), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> RunConfig:
        """Build from a dict whose keys may use dashes or underscores; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in known:
                raise MatteError(f"unknown setting {key!r}", source)
            clean[name] = value
        return cls(**clean)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text), source="checkpoint")


def _loss_weight(name: str, value: Any, *, zero_allowed: bool) -> None:
    """A loss weight must be a finite number, at least 0 (or above 0 where 0 would leave no loss)."""
    bound = ">= 0" if zero_allowed else "> 0"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"{flag} must be a finite number {bound}, got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML run file: top-level keys, or the keys of a ``[train]`` table."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    path = Path(path)
    if not path.is_file():
        raise MatteError("config file not found", path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MatteError(f"not a valid TOML file ({exc})", path) from None
    if isinstance(data.get("train"), dict):
        data = {**{k: v for k, v in data.items() if k != "train"}, **data["train"]}
    RunConfig.from_dict(data, source=str(path))  # reject unknown keys early, naming the file
    return {k.replace("-", "_"): v for k, v in data.items()}


def merge(file_values: dict[str, Any], flag_values: dict[str, Any]) -> RunConfig:
    """Defaults, overridden by the config file, overridden by the flags that were given (not None)."""
    values = dict(file_values)
    values.update({k: v for k, v in flag_values.items() if v is not None})
    return RunConfig.from_dict(values)


def to_toml(config: RunConfig) -> str:
    """The run's settings as TOML (None values are left out: they mean "the default")."""
    lines = ["# mattecli training run; reproduce with: matte train --config run.toml", ""]
    for key, value in config.to_dict(saved_only=True).items():
        if value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def prepare_config(flags: dict[str, Any], config_file: str | None = None) -> RunConfig:
    """The run's configuration from command-line flags (None = not given) and an optional TOML file.

    When resuming, the checkpoint's own configuration is the base: only settings that do not change what
    a step computes (length, logging, validation, workers) may be overridden; anything else that differs
    is refused, because the resumed run would no longer end where the uninterrupted one does.
    """
    from mattecli.modelfiles import checkpoint as ckpt

    resume = flags.get("resume")
    if resume is None:
        file_values = read_config_file(config_file) if config_file else {}
        return merge(file_values, flags).validate()
    if config_file:
        raise UsageError("--config cannot be combined with --resume (the run's own config is used)")
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
