"""``matte models``: the bundled and cached models, with size, config and provenance.

The models are :func:`mattecli.modelfiles.catalog.list_models`'s: the installed weights files, each with
its registered record (:class:`~mattecli.modelfiles.catalog.NamedModel`) where it has one.

The list is data, so it goes to stdout: a table on a terminal, tab-separated rows (one header line) when
stdout is a pipe or a file, so that ``matte models | cut -f1`` gives the names. Messages (where the cache
is, which model runs without ``--model``, unreadable files) go to stderr.
"""

from __future__ import annotations

import sys

import typer

from mattecli.cli.common import console, fail

COLUMNS = ("name", "aliases", "source", "size", "config", "provenance", "path")


def models_command(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="One block per model: file, size, sha256, config and how it was made (for an average: each "
        "source with its weight and training facts).",
    ),
) -> None:
    """List the bundled and cached models.

    On a terminal: a table. Piped or redirected: tab-separated rows after a header line (name, aliases,
    source, size, config, provenance, path), for cut, grep and scripts. Either way on stdout; notes go to
    stderr. --model NAME picks a listed model; without --model the default one runs.
    """
    from mattecli.modelfiles.catalog import ALIASES, cache_dir, list_models

    entries = list_models()
    aliases = {target: name for name, target in ALIASES.items()}
    rows, errors = [], []
    for entry in entries:
        row = _describe(entry, aliases.get(entry.name))
        rows.append(row)
        if row["error"]:
            errors.append(row["error"])
    if verbose:
        typer.echo("\n\n".join("\n".join(_verbose_block(row)) for row in rows))
    elif sys.stdout.isatty():
        _print_table(rows)
    else:
        typer.echo("\t".join(COLUMNS))
        for row in rows:
            typer.echo("\t".join(_cell(row[column]) for column in COLUMNS))
    _print_notes(rows, cache_dir())
    for message in errors:
        fail(message)
    if errors:
        raise typer.Exit(1)


def _describe(entry, alias: str | None) -> dict:
    """A model's row: what the table, the tab-separated rows and ``-v`` show. An unreadable file gets a
    row too (the others still list), with the one-line error that the command reports."""
    from mattecli.errors import MatteError
    from mattecli.modelfiles.catalog import describe_entry

    row = {
        "entry": entry,
        "name": entry.name,
        "aliases": alias or "-",
        "source": entry.source,
        "size": f"{entry.size_bytes / 1e6:.1f} MB",
        "path": str(entry.path),
        "error": None,
        "provenance_dict": {},
        "config_obj": None,
    }
    try:
        info = describe_entry(entry)
    except MatteError as exc:
        row.update(config="-", provenance=f"unreadable: {_strip_path(str(exc), entry.path)}", error=str(exc))
        return row
    row.update(
        config=_config_summary(info["config"]),
        provenance=_provenance_summary(info["provenance"]),
        provenance_dict=info["provenance"],
        config_obj=info["config"],
    )
    return row


def _strip_path(message: str, path) -> str:
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _cell(value: str) -> str:
    """One tab-separated field: no tabs or line breaks inside, '-' for nothing."""
    return " ".join(str(value).split()) or "-"


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    # Names are short and are what a user types: "lite (default)" stays whole; the other columns give way.
    widest = max((len(_title(row)) for row in rows), default=4)
    table.add_column("name", no_wrap=True, min_width=min(widest, 32))
    for column in ("source", "size", "config", "provenance"):
        table.add_column(column, overflow="fold")  # a long value breaks, never ends in "…"
    for row in rows:
        cells = (_title(row), row["source"], row["size"], row["config"], row["provenance"])
        table.add_row(*(escape(cell) for cell in cells))
    Console(highlight=False).print(table)


def _title(row: dict) -> str:
    return row["name"] + (f" ({row['aliases']})" if row["aliases"] != "-" else "")


def _print_notes(rows: list[dict], cache) -> None:
    """Which model runs without --model and how to pick another; where the cache is."""
    from mattecli.modelfiles.catalog import DEFAULT_MODEL

    if not rows:
        console.print(
            "no models installed; pass a weights file, .onnx export, checkpoint or run folder with --model",
            markup=False,
        )
    elif len(rows) > 1:
        console.print(
            f"matte image, video and eval run {DEFAULT_MODEL} (the default) unless given --model NAME "
            "(another listed model) or --model FILE (a weights file, .onnx export, training checkpoint or "
            "run folder)",
            markup=False,
            soft_wrap=True,
        )
    console.print(f"cache: {cache}  (set MATTE_HOME to move it)", markup=False, soft_wrap=True)


def _config_summary(config) -> str:
    fusion = "-".join(str(c) for c in config.fusion_channels)
    return f"{config.name}: {config.encoder}, decoder {config.decoder_channels}, fusion {fusion}"


def _provenance_summary(provenance: dict) -> str:
    """One line: how the weights were made (an export's stage and steps, or an average's sources)."""
    if "average_of" in provenance:
        parts = [f"{s.get('file', '?')} x{s.get('weight', '?')}" for s in provenance["average_of"]]
        return "average of " + ", ".join(parts)
    facts = [f"{k}: {provenance[k]}" for k in ("stage", "steps", "size", "trained_on") if k in provenance]
    if facts:
        return "; ".join(facts)
    return "; ".join(f"{k}: {_short(v, 40)}" for k, v in sorted(provenance.items())[:3]) or "-"


# ------------------------------------------------------------------------------------------------ -v

#: Longest -v line; longer values (command lines, free-form notes) are cut, with "...". Paths are whole.
MAX_LINE = 120
#: Provenance keys that -v turns into its own lines (the others are shown as "key: value").
_KNOWN = {
    "stage", "steps", "epochs", "size", "batch_size", "seed", "data", "val", "metrics", "init", "checkpoint",
    "command", "run_config", "exported_at", "mattecli_version", "average_of",
}  # fmt: skip


def _verbose_block(row: dict) -> list[str]:
    """A model's -v block: a title line, then "key: value" lines indented by two spaces."""
    entry = row["entry"]
    title = _title(row)
    lines = [
        ("file", row["path"]),
        ("source", row["source"]),
        ("size", f"{row['size']} ({entry.size_bytes:,} bytes)"),
        ("sha256", _sha256(entry)),
    ]
    if row["error"]:
        lines.append(("error", _strip_path(row["error"], entry.path)))
        return [title, *_format_pairs(lines, "  ")]
    lines.append(("config", _config_detail(row["config_obj"])))
    provenance = row["provenance_dict"]
    lines += _made_by(provenance)
    sources = provenance.get("average_of") or []
    if not sources:
        lines += _training_facts(provenance, nested=False)
    out = [title, *_format_pairs(lines, "  ")]
    for source in sources:
        out.append(f"  - {source.get('file', '?')}, weight {source.get('weight', '?')}")
        out.extend(_format_pairs(_training_facts(source.get("provenance") or {}, nested=True), "      "))
    return out


def _format_pairs(pairs: list[tuple[str, str]], indent: str) -> list[str]:
    """Aligned "key: value" lines, each value cut to fit MAX_LINE (except file paths)."""
    width = max((len(key) for key, _ in pairs), default=0) + 1
    lines = []
    for key, value in pairs:
        prefix = f"{indent}{key + ':':<{width}} "
        text = " ".join(str(value).split())
        lines.append(
            prefix + (text if key in ("file", "checkpoint") else _short(text, MAX_LINE - len(prefix)))
        )
    return lines


def _sha256(entry) -> str:
    """The file's sha256 (first 16 hex digits); for a registered model whose file is not the released
    one (:class:`~mattecli.modelfiles.catalog.NamedModel` ``sha256``), the expected digest too."""
    import hashlib

    digest = hashlib.sha256()
    with open(entry.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    found = digest.hexdigest()
    expected = entry.model.sha256 if entry.model is not None else None
    if expected and found != expected:
        return f"{found[:16]} (not the released {entry.model.name}: {expected[:16]})"
    return found[:16]


def _config_detail(config) -> str:
    return (
        f"{_config_summary(config)}, image branch {config.fusion_image_channels}, "
        f"{config.default_size} px by default"
    )


def _made_by(provenance: dict) -> list[tuple[str, str]]:
    """How the file was written: an average of N files, or an export; when and by which version."""
    when = " ".join(
        part
        for part in (
            f"on {provenance['exported_at']}" if provenance.get("exported_at") else "",
            f"by mattecli {provenance['mattecli_version']}" if provenance.get("mattecli_version") else "",
        )
        if part
    )
    sources = provenance.get("average_of")
    if sources:
        return [("made", f"average of {len(sources)} files" + (f", {when}" if when else ""))]
    if "stage" in provenance or "checkpoint" in provenance:
        return [("made", "exported from a training checkpoint" + (f", {when}" if when else ""))]
    return [("made", when)] if when else []


def _training_facts(provenance: dict, nested: bool) -> list[tuple[str, str]]:
    """The key facts of an export's provenance, one short line each; other keys as "key: value".
    ``nested``: the provenance of an average's source (which says when it was exported itself)."""
    facts: list[tuple[str, str]] = []
    if "average_of" in provenance:  # a source that is itself an average: one line, no deeper
        facts.append(("made", _provenance_summary(provenance)))
    training = _join(
        f"{provenance['stage']} stage" if provenance.get("stage") else "",
        f"{provenance['steps']} steps" if provenance.get("steps") is not None else "",
        f"{provenance['epochs']} epochs" if provenance.get("epochs") is not None else "",
        f"{provenance['size']} px crops" if provenance.get("size") else "",
        f"batch {provenance['batch_size']}" if provenance.get("batch_size") else "",
        f"seed {provenance['seed']}" if provenance.get("seed") is not None else "",
    )
    if training:
        facts.append(("training", training))
    if provenance.get("data"):
        facts.append(("data", str(provenance["data"])))
    if provenance.get("val"):
        facts.append(("validated on", str(provenance["val"])))
    if isinstance(provenance.get("metrics"), dict) and provenance["metrics"]:
        facts.append(("last validation", _metrics(provenance["metrics"])))
    start = _started_from(provenance)
    if start:
        facts.append(("started from", start))
    if provenance.get("checkpoint"):
        facts.append(("checkpoint", str(provenance["checkpoint"])))
    if provenance.get("command"):
        facts.append(("command", str(provenance["command"])))
    if nested and "average_of" not in provenance and provenance.get("exported_at"):
        version = provenance.get("mattecli_version")
        facts.append(("exported", _join(provenance["exported_at"], f"mattecli {version}" if version else "")))
    for key in sorted(set(provenance) - _KNOWN):
        facts.append((key, _flat(provenance[key])))
    return facts


def _started_from(provenance: dict) -> str:
    """Where training started: the --init path and what it was (one level, not the whole chain)."""
    run = provenance.get("run_config") if isinstance(provenance.get("run_config"), dict) else {}
    init = provenance.get("init")
    path = run.get("init") if run else None
    if isinstance(init, dict) and init:
        if "average_of" in init:
            what = f"an average of {len(init['average_of'])} files"
        else:
            steps = init.get("steps", init.get("step"))
            what = _join(
                f"{init['stage']} stage" if init.get("stage") else "",
                f"{steps} steps" if steps is not None else "",
            )
        path = path or init.get("checkpoint")
        return f"{path} ({what})" if path and what else str(path or what)
    if "init" in provenance and not init and ("stage" in provenance or run):
        return "a new network (ImageNet encoder)" if run.get("pretrained", True) else "a new network"
    return str(path) if path else ""


def _metrics(metrics: dict) -> str:
    names = (
        ("iou", "IoU", 3),
        ("mse", "MSE", 4),
        ("sad", "SAD", 2),
        ("grad", "Grad", 2),
        ("conn", "Conn", 2),
    )
    parts = [
        f"{label} {metrics[key]:.{digits}f}" for key, label, digits in names if _number(metrics.get(key))
    ]
    where = _join(
        f"{metrics['count']} images" if metrics.get("count") is not None else "",
        f"{metrics['region']} region" if metrics.get("region") else "",
        f"step {metrics['step']}" if metrics.get("step") is not None else "",
    )
    return ", ".join(parts) + (f" ({where})" if where else "")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _join(*parts) -> str:
    return ", ".join(str(part) for part in parts if part)


def _flat(value) -> str:
    """A free-form provenance value on one line: nested containers summarised, not dumped."""
    if isinstance(value, dict):
        inner = ", ".join(
            f"{k}: {_flat(v) if not isinstance(v, (dict, list)) else '...'}" for k, v in value.items()
        )
        return f"({inner})"
    if isinstance(value, list):
        return ", ".join(_flat(v) if not isinstance(v, (dict, list)) else "..." for v in value)
    return str(value)


def _short(value, limit: int = 40) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
