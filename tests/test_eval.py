"""``matte eval``: per-image CSV, JSON summary, the region the metrics cover, saved predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.inference import Matter
from mattecli.metrics import evaluate
from mattecli.modelfiles.weights import save_weights
from mattecli.models import LateFusionNet
from mattecli.models.config import LITE

TINY = LITE.replace(name="tiny", decoder_channels=8, fusion_channels=(8, 8), fusion_image_channels=8)
NAMES = ("a", "b", "c")


def make_data(root: Path, *, trimaps: bool) -> Path:
    """Three 80 x 72 photos of a soft-edged disc, their mattes and (optionally) trimaps."""
    rng = np.random.default_rng(4)
    for folder in ("image", "alpha", *(["trimap"] if trimaps else [])):
        (root / folder).mkdir(parents=True)
    yy, xx = np.mgrid[0:72, 0:80]
    for name in NAMES:
        cx, cy = rng.uniform(30, 50), rng.uniform(28, 44)
        alpha = np.clip((20 - np.hypot(xx - cx, yy - cy)) / 6 + 0.5, 0, 1)
        image = alpha[..., None] * rng.uniform(150, 255, 3) + (1 - alpha[..., None]) * 40
        cv2.imwrite(str(root / "image" / f"{name}.jpg"), image.astype(np.uint8))
        cv2.imwrite(str(root / "alpha" / f"{name}.png"), (alpha * 255).round().astype(np.uint8))
        if trimaps:
            trimap = np.full(alpha.shape, 128, np.uint8)
            trimap[alpha < 0.01] = 0
            trimap[alpha > 0.99] = 255
            cv2.imwrite(str(root / "trimap" / f"{name}.png"), trimap)
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_weights(LateFusionNet(TINY), path, {"note": "random weights for tests"})


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def run_eval(*args: str):
    return CliRunner().invoke(app, ["eval", *args])


def test_eval_without_trimaps_scores_the_whole_image(tmp_path: Path, weights: Path) -> None:
    data = make_data(tmp_path / "data", trimaps=False)
    out = tmp_path / "out"
    result = run_eval(str(data), "--model", str(weights), "--out", str(out), "--save-pred", "-q")
    assert result.exit_code == 0, result.output
    assert "over the whole image" in result.output
    rows = read_csv(out / "per_image.csv")
    # --quiet still prints the numbers, on one line per region.
    mean_iou = np.mean([float(r["iou"]) for r in rows])
    assert "whole: sad " in result.output and f"iou {mean_iou:.3f}" in result.output
    assert [r["name"] for r in rows] == [f"data/{n}" for n in NAMES]
    assert {r["region"] for r in rows} == {"whole"}
    assert all((r["height"], r["width"]) == ("72", "80") for r in rows)

    # The numbers are the metrics of what Matter predicts, at the original resolution.
    matter = Matter(model=str(weights), device="cpu")
    rgb = cv2.cvtColor(cv2.imread(str(data / "image" / "b.jpg")), cv2.COLOR_BGR2RGB) / 255.0
    gt = cv2.imread(str(data / "alpha" / "b.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    pred = matter.predict_alpha(rgb.astype(np.float32))
    expected = evaluate(pred, gt)
    for metric in ("sad", "mse", "grad", "conn", "iou"):
        assert float(rows[1][metric]) == pytest.approx(expected[metric], rel=1e-4, abs=1e-6)

    # The saved prediction is that matte in 8 bits, at the image's size.
    saved = cv2.imread(str(out / "pred" / "data_b.png"), cv2.IMREAD_GRAYSCALE)
    assert saved.shape == (72, 80)
    assert np.abs(saved / 255.0 - pred).max() <= 0.5 / 255 + 1e-6

    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == 3 and summary["region"] == "whole"
    assert summary["sad"] == pytest.approx(np.mean([float(r["sad"]) for r in rows]), rel=1e-4)
    assert summary["model_config"] == "tiny"


def test_eval_with_tta_scores_the_averaged_matte(tmp_path: Path, tiny_weights: Path) -> None:
    data = make_data(tmp_path / "data", trimaps=False)
    out = tmp_path / "out"
    result = run_eval(
        str(data), "--model", str(tiny_weights), "--out", str(out), "--tta", "--save-pred", "-q"
    )
    assert result.exit_code == 0, result.output
    assert "mirrored TTA" in result.output
    assert json.loads((out / "summary.json").read_text())["tta"] is True
    rgb = cv2.cvtColor(cv2.imread(str(data / "image" / "a.jpg")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    gt = cv2.imread(str(data / "alpha" / "a.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    tta = Matter(model=str(tiny_weights), device="cpu", tta=True).predict_alpha(rgb)
    plain = Matter(model=str(tiny_weights), device="cpu").predict_alpha(rgb)
    saved = cv2.imread(str(out / "pred" / "data_a.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    assert np.abs(saved - tta).max() <= 0.5 / 255 + 1e-6
    assert np.abs(saved - plain).max() > 5 / 255, "the mirrored pass must change the matte"
    assert float(read_csv(out / "per_image.csv")[0]["sad"]) == pytest.approx(
        evaluate(tta, gt)["sad"], rel=1e-4
    )


def test_eval_with_trimaps_scores_the_unknown_region(tmp_path: Path, weights: Path) -> None:
    data = make_data(tmp_path / "data", trimaps=True)
    out = tmp_path / "out"
    result = run_eval(str(data), "--model", str(weights), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "unknown region of the trimaps" in result.output
    rows = read_csv(out / "per_image.csv")
    assert len(rows) == 3 and {r["region"] for r in rows} == {"unknown"}
    assert json.loads((out / "summary.json").read_text())["region"] == "unknown"
    assert not (out / "pred").exists()
    # The same matte scored over the trimap's unknown band (and not over the whole image).
    pred = Matter(model=str(weights), device="cpu").predict_alpha(
        (cv2.cvtColor(cv2.imread(str(data / "image" / "a.jpg")), cv2.COLOR_BGR2RGB) / 255.0).astype(
            np.float32
        )
    )
    gt = cv2.imread(str(data / "alpha" / "a.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    trimap = cv2.imread(str(data / "trimap" / "a.png"), cv2.IMREAD_GRAYSCALE)
    unknown, whole = evaluate(pred, gt, trimap), evaluate(pred, gt)
    assert float(rows[0]["sad"]) == pytest.approx(unknown["sad"], rel=1e-4)
    assert unknown["sad"] < whole["sad"]


def test_eval_refuses_to_overwrite_and_reports_bad_input(tmp_path: Path, weights: Path) -> None:
    data = make_data(tmp_path / "data", trimaps=False)
    out = tmp_path / "out"
    assert run_eval(str(data), "--model", str(weights), "--out", str(out), "-q").exit_code == 0
    again = run_eval(str(data), "--model", str(weights), "--out", str(out))
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert run_eval(str(data), "--model", str(weights), "--out", str(out), "--overwrite").exit_code == 0
    missing = run_eval(str(tmp_path / "nowhere"), "--model", str(weights))
    assert missing.exit_code == 1 and "nowhere" in missing.output and "Traceback" not in missing.output
    no_out = run_eval(str(data), "--model", str(weights), "--save-pred")
    assert no_out.exit_code == 2 and "--save-pred needs --out" in no_out.output


def test_piped_summary_has_no_box_drawing(tmp_path: Path, weights: Path) -> None:
    """stdout is a pipe here: the summary is plain columns that grep and awk can read, one row a region."""
    data = make_data(tmp_path / "data", trimaps=False)
    result = run_eval(str(data), "--model", str(weights))
    assert result.exit_code == 0, result.output
    assert not set("┏┃━│└┘┡╇") & set(result.stdout)
    lines = result.stdout.strip().splitlines()
    header, row = lines[-2].split(), lines[-1].split()
    assert header == ["region", "images", "SAD", "MSE", "Grad", "Conn", "IoU", "soft"]
    assert row[:2] == ["whole", "3"] and len(row) == len(header)


def test_size_mismatches_are_reported_with_both_sizes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 24: "matte, image or trimap sizes differ" gave no sizes."""
    from mattecli.evaluation import iter_eval_samples

    data = make_data(tmp_path / "data", trimaps=True)
    cv2.imwrite(str(data / "alpha" / "a.png"), np.zeros((50, 60), np.uint8))
    cv2.imwrite(str(data / "trimap" / "b.png"), np.zeros((30, 40), np.uint8))
    with caplog.at_level("WARNING", logger="mattecli.data"):
        names = [sample.name.split("/")[-1] for sample in iter_eval_samples(data, size=64)]
    assert names == ["c"]
    assert sorted(record.getMessage() for record in caplog.records) == [
        f"{data / 'alpha' / 'a.png'}: matte is 60x50 but its image is 80x72; skipped",
        f"{data / 'alpha' / 'b.png'}: trimap is 40x30 but the matte is 80x72; skipped",
    ]


def test_an_out_below_a_file_is_refused_before_scoring(tmp_path: Path) -> None:
    """--out notes.txt/results failed only when writing, after every image had been scored."""
    from mattecli.errors import MatteError
    from mattecli.evaluation import _output_files

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(MatteError, match=r"notes\.txt: is a file, not a folder"):
        _output_files(notes / "results", overwrite=False)
    with pytest.raises(MatteError, match=r"notes\.txt: --out must be a folder"):
        _output_files(notes, overwrite=True)
