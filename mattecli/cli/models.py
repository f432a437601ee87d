"""``matte models``: the built-in and cached models, with size, config and provenance."""

from __future__ import annotations

import typer

from mattecli.cli.common import cli_errors, console


def models_command(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show full provenance."),
) -> None:
    """List built-in and cached models."""
    from rich.table import Table

    from mattecli.registry import ALIASES, cache_dir, describe_entry, list_models

    with cli_errors():
        entries = list_models()
        table = Table(title="mattecli models", title_justify="left")
        for column in ("name", "source", "size", "config", "provenance"):
            table.add_column(column)
        aliases = {target: name for name, target in ALIASES.items()}
        for entry in entries:
            info = describe_entry(entry)
            name = entry.name + (f" ({aliases[entry.name]})" if entry.name in aliases else "")
            table.add_row(
                name,
                entry.source,
                f"{entry.size_bytes / 1e6:.1f} MB",
                _config_summary(info["config"]),
                _provenance_summary(info["provenance"], verbose),
            )
        console.print(table)
        console.print(f"cache: {cache_dir()}  (set MATTE_HOME to move it)")
        if not entries:
            console.print("no models installed; pass a .safetensors file with --model")


def _config_summary(config) -> str:
    fusion = "-".join(str(c) for c in config.fusion_channels)
    return f"{config.name}: {config.encoder}, decoder {config.decoder_channels}, fusion {fusion}"


def _provenance_summary(provenance: dict, verbose: bool) -> str:
    """One line per fact: how the weights were made (an export's stage and steps, or an average's sources).
    ``--verbose`` shows every key; nested values (an average's sources) as indented JSON."""
    if verbose:
        return "\n".join(f"{k}: {_verbose_value(v)}" for k, v in sorted(provenance.items()))
    if "average_of" in provenance:
        parts = [f"{s.get('file', '?')} x{s.get('weight', '?')}" for s in provenance["average_of"]]
        return "average of " + ", ".join(parts)
    facts = [f"{k}: {provenance[k]}" for k in ("stage", "steps", "size", "trained_on") if k in provenance]
    return "; ".join(facts) or "-"


def _verbose_value(value: object) -> str:
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, indent=1, sort_keys=True, default=str)
    return str(value)
