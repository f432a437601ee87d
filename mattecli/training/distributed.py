"""Multi-process training under ``torchrun``: process groups, synchronised BatchNorm, small collectives.

One process per GPU (NCCL) or per CPU worker (gloo). Without torchrun's environment every helper here
degrades to the single-process case, so the trainer has one code path.

PyTorch's :class:`~torch.nn.SyncBatchNorm` only runs on GPUs; :class:`CpuSyncBatchNorm` does the same job on
CPUs over gloo, so that a CPU run with two processes computes exactly the batch statistics of one process
that sees the whole global batch (which is what makes the two-process test exact).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from mattecli.device import pick_device
from mattecli.errors import MatteError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_request: str = "auto") -> DistInfo:
    """Initialise the default process group when started by torchrun; pick this process's device.

    Under torchrun a CUDA process takes GPU ``LOCAL_RANK`` and NCCL; otherwise gloo on the CPU. Each CPU
    process gets an equal share of the cores unless OMP_NUM_THREADS says otherwise.
    """
    if not launched_by_torchrun():
        return DistInfo(0, 1, 0, pick_device(device_request))
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_request)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        if device.type != "cpu":
            raise MatteError(f"distributed training supports CUDA and CPU, not {device.type}")
        backend = "gloo"
        if "OMP_NUM_THREADS" not in os.environ:
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=60))
    return DistInfo(rank, world_size, local_rank, device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(value: Any) -> Any:
    """Rank 0's value on every rank (e.g. the run folder, whose default name has a timestamp)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value: Any) -> list[Any]:
    """Every rank's value, in rank order (all ranks receive the list)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of floats over all ranks (for logging losses measured on each rank's shard)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    tensor /= dist.get_world_size()
    return dict(zip(keys, tensor.tolist(), strict=True))


class _AllGather(torch.autograd.Function):
    """Stack every process's tensor (world x ...), differentiably: each process's slice receives the
    sum of the gradients that all processes compute for it."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Any) -> Tensor:
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, tensor.contiguous(), group=group)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        total = grad.contiguous().clone()
        dist.all_reduce(total, group=ctx.group)
        return total[ctx.rank], None


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are computed over the batches of all processes.

    Works on any device and backend (it is meant for gloo on CPUs, where torch's SyncBatchNorm refuses to
    run). Each process computes its shard's count, mean and sum of squared deviations; one all-gather
    shares them and every process combines them with the parallel-variance formula (Chan et al.), which is
    as stable as single-process BN and costs one collective per layer in each direction. The gather is
    differentiable (its backward sums the gradients of all processes), which gives each process exactly
    the gradient single-process BN would give its samples.
    """

    process_group: Any = None

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        group = self.process_group or dist.group.WORLD
        if dist.get_world_size(group) == 1:
            return super().forward(x)
        if x.ndim != 4:
            raise ValueError(f"expected 4D input (got {x.ndim}D input)")
        channels = x.shape[1]
        count = x.numel() // channels
        local_mean = x.mean(dim=(0, 2, 3))
        local_m2 = ((x - local_mean.view(1, -1, 1, 1)) ** 2).sum(dim=(0, 2, 3))
        stats = torch.cat([local_mean, local_m2, x.new_tensor([float(count)])])
        gathered = _AllGather.apply(stats, group)  # world x (2C + 1)
        means, m2s = gathered[:, :channels], gathered[:, channels : 2 * channels]
        counts = gathered[:, -1:]
        n = counts.sum()
        mean = (counts * means).sum(dim=0) / n
        var = (m2s + counts * (means - mean) ** 2).sum(dim=0) / n
        self._update_running_stats(mean.detach(), var.detach(), n.detach())
        y = (x - mean.view(1, -1, 1, 1)) * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, n: Tensor) -> None:
        if not self.track_running_stats or self.running_mean is None:
            return
        self.num_batches_tracked.add_(1)
        # momentum=None means a cumulative average, as in BatchNorm2d.
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (n / (n - 1).clamp_min(1))
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace the BatchNorm2d layers inside ``module`` by synchronised ones (in place where possible).

    CUDA uses torch's SyncBatchNorm (its fused kernels are faster); every other device uses
    :class:`CpuSyncBatchNorm`. State dict keys do not change, so checkpoints stay interchangeable with
    single-process runs.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if type(module) is nn.BatchNorm2d:
        sync = CpuSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        reference = module.weight if module.affine else module.running_mean
        if reference is not None:
            sync.to(device=reference.device, dtype=reference.dtype)
        sync.load_state_dict(module.state_dict())
        sync.train(module.training)
        if module.affine:
            sync.weight.requires_grad_(module.weight.requires_grad)
            sync.bias.requires_grad_(module.bias.requires_grad)
        return sync
    for name, child in module.named_children():
        converted = _convert_cpu(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
