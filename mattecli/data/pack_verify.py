"""Checking a pack against its recipe: the same training samples, and evaluation samples close to the
recipe's (they differ by the resize and, for composites, by the re-estimated foreground)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np


@dataclass
class VerifyReport:
    """Pack against recipe: sample counts (recipe, pack), mean absolute errors per source, problems."""

    counts: tuple[int, int]
    alpha_error: dict[str, float] = field(default_factory=dict)
    image_error: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_pack(recipe: str | Path, packed: str | Path, *, size: int = 320, samples: int = 4) -> VerifyReport:
    """Compare a pack with its recipe: the same samples per source (names and counts, strictly), and
    ``samples`` evaluation-mode samples per source close to the recipe's (they differ by the resize and,
    for composites, by the re-estimated foreground and the background's crop)."""
    from mattecli.data.mixture import build_dataset

    original = build_dataset(recipe, size=size, train=False)
    copy = build_dataset(packed, size=size, train=False)
    train_counts = (
        len(build_dataset(recipe, size=64, train=True)),
        len(build_dataset(packed, size=64, train=True)),
    )
    report = VerifyReport(train_counts)
    if train_counts[0] != train_counts[1]:
        report.problems.append(f"training samples: recipe {train_counts[0]}, pack {train_counts[1]}")
    for number, (a, b) in enumerate(zip(original.sources, copy.sources, strict=True)):
        key = f"{a.kind} {a.root.name}"
        if a.names != b.names:
            report.problems.append(f"source {number} ({key}): the pack holds other names")
            continue
        offset_a, offset_b = int(original.offsets[number]), int(copy.offsets[number])
        picks = np.linspace(0, len(a) - 1, min(samples, len(a))).round().astype(int)
        alpha_errors, image_errors = [], []
        for index in picks:
            x, y = original[offset_a + int(index)], copy[offset_b + int(index)]
            alpha_errors.append(_error(x["alpha"], y["alpha"]))
            image_errors.append(_error(x["image"], y["image"]))
        report.alpha_error[key] = float(np.mean(alpha_errors))
        report.image_error[key] = float(np.mean(image_errors))
    return report


def _error(a: Any, b: Any) -> float:
    """Mean absolute difference of two C x H x W tensors, the second resized to the first if need be."""
    a, b = a.numpy().transpose(1, 2, 0), b.numpy().transpose(1, 2, 0)
    if a.shape != b.shape:
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR).reshape(a.shape)
    return float(np.abs(a - b).mean())
