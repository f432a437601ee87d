"""The loss weights as run settings: ``fusion_hard_weight`` and ``joint_branch_weight`` (RunConfig, TOML,
``matte train`` flags), validated, refused on resume, passed to the losses, recorded in run.toml,
metrics.jsonl and the exported weights' provenance.

Training runs use the tiny config of test_training on 64 x 64 crops for two steps (a second or two each).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_training import TINY, make_pairs
from typer.testing import CliRunner

from mattecli import losses
from mattecli.cli.app import app
from mattecli.cli.train_options import FUSION_HARD_WEIGHT_HELP, JOINT_BRANCH_WEIGHT_HELP
from mattecli.errors import MatteError
from mattecli.modelfiles.checkpoint import list_checkpoints
from mattecli.modelfiles.weights import load_weights
from mattecli.training import RunConfig, prepare_config
from mattecli.training.run_log import read_metrics
from mattecli.training.runconfig import read_config_file


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loss_weights")
    make_pairs(root / "data")
    (root / "tiny.json").write_text(TINY.to_json())
    return root


def train_args(work: Path, out: Path, *extra: str) -> list[str]:
    """``matte train`` on the tiny data for two steps, no validation, no ImageNet download."""
    return [
        "train", str(work / "data"), "--model-config", str(work / "tiny.json"), "--no-pretrained",
        "--size", "64", "--steps", "2", "--workers", "0", "--log-every", "1", "--out", str(out), "-q", *extra,
    ]  # fmt: skip


def test_defaults_are_the_papers_weights_in_one_place() -> None:
    config = RunConfig(data="x")
    assert (config.fusion_hard_weight, config.joint_branch_weight) == (0.1, 0.5)
    assert config.fusion_hard_weight == losses.FUSION_WEIGHT_HARD
    assert config.joint_branch_weight == losses.JOINT_BRANCH_WEIGHT
    # The CLI's help states the paper's values without importing torch; they must stay the losses' own.
    assert f"The paper's value: {losses.FUSION_WEIGHT_HARD} (default)" in FUSION_HARD_WEIGHT_HELP
    assert f"The paper's value: {losses.JOINT_BRANCH_WEIGHT} (default)" in JOINT_BRANCH_WEIGHT_HELP
    assert config.validate() is config


BAD_VALUES = [
    ("fusion_hard_weight", -0.5, "--fusion-hard-weight must be a finite number > 0, got -0.5"),
    ("fusion_hard_weight", 0.0, "--fusion-hard-weight must be a finite number > 0, got 0.0"),
    ("fusion_hard_weight", math.nan, "--fusion-hard-weight must be a finite number > 0, got nan"),
    ("fusion_hard_weight", math.inf, "--fusion-hard-weight must be a finite number > 0, got inf"),
    ("fusion_hard_weight", "1", "--fusion-hard-weight must be a finite number > 0, got '1'"),
    ("joint_branch_weight", -1.0, "--joint-branch-weight must be a finite number >= 0, got -1.0"),
    ("joint_branch_weight", math.nan, "--joint-branch-weight must be a finite number >= 0, got nan"),
    ("joint_branch_weight", True, "--joint-branch-weight must be a finite number >= 0, got True"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES)
def test_bad_loss_weights_are_refused_naming_the_setting(name: str, value, message: str) -> None:
    with pytest.raises(MatteError) as caught:
        RunConfig(data="x", **{name: value}).validate()
    assert str(caught.value) == message
    RunConfig(data="x", joint_branch_weight=0.0, fusion_hard_weight=3.0).validate()  # both fine


def test_loss_weights_are_toml_settings(work: Path, tmp_path: Path) -> None:
    good = tmp_path / "crisp.toml"
    good.write_text(
        f'data = "{work / "data"}"\n[train]\nfusion-hard-weight = 1.0\njoint_branch_weight = 0.1\n'
    )
    config = prepare_config({}, str(good))
    assert (config.fusion_hard_weight, config.joint_branch_weight) == (1.0, 0.1)
    flags = prepare_config({"joint_branch_weight": 0.02}, str(good))  # a flag overrides the file
    assert (flags.fusion_hard_weight, flags.joint_branch_weight) == (1.0, 0.02)
    bad = tmp_path / "bad.toml"
    bad.write_text(f'data = "{work / "data"}"\nfusion_hard_weight = nan\n')
    with pytest.raises(MatteError, match=r"^--fusion-hard-weight must be a finite number > 0, got nan$"):
        prepare_config({}, str(bad))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--fusion-hard-weight", "0"], "--fusion-hard-weight must be a finite number > 0, got 0.0"),
        (["--fusion-hard-weight", "-1"], "--fusion-hard-weight must be a finite number > 0, got -1.0"),
        (["--fusion-hard-weight=nan"], "--fusion-hard-weight must be a finite number > 0, got nan"),
        (["--joint-branch-weight", "-0.1"], "--joint-branch-weight must be a finite number >= 0, got -0.1"),
        (["--joint-branch-weight", "inf"], "--joint-branch-weight must be a finite number >= 0, got inf"),
    ],
)
def test_cli_refuses_bad_loss_weights_in_one_line(work: Path, tmp_path: Path, flags, message) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, train_args(work, out, *flags))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()


def test_the_run_passes_its_weights_to_the_stage_loss(work: Path, tmp_path: Path, monkeypatch) -> None:
    from mattecli.training import step

    seen: list[dict] = []

    def recording(stage, out, alpha, **kw):
        seen.append({"stage": stage, **kw})
        return losses.stage_loss(stage, out, alpha, **kw)

    monkeypatch.setattr(step, "stage_loss", recording)
    args = train_args(work, tmp_path / "r", "--stage", "fusion", "--fusion-hard-weight", "0.7")
    result = CliRunner().invoke(app, [*args, "--joint-branch-weight", "0.25"])
    assert result.exit_code == 0, result.output
    assert seen and all(
        s
        == {"stage": "fusion", "authors_extras": True, "fusion_hard_weight": 0.7, "joint_branch_weight": 0.25}
        for s in seen
    )


def test_a_crisp_joint_run_records_its_weights_and_resuming_keeps_them(work: Path, tmp_path: Path) -> None:
    run = tmp_path / "crisp"
    flags = [
        "--stage",
        "joint",
        "--fusion-hard-weight",
        "1.0",
        "--joint-branch-weight",
        "0",
        "--ckpt-every",
        "1",
    ]
    result = CliRunner().invoke(app, train_args(work, run, *flags))
    assert result.exit_code == 0, result.output
    saved = read_config_file(run / "run.toml")
    assert (saved["fusion_hard_weight"], saved["joint_branch_weight"]) == (1.0, 0.0)
    records = read_metrics(run / "metrics.jsonl")
    start = next(r for r in records if r.get("event") == "start")
    assert (start["config"]["fusion_hard_weight"], start["config"]["joint_branch_weight"]) == (1.0, 0.0)
    # Branch weight 0: the joint stage's loss is L_u and the extras only.
    train_records = [r for r in records if r["type"] == "train"]
    assert len(train_records) == 2
    assert all(
        "fusion" in r and "sparsity" in r and "fg_ce" not in r and "bg_d" not in r for r in train_records
    )
    # The exported weights carry the run's configuration in their provenance.
    weights = tmp_path / "crisp.safetensors"
    assert CliRunner().invoke(app, ["export", str(run), "-o", str(weights)]).exit_code == 0
    provenance = load_weights(weights).provenance
    assert provenance["run_config"]["fusion_hard_weight"] == 1.0
    assert provenance["run_config"]["joint_branch_weight"] == 0.0
    # Resuming refuses another weight (it changes what a step computes) and accepts the same one.
    for key, value, used in (("fusion_hard_weight", 0.1, "1.0"), ("joint_branch_weight", 0.5, "0.0")):
        flag = "--" + key.replace("_", "-")
        with pytest.raises(MatteError, match=f"{flag} cannot change when resuming \\(the run used {used}\\)"):
            prepare_config({"resume": str(run), key: value})
    same = prepare_config({"resume": str(run), "fusion_hard_weight": 1.0, "steps": 3})
    assert (same.fusion_hard_weight, same.joint_branch_weight, same.steps) == (1.0, 0.0, 3)
    refused = CliRunner().invoke(app, ["train", "--resume", str(run), "--joint-branch-weight", "0.5"])
    assert refused.exit_code == 1 and "--joint-branch-weight cannot change when resuming" in refused.output
    assert "Traceback" not in refused.output
    assert [step for step, _ in list_checkpoints(run)][-1] == 2


def test_a_run_without_the_flags_uses_and_records_the_papers_weights(work: Path, tmp_path: Path) -> None:
    run = tmp_path / "paper"
    result = CliRunner().invoke(app, train_args(work, run, "--stage", "joint"))
    assert result.exit_code == 0, result.output
    saved = read_config_file(run / "run.toml")
    assert (saved["fusion_hard_weight"], saved["joint_branch_weight"]) == (0.1, 0.5)
    train_records = [r for r in read_metrics(run / "metrics.jsonl") if r["type"] == "train"]
    assert all({"fusion", "fg_ce", "fg_d", "bg_ce", "bg_d"} <= set(r) for r in train_records)
    assert torch.isfinite(torch.tensor([r["loss"] for r in train_records])).all()
