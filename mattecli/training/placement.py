"""The model made ready to train one stage: BatchNorm synchronised across processes, moved to its device
in its training dtype and memory layout, frozen where the stage says, and wrapped for the forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from mattecli.training.distributed import convert_sync_batchnorm
from mattecli.training.stages import BranchesOnly, bn_training_modules, configure_stage, set_stage_mode


def place_for_training(
    model: nn.Module, stage: str, device: torch.device, precision: str, distributed: bool
) -> tuple[torch.dtype, list[nn.Parameter]]:
    """Prepare ``model`` in place; returns its parameter dtype and the parameters the stage trains."""
    if distributed:
        for module in bn_training_modules(model, stage):
            convert_sync_batchnorm(module, device)
    # fp64 is for numerical checks (e.g. that N processes match one exactly); fp32 otherwise.
    param_dtype = torch.float64 if precision == "fp64" else torch.float32
    # channels_last (NHWC) lets oneDNN and cuDNN pick their fast convolution kernels, as at inference:
    # 1.6-1.7x the samples/s of lite training on the 2-core CPU (benchmarks/RESULTS.md). Weights files
    # are written contiguous (mattecli.modelfiles.weights), so nothing downstream sees the layout.
    model.to(device, dtype=param_dtype, memory_format=torch.channels_last)
    trainable = configure_stage(model, stage)
    set_stage_mode(model, stage)
    return param_dtype, trainable


def wrap_for_training(model: nn.Module, stage: str, device: torch.device, distributed: bool) -> nn.Module:
    """The module the training step calls: the two branches alone in stage 1, DDP over processes."""
    if stage == "seg":
        model = BranchesOnly(model)  # stage 1 never needs the fusion net's output
    if not distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    # Buffers are equal on every process already (synchronised or frozen BN statistics), so DDP's
    # default per-forward buffer broadcast from rank 0 changes nothing; it is kept for safety.
    return DistributedDataParallel(model, device_ids=device_ids)
