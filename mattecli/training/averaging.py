"""``matte average``: the weighted mean of several weights files of one model (a "model soup").

Averaging is not an export (no checkpoint becomes a network here): it reads weights files or checkpoints,
checks that they hold one model, and writes one weights file whose provenance lists its parts.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import torch

from mattecli import __version__
from mattecli.errors import MatteError, UsageError
from mattecli.training.export import checked_output


def average_weights(
    sources: list[str | Path],
    output: str | Path,
    *,
    mix: list[float] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the weighted mean of several weights files of one model (a "model soup").

    Averaging a fine-tuned model with the model it started from (Wortsman et al., "Robust fine-tuning of
    zero-shot models", CVPR 2022; "Model soups", ICML 2022) often keeps most of the fine-tuning's gain while
    undoing part of what it broke; it costs no training. It only makes sense for files of one lineage
    (one starting point), which is the caller's responsibility; the function checks that the configs match.

    Args:
        sources: Two or more weights files (or training checkpoints) with the same model config.
        output: The ``.safetensors`` file to write (atomically). It may be one of the sources.
        mix: One positive weight per source (normalised to sum to 1); default: equal weights.
        overwrite: Replace an existing file instead of refusing.
    """
    from mattecli.modelfiles.loading import read_tensors
    from mattecli.modelfiles.weights import is_unused_tensor, load_state, save_weights
    from mattecli.models import LateFusionNet

    output = checked_output(output, overwrite)
    if len(sources) < 2:
        raise MatteError("averaging needs at least two weights files")
    coefficients = _normalised_mix(mix, len(sources))
    loaded = []
    for source in sources:
        found = read_tensors(source)
        # A checkpoint also holds the encoder's unused classifier head, which weights files leave out.
        tensors = {k: v for k, v in found.tensors.items() if not is_unused_tensor(k, found.config.encoder)}
        loaded.append((tensors, found.config, found.provenance))
    config = loaded[0][1]
    for source, (other_tensors, other, _) in zip(sources[1:], loaded[1:], strict=True):
        if other != config:
            raise MatteError(f"holds a {other.name!r} model, the first file a {config.name!r} one", source)
        if other_tensors.keys() != loaded[0][0].keys():
            raise MatteError("holds other tensors than the first file", source)
    tensors = {
        key: _weighted_mean([t[key] for t, _, _ in loaded], coefficients, key, sources)
        for key in loaded[0][0]
    }
    model = LateFusionNet(config)
    load_state(model, tensors, sources[0], check_finite=False)
    provenance = {
        "mattecli_version": __version__,
        "exported_at": datetime.now().isoformat(timespec="seconds"),
        "average_of": [
            {"file": Path(source).name, "weight": round(weight, 6), "provenance": prov}
            for source, weight, (_, _, prov) in zip(sources, coefficients, loaded, strict=True)
        ],
    }
    return save_weights(model, output, provenance, dtype=torch.float32)


def _normalised_mix(mix: list[float] | None, count: int) -> list[float]:
    if mix is None:
        return [1.0 / count] * count
    if len(mix) != count:
        raise UsageError(f"--mix needs one weight per file: {len(mix)} weights for {count} files")
    if any(not weight > 0 for weight in mix):
        raise UsageError("--mix weights must be positive")
    total = float(sum(mix))
    return [weight / total for weight in mix]


def _weighted_mean(
    values: list[torch.Tensor], coefficients: list[float], key: str, sources: list[str | Path]
) -> torch.Tensor:
    """Floating-point tensors are averaged in float64; integer buffers (BN step counters) come from the
    first file."""
    for source, value in zip(sources[1:], values[1:], strict=True):
        if value.shape != values[0].shape:
            shapes = f"{tuple(value.shape)}, not {tuple(values[0].shape)}"
            raise MatteError(f"tensor {key} has shape {shapes}", source)
    if not values[0].is_floating_point():
        return values[0]
    total = sum(c * v.double() for c, v in zip(coefficients, values, strict=True))
    return total.to(values[0].dtype)
