"""Device selection: CUDA, then Apple's MPS, then the CPU, unless the user names one."""

from __future__ import annotations

import torch

from mattecli.errors import MatteError, UsageError

SUPPORTED = "auto, cpu, cuda, cuda:N or mps"
"""The device names the error messages suggest (an Intel ``xpu`` works too where torch has one)."""


def pick_device(requested: str | torch.device = "auto") -> torch.device:
    """Resolve ``auto`` to the best available device; check that a named device really exists.

    A named device that is not available is an error rather than a silent fallback, because a user who
    asked for ``cuda`` and silently got the CPU would wait far longer than they expected. Every problem is
    a one-line MatteError: device types that torch knows but this program cannot use (hip, vulkan, xla,
    mtia, meta, ...) included, which torch itself reports only when a tensor first moves there.
    """
    if isinstance(requested, torch.device):
        return _check_usable(requested, str(requested))
    if not isinstance(requested, str):
        raise MatteError(f"device must be a name ({SUPPORTED}), got {type(requested).__name__}")
    name = requested.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {requested!r} (use {SUPPORTED})") from None
    return _check_usable(device, requested)


def _check_usable(device: torch.device, requested: str) -> torch.device:
    """``device`` if this machine has it and the program can run on it, else a MatteError naming it."""
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MatteError(f"device {requested!r} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MatteError(
                f"device {requested!r} requested but only {torch.cuda.device_count()} GPUs exist"
            )
        return device
    if device.type == "mps":
        if not _mps_available():
            raise MatteError(f"device {requested!r} requested but MPS is not available")
        return device
    if device.type == "xpu":
        xpu = getattr(torch, "xpu", None)
        if xpu is None or not xpu.is_available():
            raise MatteError(f"device {requested!r} requested but no Intel XPU is available")
        if device.index is not None and device.index >= xpu.device_count():
            raise MatteError(f"device {requested!r} requested but only {xpu.device_count()} XPUs exist")
        return device
    raise UsageError(f"device {requested!r} is not supported (use {SUPPORTED})")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def default_half(device: torch.device) -> bool:
    """Half precision by default on CUDA only: it halves activation memory (large tiles, video batches), and
    the network's sigmoids keep outputs in range. It is not faster for the small ``lite`` network: on an H200,
    fp32 ran 141 and fp16 124 images/s at 512 px, as both are bound by kernel launches there
    (benchmarks/RESULTS.md). MPS and CPU stay in float32, where fp16 is slower or unsafe."""
    return device.type == "cuda"


def describe(device: torch.device) -> str:
    """Human-readable device name for the one-line start-up message."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
