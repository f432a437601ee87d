"""``matte train`` (one training stage) and ``matte export`` (checkpoint -> inference weights).

Every option defaults to None here so that the trainer can tell "not given" from "given": a flag overrides
the ``--config`` file, and a resumed run refuses flags that would change what it computes.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mattecli.cli.common import cli_errors, console

_STAGE_HELP = (
    "seg: encoder + both decoders (BN statistics update); fusion: only the fusion network "
    "(the rest frozen, BN in eval); joint: everything, all BN statistics frozen."
)


def train_command(
    data: str | None = typer.Argument(
        None, help="Training data: a folder (layout auto-detected) or a TOML data spec."
    ),
    stage: str | None = typer.Option(None, "--stage", help=f"seg, fusion or joint. {_STAGE_HELP}"),
    config: str | None = typer.Option(
        None, "--config", help="TOML file with any of these settings (flags override it)."
    ),
    out: str | None = typer.Option(None, "--out", "-o", help="Run folder (default runs/STAGE-DATE-TIME)."),
    init: str | None = typer.Option(
        None, "--init", help="Start from weights: a .safetensors file or a training checkpoint."
    ),
    resume: str | None = typer.Option(
        None, "--resume", help="Continue a stopped run: its folder or a checkpoint (.pt)."
    ),
    model_config: str | None = typer.Option(
        None, "--model-config", help="lite (default), paper, or a ModelConfig JSON file."
    ),
    pretrained: bool | None = typer.Option(
        None,
        "--pretrained/--no-pretrained",
        help="ImageNet weights for a new encoder (default on; ignored with --init/--resume).",
    ),
    size: int | None = typer.Option(None, "--size", help="Training crop side (default 320)."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", "-b", help="Global batch over all processes (default 2)."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Total optimiser steps."),
    epochs: float | None = typer.Option(
        None, "--epochs", help="Length in epochs when --steps is not given (default 10)."
    ),
    epoch_length: int | None = typer.Option(
        None, "--epoch-length", help="Samples per epoch (default: the data's size or spec)."
    ),
    workers: int | None = typer.Option(None, "--workers", "-j", help="Data loader processes."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for initialisation and data order."),
    optimizer: str | None = typer.Option(None, "--optimizer", help="sgd (the paper's) or adamw."),
    lr_min: float | None = typer.Option(
        None, "--lr-min", help="Cyclic LR low (seg 5e-4, fusion/joint 1e-5)."
    ),
    lr_max: float | None = typer.Option(
        None, "--lr-max", help="Cyclic LR high (seg 1.5e-3, fusion/joint 5e-4)."
    ),
    half_cycle_epochs: float | None = typer.Option(
        None, "--half-cycle-epochs", help="Epochs from LR low to high (default 2)."
    ),
    momentum: float | None = typer.Option(None, "--momentum", help="SGD momentum (default 0.9)."),
    clip_norm: float | None = typer.Option(
        None, "--clip-norm", help="Gradient clipping norm (default 5; 0 disables)."
    ),
    weight_decay: str | None = typer.Option(
        None,
        "--weight-decay",
        help="code: the authors' per-weight penalty (default); paper: optimiser decay; none.",
    ),
    optimizer_weight_decay: float | None = typer.Option(
        None, "--optimizer-weight-decay", help="Decay used by --weight-decay paper (default 1e-4)."
    ),
    authors_extras: bool | None = typer.Option(
        None,
        "--authors-extras/--no-authors-extras",
        help="Add the code's L_g(alpha) and sparsity terms in fusion/joint (default on).",
    ),
    precision: str | None = typer.Option(
        None, "--precision", help="auto (bf16/fp16 on CUDA, fp32 elsewhere), bf16, fp16 or fp32."
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps."),
    val: str | None = typer.Option(None, "--val", help="Held-out data to validate on."),
    val_every: int | None = typer.Option(None, "--val-every", help="Validate every N steps (500)."),
    val_size: int | None = typer.Option(
        None, "--val-size", help="Long side of validation images (default: the model's)."
    ),
    val_limit: int | None = typer.Option(None, "--val-limit", help="Validate on the first N only."),
    ckpt_every: int | None = typer.Option(None, "--ckpt-every", help="Checkpoint every N steps (500)."),
    keep_checkpoints: int | None = typer.Option(
        None, "--keep-checkpoints", help="Checkpoints kept (default 3; 0 keeps all)."
    ),
    log_every: int | None = typer.Option(None, "--log-every", help="Log every N steps (10)."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads."),
    quiet: bool | None = typer.Option(None, "--quiet", "-q", help="No progress output."),
    stop_after: int | None = typer.Option(None, "--stop-after", hidden=True),
) -> None:
    """Train one stage of the Late Fusion CNN (checkpoints, resume, validation, multi-GPU via torchrun)."""
    flags = {k: v for k, v in locals().items() if k != "config"}
    with cli_errors():
        from mattecli.training import prepare_config, train

        run_config = prepare_config(flags, config)
        result = train(run_config)
    if result.stopped_early:
        console.print(f"stopped at step {result.step}; continue with: matte train --resume {result.run_dir}")


def export_command(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (.pt) or a run folder."),
    output: Path = typer.Option(..., "-o", "--output", help="The .safetensors file to write."),
    half: bool = typer.Option(False, "--half", help="Store float16 weights (half the size)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Write inference weights (safetensors with config and provenance) from a training checkpoint."""
    with cli_errors():
        from mattecli.training import export_checkpoint

        path = export_checkpoint(checkpoint, output, half=half, overwrite=overwrite)
    console.print(f"wrote {path}")


def average_command(
    sources: list[Path] = typer.Argument(
        ..., help="Two or more weights files (or checkpoints) of one model."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="The .safetensors file to write."),
    mix: list[float] | None = typer.Option(
        None, "--mix", help="Weight of each file, in order (repeat the flag; default: equal)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Average the weights of fine-tuned versions of one model (a "model soup"), e.g. a model and its
    fine-tuned continuation: often keeps most of the gain and undoes part of what fine-tuning broke."""
    with cli_errors():
        from mattecli.training import average_weights

        path = average_weights(list(sources), output, mix=mix or None, overwrite=overwrite)
    console.print(f"wrote {path}")
