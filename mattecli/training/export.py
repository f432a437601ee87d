"""``matte export``: turn a training checkpoint into an inference weights file.

The weights file (safetensors) holds the model tensors without optimiser state, and its metadata carries
the model config and the provenance a model card needs: stage, steps, data, the training command line and
the last validation metrics.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from mattecli import __version__
from mattecli.errors import MatteError
from mattecli.training import checkpoint as ckpt
from mattecli.training.checkpoint import provenance_from_checkpoint


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    *,
    half: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write inference weights (safetensors + config + provenance) from a checkpoint or run folder.

    Args:
        checkpoint: A ``.pt`` checkpoint or a run folder (its newest checkpoint).
        output: The ``.safetensors`` file to write (atomically).
        half: Store float16 tensors (half the size; inference upcasts as needed).
        overwrite: Replace an existing file instead of refusing.
    """
    from mattecli.loading import net_from_checkpoint

    output = _checked_output(output, overwrite)
    state, path = ckpt.load_checkpoint(checkpoint)
    return save_exported(net_from_checkpoint(state, path), state, path, output, half=half)


def save_exported(
    model: torch.nn.Module, state: dict[str, Any], source: Path, output: Path, *, half: bool = False
) -> Path:
    """Write ``model`` (whose tensors are the checkpoint ``state``'s) with the checkpoint's provenance.

    Inference weights are float32 (float16 with ``half``) whatever precision the run trained in.
    """
    from mattecli.weights import save_weights

    provenance = provenance_from_checkpoint(state, source)
    return save_weights(model, output, provenance, dtype=torch.float16 if half else torch.float32)


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
    from mattecli.loading import read_tensors
    from mattecli.models import LateFusionNet
    from mattecli.weights import is_unused_tensor, load_state, save_weights

    output = _checked_output(output, overwrite)
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


def _checked_output(output: str | Path, overwrite: bool) -> Path:
    """The destination of a weights file, refused early (before any loading) if it is misnamed or taken."""
    output = Path(output).expanduser()
    if output.is_dir():
        raise MatteError("is a folder; -o takes the file to write (FILE.safetensors)", output)
    if output.suffix != ".safetensors":
        raise MatteError("the weights file name must end in .safetensors", output)
    if output.exists() and not overwrite:
        raise MatteError("file exists (pass --overwrite to replace it)", output)
    return output


def _normalised_mix(mix: list[float] | None, count: int) -> list[float]:
    if mix is None:
        return [1.0 / count] * count
    if len(mix) != count:
        raise MatteError(f"--mix needs one weight per file: {len(mix)} weights for {count} files")
    if any(not weight > 0 for weight in mix):
        raise MatteError("--mix weights must be positive")
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
