"""One optimisation step: forward under autocast, the stage's loss in float32, backward, clip, update.

:class:`TrainStep` is the part of the training loop that touches tensors; the trainer hands it a batch and
gets back the loss parts (for the log) and whether the optimiser stepped. With ``compile = true`` the
forward and loss become one ``torch.compile`` graph here; validation and export use the plain module.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from mattecli.errors import MatteError
from mattecli.losses import stage_loss, weight_decay_penalty
from mattecli.training.runconfig import RunConfig


class TrainStep:
    """Runs steps of one stage; the settings it reads (stage, loss extras and weights, weight decay,
    clipping, compilation) are fixed for the run, so it keeps the configuration it was built with."""

    def __init__(
        self,
        config: RunConfig,
        *,
        net: nn.Module,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        trainable: list[nn.Parameter],
        device: torch.device,
        param_dtype: torch.dtype,
        autocast_dtype: torch.dtype | None,
    ) -> None:
        self.cfg = config
        self.net = net
        self.model = model
        self.optimizer = optimizer
        self.scaler = scaler
        self.trainable = trainable
        self.device = device
        self.param_dtype = param_dtype
        self.autocast_dtype = autocast_dtype
        self.compute = compiled(self.forward_loss, config.compile) if config.compile else self.forward_loss

    def __call__(self, batch: dict[str, Any]) -> tuple[dict[str, Tensor], bool]:
        """Forward, loss (float32), backward, clip, optimiser step. Returns the loss parts and whether
        the optimiser stepped (a non-finite gradient skips the step on every process alike)."""
        non_blocking = self.device.type == "cuda"
        image = batch["image"].to(self.device, self.param_dtype, non_blocking=non_blocking)
        image = image.contiguous(memory_format=torch.channels_last)
        alpha = batch["alpha"].to(self.device, self.param_dtype, non_blocking=non_blocking)
        loss, penalty = self.compute(image, alpha)
        total = loss.total + penalty
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.clip_norm if self.cfg.clip_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, max_norm)
        finite = bool(torch.isfinite(grad_norm))
        if finite or self.scaler.is_enabled():
            self.scaler.step(self.optimizer)  # the scaler itself skips steps with inf/NaN gradients
        self.scaler.update()
        parts = {"loss": total.detach(), **loss.parts, "weight_decay": penalty.detach()}
        parts["grad_norm"] = grad_norm.detach()
        return parts, finite

    def forward_loss(self, image: Tensor, alpha: Tensor) -> tuple[Any, Tensor]:
        """The network under autocast, then the stage's loss and the weight-decay penalty in float32:
        the part of a step that ``compile = true`` hands to ``torch.compile`` as one graph."""
        dtype = self.autocast_dtype
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()
        with autocast:
            out = self.net(image)
        out = to_float32(out)
        cfg = self.cfg
        loss = stage_loss(
            cfg.stage,
            out,
            alpha,
            authors_extras=cfg.authors_extras,
            fusion_hard_weight=cfg.fusion_hard_weight,
            joint_branch_weight=cfg.joint_branch_weight,
        )
        return loss, weight_decay_penalty(self.model, self.cfg.weight_decay)


def compiled(function: Any, setting: bool | str) -> Any:
    """``torch.compile`` of the forward and loss. Every training batch has one shape (square crops,
    whole batches), so the graph compiles once; validation and export use the plain module."""
    backend = "inductor" if setting is True else str(setting)
    import torch._dynamo

    if backend not in torch._dynamo.list_backends(exclude_tags=()):
        known = ", ".join(torch._dynamo.list_backends())
        raise MatteError(f"compile: unknown torch.compile backend {backend!r} (known: {known})")
    return torch.compile(function, backend=backend)


def to_float32(out: Any) -> Any:
    """Losses run in float32 (or wider) whatever autocast produced (small epsilons need it)."""
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


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA when supported (else fp16); bf16 on a CPU with bf16 dot products (AVX-512
    BF16 or AMX), where it trained 1.2x as fast as fp32 (benchmarks/RESULTS.md, issue
    20); fp32 elsewhere, where bf16 is emulated and slower. fp16 needs CUDA or MPS."""
    if requested == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu" and cpu_has_bf16():
            return "bf16"
        return "fp32"
    if requested == "fp16" and device.type == "cpu":
        raise MatteError("--precision fp16 needs a GPU; use fp32 (or bf16) on the CPU")
    if requested == "fp64" and device.type == "mps":
        raise MatteError("--precision fp64 is not supported on MPS")
    return requested


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (torch's own probe; private API, so absent means no)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
