"""``matte train`` (one training stage), ``matte export`` (checkpoint -> inference weights) and ``matte
average`` (a model soup). The options are declared in :mod:`mattecli.cli.train_options`.
"""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from mattecli.cli.common import Terminated, cli_errors, console
from mattecli.cli.train_options import (
    FUSION_HARD_WEIGHT_HELP,
    JOINT_BRANCH_WEIGHT_HELP,
    STAGE_HELP,
    OverwriteOption,
    TrainDeviceOption,
    output_option,
    setting,
)


def train_command(
    data: str | None = typer.Argument(
        None,
        metavar="DATA",
        help="Training data: a folder (layout auto-detected) or a TOML data spec (or data = in --config).",
    ),
    stage: str | None = setting("--stage", metavar="STAGE", help=f"seg, fusion or joint. {STAGE_HELP}"),
    config: str | None = setting(
        "--config", metavar="FILE", help="TOML file with any of these settings (flags override it)."
    ),
    out: str | None = setting(
        "--out", "-o", metavar="DIR", help="Run folder (default runs/STAGE-DATE-TIME)."
    ),
    init: str | None = setting(
        "--init",
        metavar="NAME|PATH",
        help="Start from weights: a built-in model name (default, lite, ...), a .safetensors weights file, a "
        "training checkpoint (.pt) or a run folder (its newest checkpoint); not an .onnx export.",
    ),
    resume: str | None = setting(
        "--resume", metavar="PATH", help="Continue a stopped run: its folder or a checkpoint (.pt)."
    ),
    model_config: str | None = setting(
        "--model-config",
        metavar="NAME|FILE",
        help="The network to build: a config name (lite (default), lite1, lite2, paper, paper-authors-input) "
        "or a ModelConfig .json file.",
    ),
    pretrained: bool | None = setting(
        "--pretrained/--no-pretrained",
        metavar=None,
        help="ImageNet weights for a new encoder (default on; ignored with --init/--resume).",
    ),
    size: int | None = setting("--size", help="Training crop side (default 320)."),
    batch_size: int | None = setting(
        "--batch-size", "-b", help="Global batch over all processes (default 2)."
    ),
    steps: int | None = setting("--steps", help="Total optimiser steps."),
    epochs: float | None = setting(
        "--epochs", help="Length in epochs when --steps is not given (default 10)."
    ),
    epoch_length: int | None = setting(
        "--epoch-length", help="Samples per epoch (default: the data's size or spec)."
    ),
    workers: int | None = setting("--workers", "-j", help="Data loader processes."),
    seed: int | None = setting("--seed", help="Seed for initialisation and data order."),
    optimizer: str | None = setting("--optimizer", metavar="NAME", help="sgd (the paper's) or adamw."),
    lr_min: float | None = setting(
        "--lr-min", metavar="LR", help="Cyclic LR low (seg 5e-4, fusion/joint 1e-5)."
    ),
    lr_max: float | None = setting(
        "--lr-max", metavar="LR", help="Cyclic LR high (seg 1.5e-3, fusion/joint 5e-4)."
    ),
    half_cycle_epochs: float | None = setting(
        "--half-cycle-epochs", help="Epochs from LR low to high (default 2)."
    ),
    momentum: float | None = setting("--momentum", metavar="X", help="SGD momentum (default 0.9)."),
    clip_norm: float | None = setting(
        "--clip-norm", metavar="X", help="Gradient clipping norm (default 5; 0 disables)."
    ),
    weight_decay: str | None = setting(
        "--weight-decay",
        metavar="MODE",
        help="code: the authors' per-weight penalty (default); paper: optimiser decay; none.",
    ),
    optimizer_weight_decay: float | None = setting(
        "--optimizer-weight-decay", metavar="X", help="Decay used by --weight-decay paper (default 1e-4)."
    ),
    authors_extras: bool | None = setting(
        "--authors-extras/--no-authors-extras",
        metavar=None,
        help="Add the code's L_g(alpha) and sparsity terms in fusion/joint (default on).",
    ),
    fusion_hard_weight: float | None = setting(
        "--fusion-hard-weight", metavar="X", help=FUSION_HARD_WEIGHT_HELP
    ),
    joint_branch_weight: float | None = setting(
        "--joint-branch-weight", metavar="X", help=JOINT_BRANCH_WEIGHT_HELP
    ),
    precision: str | None = setting(
        "--precision",
        metavar="MODE",
        help="auto (bf16/fp16 on CUDA, bf16 on CPUs with bf16 dot products, fp32 elsewhere), bf16, fp16 or fp32.",
    ),
    device: TrainDeviceOption = None,
    val: str | None = setting("--val", metavar="DATA", help="Held-out data to validate on."),
    val_every: int | None = setting("--val-every", help="Validate every N steps (500)."),
    val_size: int | None = setting(
        "--val-size", help="Long side of validation images (default: the model's)."
    ),
    val_limit: int | None = setting("--val-limit", help="Validate on the first N only."),
    ckpt_every: int | None = setting("--ckpt-every", help="Checkpoint every N steps (500)."),
    keep_checkpoints: int | None = setting(
        "--keep-checkpoints", help="Checkpoints kept (default 3; 0 keeps all)."
    ),
    log_every: int | None = setting("--log-every", help="Log every N steps (10)."),
    threads: int | None = setting("--threads", help="torch CPU threads."),
    quiet: bool | None = setting("--quiet", "-q", metavar=None, help="No progress output."),
    stop_after: int | None = setting("--stop-after", help="Stop after step N (tests).", hidden=True),
) -> None:
    """Train one stage of the Late Fusion CNN.

    Checkpoints every --ckpt-every steps; --resume continues a stopped run exactly. Several GPUs or
    machines: torchrun --nproc_per_node=N -m mattecli train ... (--batch-size is the global batch).
    """
    flags = {k: v for k, v in locals().items() if k != "config"}
    with cli_errors():
        from mattecli.training import prepare_config, train
        from mattecli.training.signals import StopRequested

        run_config = prepare_config(flags, config)
        try:
            result = train(run_config)
        except StopRequested as stop:
            # The checkpoint is saved; exit as image and video do: 130 for Ctrl-C, 128 + N for SIGTERM.
            if stop.signum == signal.SIGINT:
                raise KeyboardInterrupt from None
            raise Terminated(stop.signum) from None
    if result.stopped_early:
        console.print(f"stopped at step {result.step}; continue with: matte train --resume {result.run_dir}")


def export_command(
    checkpoint: Path = typer.Argument(
        ...,
        metavar="CHECKPOINT",
        help="A training checkpoint (.pt) or a run folder (its newest one); for .onnx output also a "
        ".safetensors weights file or a built-in model name. An .onnx file cannot be exported back.",
    ),
    output: Path = output_option(
        "The file to write: .safetensors (weights for matte image, video, eval and train --init) or .onnx "
        "(an ONNX graph for onnxruntime; needs the onnx extra)."
    ),
    half: bool = typer.Option(False, "--half", help="Store float16 weights (half the size)."),
    onnx_outputs: str | None = typer.Option(
        None,
        "--onnx-outputs",
        metavar="LIST",
        help="ONNX graph outputs: alpha (default), foreground, background, beta, comma-separated, or all.",
    ),
    overwrite: OverwriteOption = False,
) -> None:
    """Turn a training checkpoint into a weights file for matte image, video and eval, or a model into ONNX.

    Accepts a training checkpoint (.pt) or a run folder; with -o NAME.onnx also a .safetensors weights file
    or a built-in model name. Writes .safetensors or .onnx, by the output's suffix.

    The .safetensors file holds the model's tensors, its config and how it was made (stage, steps, data,
    command, last validation metrics), which matte models -v shows.
    """
    with cli_errors():
        if output.suffix.lower() == ".onnx" or onnx_outputs is not None:
            from mattecli.modelfiles.onnx_export import export_onnx

            path = export_onnx(checkpoint, output, outputs=onnx_outputs, half=half, overwrite=overwrite)
        else:
            from mattecli.training import export_checkpoint

            path = export_checkpoint(checkpoint, output, half=half, overwrite=overwrite)
    console.print(f"wrote {path}")


def average_command(
    sources: list[Path] = typer.Argument(
        ..., metavar="FILE...", help="Two or more weights files (or checkpoints) of one model."
    ),
    output: Path = output_option("The .safetensors file to write."),
    mix: list[float] | None = typer.Option(
        None,
        "--mix",
        metavar="WEIGHT",
        help="Weight of each file, in order (repeat the flag; default: equal).",
    ),
    overwrite: OverwriteOption = False,
) -> None:
    """Average versions of one model into one weights file (a "model soup").

    Mixing a fine-tuned model with the model it started from often keeps most of the fine-tuning's gain and
    undoes part of what it broke, at no training cost. The files must share one config and one lineage.
    """
    with cli_errors():
        from mattecli.training import average_weights

        path = average_weights(list(sources), output, mix=mix or None, overwrite=overwrite)
    console.print(f"wrote {path}")
