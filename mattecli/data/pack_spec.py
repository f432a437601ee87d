"""The data spec written inside a pack, and the name lists it points to.

The packed spec has the recipe's sources, weights and augmentation, with roots inside the pack; a source
that keeps only some of its packed folder's names (another source of the same folder keeps more) gets an
include list under ``lists/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mattecli.data.spec import DataSpec


def add_name_lists(dest: Path, tables: list[dict[str, Any]]) -> None:
    """A source whose names are not everything its packed folder holds (another source of the same folder
    keeps more) gets an include list; likewise for backgrounds."""
    held: dict[str, set[str]] = {}
    held_bg: dict[str, set[str]] = {}
    for table in tables:
        held.setdefault(table["root"], set()).update(table["_names"])
        if "backgrounds" in table:
            held_bg.setdefault(table["backgrounds"], set()).update(table["_backgrounds"])
    for number, table in enumerate(tables):
        names, backgrounds = table.pop("_names"), table.pop("_backgrounds", None)
        if set(names) != held[table["root"]]:
            table["include"] = _write_list(dest / "lists" / f"source{number}.txt", names)
        if backgrounds is not None and set(backgrounds) != held_bg[table["backgrounds"]]:
            table["backgrounds_include"] = _write_list(
                dest / "lists" / f"backgrounds{number}.txt", backgrounds
            )


def _write_list(path: Path, names: Iterable[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return f"lists/{path.name}"


def spec_toml(spec: DataSpec, tables: list[dict[str, Any]], recipe: Path) -> str:
    from dataclasses import asdict, fields

    from mattecli.data.augment import AugmentConfig

    lines = [
        f"# Packed copy of the training split of {recipe.name} (mattecli.data.pack); paths inside the pack.",
        "",
    ]
    defaults = AugmentConfig()
    changed = {
        f.name: value
        for f in fields(AugmentConfig)
        if (value := asdict(spec.augment)[f.name]) != getattr(defaults, f.name)
    }
    if spec.epoch_length is not None:
        lines += [f"epoch_length = {spec.epoch_length}", ""]
    if changed:
        lines.append("[augment]")
        lines += [f"{key} = {_toml(value)}" for key, value in changed.items()]
        lines.append("")
    for table in tables:
        lines.append("[[source]]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))
