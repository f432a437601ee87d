"""``matte --help`` and every subcommand's help read like a well-kept CLI's at 80 columns, and shell
completion is installed with the app (issue 14 item 16)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from mattecli.cli.app import COMMANDS, app

NAMES = [name for name, _module, _function in COMMANDS]
#: The usage line of each command (other engineers' new commands only get the generic checks).
USAGE = {
    "image": "matte image [OPTIONS] INPUT...",
    "video": "matte video [OPTIONS] INPUT",
    "models": "matte models [OPTIONS]",
    "train": "matte train [OPTIONS] [DATA]",
    "eval": "matte eval [OPTIONS] DATA",
    "export": "matte export [OPTIONS] CHECKPOINT",
    "average": "matte average [OPTIONS] FILE...",
}
TYPE_PLACEHOLDER = re.compile(r"<[A-Za-z_][\w\[\], |]*>")
#: What a value option's metavar may look like: FILE, N, NAME|FILE, 8|16, DIR ...
METAVAR = re.compile(r"[A-Z0-9][A-Z0-9_|.:-]*")


def help_text(*args: str, columns: int = 80) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def command(name: str):
    return typer.main.get_command(app).commands[name]


def option_rows(text: str) -> list[str]:
    """The lines that start an option: its names in the first column, two spaces in (wrapped help text
    is indented further)."""
    return [line.strip() for line in text.splitlines() if re.match(r"  -", line)]


def row_of(rows: list[str], opt: str) -> str:
    names = re.compile(rf"(^|, | / ){re.escape(opt)}(,| |$)")
    found = [row for row in rows if names.search(row.split("  ")[0])]
    assert len(found) == 1, (opt, rows)
    return found[0]


@pytest.mark.parametrize("name", ["", *NAMES])
def test_help_has_no_type_placeholders_or_braces_and_fits_80_columns(name: str) -> None:
    text = help_text(*([name] if name else []))
    assert not TYPE_PLACEHOLDER.search(text), TYPE_PLACEHOLDER.search(text)
    assert "{" not in text and "}" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text  # rich's mark of a cut name or value


@pytest.mark.parametrize("name", NAMES)
def test_every_option_name_is_whole_and_flags_take_no_value(name: str) -> None:
    text = help_text(name)
    rows = option_rows(text)
    for param in command(name).params:
        if param.param_type_name != "option" or param.hidden:
            continue
        for opt in [*param.opts, *param.secondary_opts]:
            row = row_of(rows, opt)
            last = row.split("  ")[0].rsplit(" ", 1)[-1]
            if param.is_flag:
                assert last.startswith("-"), (opt, row)
            else:
                assert METAVAR.fullmatch(last), (opt, row)


@pytest.mark.parametrize(("name", "usage"), USAGE.items())
def test_usage_lines_name_the_arguments(name: str, usage: str) -> None:
    first = help_text(name).strip().splitlines()[0]
    assert first == f"Usage: {usage}"


def test_root_help_lists_every_command_with_its_whole_summary_and_completion() -> None:
    text = help_text()
    assert text.strip().splitlines()[0] == "Usage: matte [OPTIONS] COMMAND [ARGS]..."
    flat = " ".join(text.split())
    for name in NAMES:
        summary = command(name).get_short_help_str()
        assert summary.endswith(".") and len(summary) > 20, (name, summary)
        assert f"{name} {summary}" in flat, (name, summary)
    rows = option_rows(text)
    for opt in ("--install-completion", "--show-completion", "--version", "-V", "--help", "-h"):
        row_of(rows, opt)


@pytest.mark.parametrize("name", ["average", "train", "eval", "export", "models"])
def test_long_help_paragraphs_are_filled_without_stray_breaks(name: str) -> None:
    """In each paragraph of a command's description every line but the last is filled: no line break is
    left over from the docstring's source lines."""
    text = help_text(name)
    description = text[: text.index("\nOptions:")].split("\nArguments:")[0]
    paragraphs = [p.splitlines() for p in description.split("\n\n")[1:] if p.strip()]
    assert any(len(lines) >= 2 for lines in paragraphs), description
    for lines in paragraphs:
        assert all(len(line) >= 60 for line in lines[:-1]), lines


def test_help_in_a_real_80_column_process_keeps_long_option_names_whole() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "mattecli", "train", "--help"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    for opt in ("--optimizer-weight-decay", "--authors-extras", "--no-authors-extras", "--half-cycle-epochs"):
        assert re.search(rf"(^|\s){opt}(\s|$)", proc.stdout), opt
    assert "<" not in proc.stdout and "{" not in proc.stdout


def test_a_flag_shows_no_value_placeholder() -> None:
    """``--alpha-only true`` looked right because the help showed ``--alpha-only <bool>`` (and then failed
    with "true: no such file"); the help now shows a bare flag."""
    assert re.search(r"--alpha-only\s{2,}Write", help_text("image"))


def _complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "_MATTE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    code = "from mattecli.cli.app import app; app(prog_name='matte')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_shell_completion_completes_commands_and_options() -> None:
    assert "image" in _complete("matte ima", 1)
    assert _complete("matte image --alp", 2) == ["--alpha-only"]
    assert "--optimizer-weight-decay" in _complete("matte train --optimizer", 2)


def _completion_run(option: str, home) -> subprocess.CompletedProcess:
    """``matte OPTION bash`` in a fresh process. Typer detects the shell from the process tree (shellingham),
    which under CI or an editor may hold no shell; its own switch makes the option take the shell's name."""
    env = {**os.environ, "HOME": str(home), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    code = "from mattecli.cli.app import app; app(prog_name='matte')"
    return subprocess.run(
        [sys.executable, "-c", code, option, "bash"], capture_output=True, text=True, env=env
    )


def test_show_completion_prints_the_script_for_the_shell(tmp_path) -> None:
    result = _completion_run("--show-completion", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "_MATTE_COMPLETE=complete_bash" in result.stdout and "complete " in result.stdout


def test_install_completion_writes_the_script_and_sources_it_from_bashrc(tmp_path) -> None:
    proc = _completion_run("--install-completion", tmp_path)
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / ".bash_completions" / "matte.sh"
    assert "_MATTE_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()


def _option_help(name: str, flag: str) -> str:
    option = next(p for p in command(name).params if flag in getattr(p, "opts", ()))
    return " ".join(option.help.split())


def test_init_model_config_and_export_help_say_what_they_accept() -> None:
    """Issue 24: these helps omitted kinds of input that the commands take."""
    from mattecli.modelfiles.catalog import config_names

    init = _option_help("train", "--init")
    for kind in ("built-in model name", ".safetensors", "checkpoint", "run folder", "not an .onnx"):
        assert kind in init, (kind, init)
    model_config = _option_help("train", "--model-config")
    for name in config_names():  # every config that exists, so a new one cannot go unlisted
        assert re.search(rf"\b{re.escape(name)}\b", model_config), (name, model_config)
    assert ".json file" in model_config
    export = " ".join(help_text("export").split())
    for kind in (
        "training checkpoint (.pt)",
        "run folder",
        ".safetensors weights file",
        "built-in model name",
    ):
        assert kind in export, kind
    assert ".onnx (an ONNX graph" in export and "An .onnx file cannot be exported back" in export
