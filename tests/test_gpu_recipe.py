"""weights/recipe/gpu_round5.py's loss variants (LOSS="paper crisp"): one seg run per model, then fusion and
joint per variant from it, named after the variant, with the variant's weights in each stage's run config.

No training runs here: the stages' ``matte train`` processes are replaced by a stand-in that makes the
checkpoint folder a finished run would leave (the CPU rehearsal in README-gpu.md runs the real thing).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import pytest

from mattecli.training import prepare_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("gpu_round5", REPO / "weights" / "recipe" / "gpu_round5.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_round5"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_round5"]


def arguments(tmp_path: Path, loss: list[str]) -> argparse.Namespace:
    return argparse.Namespace(
        spec=tmp_path / "train.toml", runs=tmp_path / "runs", out=tmp_path / "out", deadline=time.time() + 1000,
        models=["lite2"], loss=loss, device="cpu", batch=4, size=64, threads=None, compile=False,
        shares=[0.5, 0.15, 0.35], cycles={"seg": 2, "fusion": 1, "joint": 2},
        lr={"seg": (2e-4, 2e-3), "fusion": (2e-4, 2e-3), "joint": (2e-5, 2e-4)}, probe_steps=30, log_every=20,
        seed=0, startup=20.0, grace=25.0, reserve=30.0, min_stage=15.0,
    )  # fmt: skip


class FinishedRun:
    """Stands in for a stage's ``matte train`` process: leaves a checkpoint folder and exits 0 at once."""

    def __init__(self, command: list[str], **_) -> None:
        (Path(command[-1]) / "checkpoints").mkdir(parents=True)
        self.returncode, self.pid = 0, 0

    def poll(self) -> int:
        return 0


def test_variants_share_one_seg_run_and_carry_their_weights(recipe, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(recipe.subprocess, "Popen", FinishedRun)
    args = arguments(tmp_path, recipe.check_losses(["paper", "crisp", "paper"]))
    assert args.loss == ["paper", "crisp"]
    pipeline = recipe.Pipeline(args, "lite2", workers=1)
    assert pipeline.plan() == [
        ("seg", None, 0.5), ("fusion", "paper", 0.075), ("joint", "paper", 0.175),
        ("fusion", "crisp", 0.075), ("joint", "crisp", 0.175),
    ]  # fmt: skip
    pipeline.run()
    done = [(r.model, r.stage, r.loss, r.status) for r in pipeline.results]
    assert done == [
        ("lite2", "seg", None, "done"), ("lite2", "fusion", "paper", "done"), ("lite2", "joint", "paper", "done"),
        ("lite2-crisp", "fusion", "crisp", "done"), ("lite2-crisp", "joint", "crisp", "done"),
    ]  # fmt: skip
    runs = tmp_path / "runs"
    assert not (runs / "lite2-crisp" / "seg").exists()  # seg ran once
    configs = {
        (name, stage): prepare_config({"out": str(tmp_path / "o")}, str(runs / name / f"{stage}.toml"))
        for name, stage, _, _ in done
    }
    weights = {key: (c.fusion_hard_weight, c.joint_branch_weight) for key, c in configs.items()}
    assert weights == {
        ("lite2", "seg"): (0.1, 0.5), ("lite2", "fusion"): (0.1, 0.5), ("lite2", "joint"): (0.1, 0.5),
        ("lite2-crisp", "fusion"): (1.0, 0.1), ("lite2-crisp", "joint"): (1.0, 0.1),
    }  # fmt: skip
    inits = {key: c.init for key, c in configs.items()}
    assert inits[("lite2", "seg")] is None and configs[("lite2", "seg")].model_config == "lite2"
    assert inits[("lite2", "fusion")] == inits[("lite2-crisp", "fusion")] == str(runs / "lite2" / "seg")
    assert inits[("lite2-crisp", "joint")] == str(runs / "lite2-crisp" / "fusion")
    assert recipe.run_names(args) == ["lite2", "lite2-crisp"]


def test_a_variant_without_fusion_checkpoint_skips_only_its_joint(
    recipe, tmp_path: Path, monkeypatch
) -> None:
    class FailingPaperFusion(FinishedRun):
        def __init__(self, command: list[str], **kw) -> None:
            if Path(command[-1]) == tmp_path / "runs" / "lite2" / "fusion":
                self.returncode, self.pid = 1, 0
            else:
                super().__init__(command, **kw)

        def poll(self) -> int:
            return self.returncode

    monkeypatch.setattr(recipe.subprocess, "Popen", FailingPaperFusion)
    pipeline = recipe.Pipeline(arguments(tmp_path, ["paper", "crisp"]), "lite2", workers=1)
    pipeline.run()
    done = [(r.model, r.stage, r.status) for r in pipeline.results]
    assert done == [
        ("lite2", "seg", "done"), ("lite2", "fusion", "failed (exit 1)"),
        ("lite2-crisp", "fusion", "done"), ("lite2-crisp", "joint", "done"),
    ]  # fmt: skip


def test_unknown_loss_variant_is_one_line_naming_the_known(recipe) -> None:
    with pytest.raises(
        SystemExit, match=r"^error: LOSS: unknown loss variant sharp; choose from paper, crisp$"
    ):
        recipe.check_losses(["paper", "sharp"])
    assert (
        recipe.label("lite2-w24", "crisp") == "lite2-w24-crisp" and recipe.label("lite2", "paper") == "lite2"
    )
