"""How ``--precision auto`` resolves: bf16 on CPUs that multiply bf16 in hardware, fp32 on the others."""

from __future__ import annotations

import pytest
import torch

from mattecli.errors import MatteError
from mattecli.training import step
from mattecli.training.step import resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize(("has_bf16", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_the_cpu_follows_its_bf16_support(monkeypatch, has_bf16: bool, expected: str) -> None:
    monkeypatch.setattr(step, "cpu_has_bf16", lambda: has_bf16)
    assert resolve_precision("auto", CPU) == expected


def test_explicit_precisions_are_kept_whatever_the_cpu(monkeypatch) -> None:
    monkeypatch.setattr(step, "cpu_has_bf16", lambda: True)
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(MatteError, match="fp16 needs a GPU"):
        resolve_precision("fp16", CPU)


def test_cpu_probe_reads_torchs_own_flags(monkeypatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert step.cpu_has_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert step.cpu_has_bf16() is True
