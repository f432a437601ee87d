"""Tests for mattecli.data: layouts, augmentation alignment, mixtures, name lists, bad files, determinism.

Every data set is generated here in tmp_path (tiny PNGs); the tests never read the shared training data.
Images are built so that their colour encodes alpha (pairs) or so that compositing white onto black gives
alpha back (composition, cut-outs): after geometric augmentation the image must still predict the matte.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mattecli.data import (
    AugmentConfig,
    DataSpec,
    SourceSpec,
    build_dataset,
    collate,
    list_names,
    load_data_spec,
    make_split,
    read_names,
    worker_init_fn,
    write_names,
)
from mattecli.data.augment import photometric
from mattecli.data.composites import paste_cutout
from mattecli.errors import MatteError
from mattecli.transition_band import in_loss_transition

GEOMETRY = AugmentConfig().geometric_only()


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def write_grey(path: Path, grey: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), grey)
    return path


def soft_disc(height: int, width: int, radius: float, edge: float = 3.0) -> np.ndarray:
    """A disc matte with a soft edge of about 2 * edge pixels (float32 in [0, 1])."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dist = np.hypot(yy - height / 2, xx - width / 2)
    return np.clip((radius - dist) / (2 * edge) + 0.5, 0.0, 1.0).astype(np.float32)


def to_u8(alpha: np.ndarray) -> np.ndarray:
    return (alpha * 255 + 0.5).astype(np.uint8)


def make_pairs(root: Path, shapes: list[tuple[int, int]], prefix: str = "p") -> Path:
    """image/ + alpha/ where the image's red channel is alpha and its green channel is 1 - alpha."""
    for i, (h, w) in enumerate(shapes):
        alpha = to_u8(soft_disc(h, w, min(h, w) * 0.3))
        image = np.stack([alpha, 255 - alpha, np.full_like(alpha, 128)], axis=2)
        write_rgb(root / "image" / f"{prefix}{i}.png", image)
        write_grey(root / "alpha" / f"{prefix}{i}.png", alpha)
    return root


def make_backgrounds(folder: Path, colours: list[tuple[int, int, int]], shape=(80, 128)) -> Path:
    for i, colour in enumerate(colours):
        write_rgb(folder / f"bg{i}.png", np.full((*shape, 3), colour, np.uint8))
    return folder


def make_composition(root: Path, count: int = 3) -> Path:
    """fg/ (pure white) + alpha/ (soft discs) + bg/ (black): every composite equals its alpha."""
    for i in range(count):
        alpha = to_u8(soft_disc(48, 40, 14))
        write_rgb(root / "fg" / f"f{i}.png", np.full((48, 40, 3), 255, np.uint8))
        write_grey(root / "alpha" / f"f{i}.png", alpha)
    make_backgrounds(root / "bg", [(0, 0, 0)] * 2)
    return root


def make_cutouts(folder: Path, count: int = 3) -> Path:
    """White RGBA ellipses (30 x 14 px inside a transparent margin)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        yy, xx = np.mgrid[0:40, 0:24].astype(np.float32)
        inside = ((yy - 20) / 15) ** 2 + ((xx - 12) / 7) ** 2
        alpha = to_u8(np.clip((1 - inside) * 3, 0, 1))
        rgba = np.dstack([np.full((40, 24, 3), 255, np.uint8), alpha])
        assert cv2.imwrite(str(folder / f"c{i}.png"), rgba)
    return folder


def items(dataset, count: int | None = None) -> list[dict]:
    return [dataset[i] for i in range(count if count is not None else len(dataset))]


def assert_valid(item: dict, height: int, width: int) -> None:
    assert item["image"].shape == (3, height, width) and item["image"].dtype == torch.float32
    assert item["alpha"].shape == (1, height, width) and item["alpha"].dtype == torch.float32
    for key in ("image", "alpha"):
        assert 0.0 <= float(item[key].min()) and float(item[key].max()) <= 1.0
    assert isinstance(item["name"], str) and item["name"]


# ---------------------------------------------------------------- layouts and alignment


@pytest.mark.parametrize("rotation_prob", [0.0, 1.0])
def test_pairs_augmentation_keeps_image_and_alpha_aligned(tmp_path, rotation_prob):
    root = make_pairs(tmp_path / "people", [(48, 64), (64, 40), (30, 30)])
    cfg = GEOMETRY.replace(rotation_prob=rotation_prob, transition_crop_prob=0.5)
    dataset = build_dataset(root, size=32, train=True, seed=1, epoch_length=30, augment=cfg)
    assert len(dataset) == 30
    samples = items(dataset)
    for item in samples:
        assert_valid(item, 32, 32)
        alpha = item["alpha"][0]
        assert float((item["image"][0] - alpha).abs().mean()) < 0.02
        assert float((item["image"][1] - (1 - alpha)).abs().mean()) < 0.02
    # The crops really vary (positions, scales, flips): not all samples are the same picture.
    assert len({round(float(s["alpha"].mean()), 3) for s in samples}) > 10


def test_composition_composites_foreground_over_background(tmp_path):
    root = make_composition(tmp_path / "dim")
    dataset = build_dataset(root, size=32, train=True, epoch_length=12, augment=GEOMETRY)
    for item in items(dataset):
        assert_valid(item, 32, 32)
        # White over black: every channel of I = a * 1 + (1 - a) * 0 equals alpha.
        assert float((item["image"] - item["alpha"]).abs().max()) < 0.03
        assert item["name"].startswith("dim/f") and "@bg" in item["name"]
    evaluation = build_dataset(root, size=64, train=False)
    assert len(evaluation) == 3
    assert_valid(evaluation[0], 64, 64)  # 48 x 40 -> long side 64, short 53.3 -> 64


def test_cutouts_are_placed_at_a_readable_scale(tmp_path):
    folder = make_cutouts(tmp_path / "cut")
    make_backgrounds(folder / "bg", [(0, 0, 0)] * 3)
    cfg = GEOMETRY.replace(rotation_prob=0.0, cutout_bottom_cut_prob=0.0)
    dataset = build_dataset(folder, size=64, train=True, epoch_length=20, augment=cfg)
    for item in items(dataset):
        assert_valid(item, 64, 64)
        assert float((item["image"] - item["alpha"]).abs().max()) < 0.03
        rows = np.nonzero(item["alpha"][0].numpy().max(axis=1) > 0)[0]
        height = rows.max() - rows.min() + 1
        assert 0.3 * 64 - 3 <= height <= 0.9 * 64 + 3
    # Eval: the background's shape (80 x 128) sets the output: long side 64, short side 40 -> 32.
    evaluation = build_dataset(folder, size=64, train=False)
    assert len(evaluation) == 3
    assert_valid(evaluation[0], 32, 64)
    assert float(evaluation[0]["alpha"].max()) > 0.9


def test_cutout_groups_paste_several_figures_over_each_other(tmp_path):
    folder = make_cutouts(tmp_path / "cut", count=4)
    make_backgrounds(folder / "bg", [(0, 0, 0)] * 2)
    cfg = GEOMETRY.replace(rotation_prob=0.0, cutout_bottom_cut_prob=0.0, cutout_height=(0.5, 0.6))
    single = items(build_dataset(folder, size=64, train=True, epoch_length=16, augment=cfg))
    groups = items(
        build_dataset(folder, size=64, train=True, epoch_length=16, augment=cfg.replace(cutout_count=(3, 3)))
    )
    for item in groups:
        assert_valid(item, 64, 64)
        assert "+2@" in item["name"]
        # White figures over black: the composite's colour is the group's alpha wherever they overlap.
        assert float((item["image"] - item["alpha"]).abs().max()) < 0.03
    coverage = [float(np.mean([float(i["alpha"].mean()) for i in batch])) for batch in (single, groups)]
    assert coverage[1] > 1.8 * coverage[0]  # three figures of the same size cover about 2-3x one
    assert all("+" not in item["name"] for item in single)
    # Eval composites stay single figures: the validation protocol does not change.
    evaluation = build_dataset(folder, size=64, train=False, augment=cfg.replace(cutout_count=(3, 3)))
    assert "+" not in evaluation[0]["name"]


def test_paste_cutout_composites_with_the_over_operator():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:40, 0:24].astype(np.float32)
    alpha = np.clip(1.5 - np.hypot((yy - 20) / 18, (xx - 12) / 10) * 1.5, 0, 1).astype(np.float32)
    white = np.full((40, 24, 3), 255, np.uint8)
    below_colour, below_coverage = np.float32(0.2), np.float32(0.5)
    image = np.full((48, 48, 3), below_colour, np.float32)
    coverage = np.full((48, 48), below_coverage, np.float32)
    cfg = GEOMETRY.replace(rotation_prob=0.0, cutout_bottom_cut_prob=0.0)
    out_image, out_coverage = paste_cutout(white, alpha, image, coverage, rng, cfg, augment=False)
    pasted = (out_image[..., 0] - below_colour) / (1 - below_colour)  # I = a * 1 + (1 - a) * 0.2
    assert float(pasted.max()) > 0.99 and float(pasted.min()) < 0.01
    expected = pasted + (1 - pasted) * below_coverage
    assert np.allclose(out_coverage, expected, atol=1e-5)


def test_eval_is_deterministic_and_reports_trimaps(tmp_path):
    root = make_pairs(tmp_path / "bench", [(40, 64), (64, 40)])
    for name in ("p0", "p1"):
        alpha = cv2.imread(str(root / "alpha" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        trimap = np.where(alpha > 250, 255, np.where(alpha < 5, 0, 128)).astype(np.uint8)
        write_grey(root / "trimap" / f"{name}.png", trimap)
    evaluation = build_dataset(root, size=64, train=False)
    first, second = evaluation[0], evaluation[1]
    assert_valid(first, 32, 64) and assert_valid(second, 64, 32)
    assert first["trimap"].shape == (1, 32, 64)
    assert set(torch.unique(first["trimap"]).tolist()) <= {0.0, 0.5, 1.0}
    assert set(torch.unique(first["trimap"]).tolist()) >= {0.0, 1.0}
    assert torch.equal(evaluation[0]["image"], first["image"])
    training = build_dataset(root, size=32, train=True)
    assert "trimap" not in training[0]


def test_eval_composites_are_fixed_per_index(tmp_path):
    root = make_composition(tmp_path / "dim", count=4)
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 90), (200, 200, 0)]
    backgrounds = make_backgrounds(tmp_path / "bgs", colours, shape=(60, 90))
    spec = DataSpec((SourceSpec(root, kind="composition", backgrounds=backgrounds),))
    one, two = (build_dataset(spec, size=64, train=False, seed=5) for _ in range(2))
    for i in range(len(one)):
        assert one[i]["name"] == two[i]["name"] == one[i]["name"]
        assert torch.equal(one[i]["image"], two[i]["image"])
    assert len({one[i]["name"].split("@")[1] for i in range(len(one))}) >= 2


# ---------------------------------------------------------------- augmentation details


def test_transition_centred_crops_contain_transition(tmp_path):
    root = tmp_path / "ring"
    alpha = to_u8(soft_disc(96, 96, 34, edge=2.0))
    write_rgb(root / "image" / "r.png", np.dstack([alpha] * 3))
    write_grey(root / "alpha" / "r.png", alpha)

    def fraction_with_transition(probability: float) -> float:
        cfg = GEOMETRY.replace(crop_fractions=(0.2,), transition_crop_prob=probability)
        dataset = build_dataset(root, size=16, train=True, epoch_length=60, augment=cfg, seed=2)
        hits = [in_loss_transition(item["alpha"][0].numpy()).any() for item in items(dataset)]
        return float(np.mean(hits))

    assert fraction_with_transition(1.0) == 1.0
    assert fraction_with_transition(0.0) < 0.8  # uniform crops often miss the thin ring


def test_photometric_ops_change_colour_within_range():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.8, size=(24, 24, 3)).astype(np.float32)
    everything = AugmentConfig(jitter_prob=1, noise_prob=1, blur_prob=1, jpeg_prob=1)
    out = photometric(image.copy(), rng, everything)
    assert out.shape == image.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert float(np.abs(out - image).mean()) > 0.01
    nothing = everything.geometric_only()
    assert np.array_equal(photometric(image.copy(), rng, nothing), image)


def test_augment_config_rejects_bad_values():
    with pytest.raises(ValueError):
        AugmentConfig(crop_fractions=(0.0, 1.5))
    with pytest.raises(ValueError):
        AugmentConfig(flip_prob=2.0)
    with pytest.raises(ValueError):
        AugmentConfig.from_dict({"crop_fraction": [0.5]})
    with pytest.raises(ValueError):
        AugmentConfig(cutout_count=(0, 2))
    with pytest.raises(ValueError):
        AugmentConfig(cutout_count=(3, 2))
    assert AugmentConfig.from_dict({"cutout_count": [1, 3]}).cutout_count == (1, 3)


# ---------------------------------------------------------------- specs, mixtures, name lists


def test_mixture_respects_weights_and_spec_paths(tmp_path):
    make_pairs(tmp_path / "data" / "alpha_src", [(20, 20)] * 3, prefix="a")
    make_pairs(tmp_path / "data" / "beta_src", [(20, 20)] * 5, prefix="b")
    spec_file = tmp_path / "specs" / "mix.toml"
    spec_file.parent.mkdir()
    spec_file.write_text(
        "[augment]\ncrop_fractions = [1.0]\n"
        '[[source]]\nroot = "../data/alpha_src"\nweight = 3.0\n'
        '[[source]]\nkind = "pairs"\nroot = "../data/beta_src"\nweight = 1\n'
    )
    spec = load_data_spec(spec_file)
    assert spec.augment.crop_fractions == (1.0,)
    assert [s.root for s in spec.sources] == [
        (tmp_path / "data" / "alpha_src").resolve(),
        (tmp_path / "data" / "beta_src").resolve(),
    ]
    assert len(build_dataset(spec, size=8, train=True)) == 8  # default: sum of lengths
    dataset = build_dataset(spec_file, size=8, train=True, epoch_length=600, augment=GEOMETRY)
    names = [item["name"] for item in items(dataset)]
    share = np.mean([n.startswith("alpha_src/") for n in names])
    assert 0.69 < share < 0.81  # expected 0.75; binomial sd is 0.018
    assert len({n for n in names if n.startswith("beta_src/")}) == 5  # items drawn across the source
    assert len(build_dataset(spec, size=32, train=False)) == 8  # eval visits every sample once


def test_include_and_exclude_lists(tmp_path):
    root = make_pairs(tmp_path / "people", [(20, 20)] * 5)
    write_names(tmp_path / "keep.txt", ["p0", "p1.png", "p2", "missing"])
    (tmp_path / "spec.toml").write_text(
        '[[source]]\nroot = "people"\ninclude = "keep.txt"\nexclude = ["p1"]\n'
    )
    dataset = build_dataset(tmp_path / "spec.toml", size=32, train=False)
    assert sorted(item["name"] for item in items(dataset)) == ["people/p0", "people/p2"]
    spec = DataSpec((SourceSpec(root, exclude=["p0", "p1"]),))
    assert len(build_dataset(spec, size=32, train=False)) == 3
    with pytest.raises(MatteError, match="no samples left"):
        build_dataset(DataSpec((SourceSpec(root, include=["zzz"]),)), size=32, train=False)


def test_split_helpers_round_trip(tmp_path):
    names = [f"n{i}" for i in range(10)]
    train, val = make_split(names, 3, seed=4)
    assert (train, val) == make_split(reversed(names), 3, seed=4)
    assert len(val) == 3 and not set(train) & set(val) and sorted(train + val) == names
    assert make_split(names, 3, seed=5) != (train, val)
    path = write_names(tmp_path / "splits" / "val.txt", val)
    assert read_names(path) == val
    with pytest.raises(MatteError, match="already exists"):
        write_names(path, train)
    write_names(path, train, overwrite=True)
    path.write_text(path.read_text() + "\n# a comment\n  extra.jpg  \n")
    assert read_names(path) == [*train, "extra"]
    make_pairs(tmp_path / "d", [(10, 10)] * 2)
    assert list_names(tmp_path / "d" / "alpha") == ["p0", "p1"]


def test_folder_of_sources_is_detected(tmp_path):
    make_pairs(tmp_path / "people", [(20, 20)] * 2)
    make_cutouts(tmp_path / "cutouts", count=2)
    make_backgrounds(tmp_path / "backgrounds", [(0, 0, 0)])
    spec = load_data_spec(tmp_path)
    kinds = {s.root.name: s.resolved_kind for s in spec.sources}
    assert kinds == {"people": "pairs", "cutouts": "cutouts"}
    assert all(s.backgrounds == tmp_path / "backgrounds" for s in spec.sources)
    assert len(build_dataset(spec, size=32, train=False)) == 4


# ---------------------------------------------------------------- errors and bad files


def test_layout_errors_name_the_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MatteError, match=re.escape(str(empty))):
        load_data_spec(empty)
    with pytest.raises(MatteError, match="no such"):
        load_data_spec(tmp_path / "nowhere")
    root = make_pairs(tmp_path / "unmatched", [(20, 20)])
    (root / "alpha" / "p0.png").rename(root / "alpha" / "other.png")
    with pytest.raises(MatteError, match=re.escape(f"{root / 'alpha'}: no matte matches")):
        build_dataset(root, size=32, train=False)
    (root / "image" / "p0.png").unlink()
    with pytest.raises(MatteError, match=re.escape(f"{root / 'image'}: no images")):
        build_dataset(root, size=32, train=False)
    dim = make_composition(tmp_path / "dim")
    for bg in (dim / "bg").iterdir():
        bg.unlink()
    with pytest.raises(MatteError, match=re.escape(f"{dim / 'bg'}: no background images")):
        build_dataset(dim, size=32, train=True)
    (dim / "bg").rmdir()
    with pytest.raises(MatteError, match="needs backgrounds"):
        build_dataset(dim, size=32, train=True)
    spec = tmp_path / "bad.toml"
    spec.write_text('[[source]]\nroot = "dim"\nwieght = 2\n')
    with pytest.raises(MatteError, match=r"unknown keys.*wieght"):
        load_data_spec(spec)
    spec.write_text('[[source]]\nroot = "dim"\nkind = "video"\n')
    with pytest.raises(MatteError, match="unknown source kind"):
        load_data_spec(spec)
    with pytest.raises(MatteError, match="multiple of 32"):
        build_dataset(make_pairs(tmp_path / "ok", [(20, 20)]), size=50, train=False)


def test_bad_samples_are_reported_once_and_skipped(tmp_path, caplog):
    root = make_pairs(tmp_path / "people", [(24, 24)] * 5)
    corrupt = root / "alpha" / "p1.png"
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # truncated PNG
    mismatch = write_grey(root / "alpha" / "p3.png", np.zeros((10, 12), np.uint8))
    write_rgb(root / "image" / "lonely.png", np.zeros((24, 24, 3), np.uint8))  # no alpha
    with caplog.at_level(logging.WARNING, logger="mattecli.data"):
        dataset = build_dataset(root, size=32, train=False)
        names = [item["name"] for _ in range(2) for item in items(dataset)]
        training = build_dataset(root, size=16, train=True, epoch_length=20, augment=GEOMETRY)
        assert all(item["name"] in {"people/p0", "people/p2", "people/p4"} for item in items(training))
    assert set(names) == {"people/p0", "people/p2", "people/p4"}
    messages = [r.getMessage() for r in caplog.records]
    assert sum(str(corrupt) in m for m in messages) == 2  # once per data set object
    assert sum(str(mismatch) in m and "12x10" in m for m in messages) == 2
    assert any("lonely.png" in m for m in messages)

    cut = make_cutouts(tmp_path / "cut", count=1)
    write_rgb(cut / "flat.png", np.zeros((20, 10, 3), np.uint8))  # PNG without an alpha channel
    make_backgrounds(cut / "bg", [(0, 0, 0)])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mattecli.data"):
        cutouts = build_dataset(cut, size=32, train=False)
        assert [item["name"].split("@")[0] for item in items(cutouts)] == ["cut/c0", "cut/c0"]
    assert any("flat.png" in r.getMessage() and "alpha" in r.getMessage() for r in caplog.records)

    for path in (root / "alpha").iterdir():
        path.write_bytes(b"not an image")
    with pytest.raises(MatteError, match="no sample"):
        build_dataset(root, size=32, train=False)[0]


# ---------------------------------------------------------------- batching and determinism


def test_collate_stacks_tensors_and_lists_names():
    a = {
        "image": torch.zeros(3, 4, 4),
        "alpha": torch.ones(1, 4, 4),
        "name": "x",
        "trimap": torch.zeros(1, 4, 4),
    }
    b = {"image": torch.ones(3, 4, 4), "alpha": torch.zeros(1, 4, 4), "name": "y"}
    batch = collate([a, b])
    assert batch["name"] == ["x", "y"] and "trimap" not in batch
    assert batch["image"].shape == (2, 3, 4, 4) and float(batch["image"][1].mean()) == 1.0
    with pytest.raises(ValueError, match="batch_size=1"):
        collate([a, {**b, "image": torch.zeros(3, 8, 4)}])


def _mixed_spec(tmp_path: Path) -> DataSpec:
    make_pairs(tmp_path / "people", [(24, 32), (32, 24)])
    make_composition(tmp_path / "dim", count=2)
    cut = make_cutouts(tmp_path / "cut", count=2)
    make_backgrounds(cut / "bg", [(10, 20, 30), (200, 100, 0)])
    return DataSpec(
        (
            SourceSpec(tmp_path / "people", weight=2.0),
            SourceSpec(tmp_path / "dim"),
            SourceSpec(cut),
        )
    )


def _batches(dataset, workers: int, seed: int) -> list[dict]:
    loader = DataLoader(
        dataset,
        batch_size=4,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=worker_init_fn,
        generator=torch.Generator().manual_seed(seed),
    )
    return [batch for _ in range(2) for batch in loader]  # two epochs


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_gives_same_batches(tmp_path, workers):
    spec = _mixed_spec(tmp_path)

    def run(loader_seed: int, data_seed: int = 3) -> list[dict]:
        dataset = build_dataset(spec, size=16, train=True, seed=data_seed, epoch_length=8)
        return _batches(dataset, workers, loader_seed)

    # Without workers the data set's seed drives augmentation; in workers the loader's seed does too.
    first, second, other = run(0), run(0), run(1, 4)
    assert len(first) == 4
    for a, b in zip(first, second, strict=True):
        assert a["name"] == b["name"]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["alpha"], b["alpha"])
    assert any(not torch.equal(a["image"], c["image"]) for a, c in zip(first, other, strict=True))
    # The second epoch is augmented differently from the first.
    assert not torch.equal(first[0]["image"], first[2]["image"])


def test_reseed_makes_augmentation_a_function_of_the_key(tmp_path):
    dataset = build_dataset(_mixed_spec(tmp_path), size=16, train=True, seed=-3, epoch_length=8)
    dataset.reseed(11)
    first = dataset[0]
    dataset.reseed(12)
    other = dataset[0]
    dataset.reseed(11)
    again = dataset[0]
    assert first["name"] == again["name"] and torch.equal(first["image"], again["image"])
    assert not torch.equal(first["image"], other["image"])


# ---------------------------------------------------------------- packing a mixture for a remote machine


def _people_like(root: Path, count: int, shape: tuple[int, int]) -> Path:
    """image/ (JPEG q75, textured), alpha/ and fg/ like the shared people folders."""
    rng = np.random.default_rng(0)
    h, w = shape
    for i in range(count):
        alpha = to_u8(soft_disc(h, w, min(h, w) * 0.3, edge=4))
        texture = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2)
        person = np.array([200, 90, 60], np.float32)
        a = alpha[..., None] / 255.0
        image = (a * person + (1 - a) * texture).astype(np.uint8)
        (root / "image").mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(root / "image" / f"n{i}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 75])
        write_rgb(root / "fg" / f"n{i}.jpg", np.broadcast_to(person.astype(np.uint8), (h, w, 3)).copy())
        write_grey(root / "alpha" / f"n{i}.png", alpha)
    return root


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """A small recipe in the shape of weights/recipe/train_round5.toml: pairs and composites of one
    folder, cut-outs, backgrounds, and exclude lists for each (the validation names)."""
    shared = tmp_path / "shared"
    _people_like(shared / "people", 5, (150, 240))
    make_cutouts(shared / "cutouts", 3)
    make_backgrounds(shared / "backgrounds", [(10, 20, 30), (200, 10, 10), (5, 5, 5)], shape=(300, 400))
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    (recipe_dir / "val_people.txt").write_text("# held out\nn4\n")
    (recipe_dir / "val_cutouts.txt").write_text("c2\n")
    (recipe_dir / "bg_exclude.txt").write_text("bg2\n")
    spec = recipe_dir / "train.toml"
    spec.write_text(
        "[augment]\ncutout_count = [1, 2]\n\n"
        '[[source]]\nkind = "pairs"\nroot = "../shared/people"\nexclude = "val_people.txt"\nweight = 2.0\n\n'
        '[[source]]\nkind = "composition"\nroot = "../shared/people"\nbackgrounds = "../shared/backgrounds"\n'
        'exclude = "val_people.txt"\nbackgrounds_exclude = "bg_exclude.txt"\n\n'
        '[[source]]\nkind = "cutouts"\nroot = "../shared/cutouts"\nbackgrounds = "../shared/backgrounds"\n'
        'exclude = "val_cutouts.txt"\nbackgrounds_exclude = ["bg0", "bg2"]\n'
    )
    return spec


def _jpeg_quality(path: Path) -> float:
    from mattecli.data.pack import jpeg_quality

    return jpeg_quality(path)


def test_pack_holds_the_training_split_resized_without_foregrounds(recipe: Path, tmp_path: Path) -> None:
    from mattecli.data.pack import pack_training_data

    dest = tmp_path / "pack"
    summary = pack_training_data(recipe, dest, long_side=128, quality=92)
    packed = load_data_spec(summary.spec)
    assert summary.spec == dest / "train.toml" and summary.spec.is_file()
    # Only training items travel: no validation names, no excluded backgrounds, no foreground colours.
    people = dest / "data" / "people"
    assert sorted(p.name for p in (people / "image").iterdir()) == [f"n{i}.jpg" for i in range(4)]
    assert sorted(p.name for p in (people / "alpha").iterdir()) == [f"n{i}.png" for i in range(4)]
    assert not (people / "fg").exists() and summary.foregrounds == ["data/people"]
    assert sorted(p.name for p in (dest / "data" / "cutouts").iterdir()) == ["c0.png", "c1.png"]
    assert sorted(p.stem for p in (dest / "data" / "backgrounds").iterdir()) == ["bg0", "bg1"]
    # Long side at most 128, alpha the size of its image, the q75 sources re-encoded at 75 + 10.
    image = cv2.imread(str(people / "image" / "n0.jpg"))
    alpha = cv2.imread(str(people / "alpha" / "n0.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape[:2] == alpha.shape == (80, 128)
    assert _jpeg_quality(people / "image" / "n0.jpg") == pytest.approx(85, abs=1)
    assert max(cv2.imread(str(dest / "data" / "backgrounds" / "bg0.jpg")).shape[:2]) == 128
    # Each source keeps its kind, weight and name set; the lists it needs travel inside the pack.
    assert [(s.kind, s.weight) for s in packed.sources] == [
        ("pairs", 2.0),
        ("composition", 1.0),
        ("cutouts", 1.0),
    ]
    assert packed.augment.cutout_count == (1, 2)
    assert all(str(s.root).startswith(str(dest)) for s in packed.sources)
    assert summary.counts == {"pairs people": 4, "composition people": 4, "cutouts cutouts": 2}
    assert summary.bytes == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())


def test_packed_foregrounds_are_estimated_and_the_pack_matches_the_recipe(
    recipe: Path, tmp_path: Path
) -> None:
    from mattecli.data.pack import estimate_pack_foregrounds, pack_training_data
    from mattecli.data.pack_verify import verify_pack

    dest = tmp_path / "pack"
    summary = pack_training_data(recipe, dest, long_side=128)
    with pytest.raises(MatteError, match=r"fg: folder not found"):
        build_dataset(summary.spec, size=64, train=True)[0]  # composition needs fg/ first
    assert estimate_pack_foregrounds(dest, workers=1) == 4
    assert estimate_pack_foregrounds(dest, workers=1) == 0  # done already: nothing to redo
    fg = cv2.imread(str(dest / "data" / "people" / "fg" / "n0.jpg"))
    assert fg.shape[:2] == (80, 128)
    # Where alpha is 1 the foreground is the photo itself.
    image = cv2.imread(str(dest / "data" / "people" / "image" / "n0.jpg")).astype(np.float32)
    centre = (slice(30, 50), slice(54, 74))
    assert np.abs(fg[centre].astype(np.float32) - image[centre]).mean() < 3.0
    train_set = build_dataset(summary.spec, size=64, train=True)
    assert len(train_set) == len(build_dataset(recipe, size=64, train=True)) == 10
    assert_valid(train_set[3], 64, 64)
    report = verify_pack(recipe, summary.spec, size=128, samples=2)
    assert report.ok, report.problems
    assert report.counts == (10, 10)
    assert set(report.alpha_error) == {"pairs people", "composition people", "cutouts cutouts"}
    assert max(report.alpha_error.values()) < 0.02
    assert report.image_error["pairs people"] < 0.03


def test_a_resized_cut_out_is_packed_upright_as_training_reads_it(tmp_path: Path) -> None:
    """Packing decodes cut-outs with the decoder training uses (EXIF orientation applied): the packed
    PNG, which has no EXIF, is the upright picture, not the stored one turned on its side."""
    from PIL import Image

    from mattecli.data.pack import pack_training_data
    from mattecli.data.reading import read_rgba

    stored = np.zeros((60, 100, 4), np.uint8)
    stored[..., :3] = 40
    stored[:, :34, :3] = 230  # a bright left third: the top third once turned upright
    stored[..., 3] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    (tmp_path / "cut").mkdir()
    Image.fromarray(stored, "RGBA").save(tmp_path / "cut" / "c0.png", exif=exif)
    make_backgrounds(tmp_path / "bg", [(0, 0, 0)])
    spec = tmp_path / "train.toml"
    spec.write_text('[[source]]\nkind = "cutouts"\nroot = "cut"\nbackgrounds = "bg"\n')
    pack_training_data(spec, tmp_path / "pack", long_side=50, workers=1)
    upright, _ = read_rgba(tmp_path / "cut" / "c0.png")
    packed, packed_alpha = read_rgba(tmp_path / "pack" / "data" / "cut" / "c0.png")
    assert upright.shape == (100, 60, 3) and packed.shape == (50, 30, 3)
    expected = cv2.resize(upright, (30, 50), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(packed.astype(int) - expected).max() <= 1 and packed_alpha.min() == 1.0


def test_a_source_kind_is_one_class(tmp_path):
    """``make_source`` looks a spec's kind up among the Source classes: every kind a spec may name has
    one, and a new layout is one subclass that sets ``kind``."""
    from mattecli.data import sources
    from mattecli.data.source_base import SOURCE_KINDS, Reporter, Source
    from mattecli.data.spec import KINDS, SourceSpec

    assert sorted(SOURCE_KINDS) == sorted(KINDS)
    assert SOURCE_KINDS["pairs"] is sources.PairSource

    class Listed(Source):
        kind = "listed-test"

    try:
        spec = SourceSpec(root=tmp_path)
        object.__setattr__(spec, "kind", "listed-test")
        assert isinstance(sources.make_source(spec, Reporter()), Listed)
    finally:
        del SOURCE_KINDS["listed-test"]
