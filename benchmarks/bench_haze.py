"""Where the haze of a matte comes from (issue 13, item 4): measurements on the held-out people photos.

Haze is the share of half-transparent pixels (0.02 < alpha < 0.98, :func:`mattecli.metrics.soft_share`).
The photos are weights/recipe/val_people.txt (30, never trained on), read and scored as ``matte eval`` reads
and scores them: whole image, full resolution, the model's default working size, no TTA; means over photos.
Sections (``--sections``, all by default):

* ``gt``: the ground truth's own soft share, overall and per photo, and the width of its transition band.
* ``decomp``: at the network's working resolution, the soft share of F, of 1 - B, of beta and of alpha; each
  hazy pixel of alpha attributed to its source (both branches crisp but opposite, so alpha = beta is grey; F
  soft; 1 - B soft; both soft) and placed relative to the ground truth's edge (a distance transform of the
  0.5 contour): inside the GT's own transition band (legitimate) or beyond it, on the person or the
  background side. Counterfactuals: alpha with beta made 0/1, with F and B made 0/1.
* ``res``: soft share at working size vs after the resize back, with and without ``refine``, at several
  ``--max-size`` values; the share a crisp working-size edge gets from the bilinear resize alone.
* ``history``: every shipped round (``--model NAME=PATH`` several times, or ``--history``, which extracts
  rounds 1-4 from git and rebuilds round 4's un-averaged GPU run as 2 * round4 - round3).
* ``loss``: mean predicted alpha where the GT is exactly 0 or 1, by distance to the edge; calibration of
  the soft predictions; how the fusion loss weights the hazy pixels.
* ``fix``: inference-side prototypes (guided upsampling of the working-size matte), before/after.

    python benchmarks/bench_haze.py --data ../shared/data                 # bundled model, all sections
    python benchmarks/bench_haze.py --data ../shared/data --history --sections history
    python benchmarks/bench_haze.py --data ../shared/data --model r4=weights/lite.safetensors --json out.json

Uses one torch thread (the machine is shared). Only reads ``--data``; writes nothing but ``--json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
NAMES = REPO / "weights" / "recipe" / "val_people.txt"
LOW, HIGH = 0.02, 0.98
#: Rounds of the bundled model in git history (commit that shipped each), oldest first.
ROUNDS = (
    ("round1", "bf98d7f"),
    ("round2", "dddabb7"),
    ("round3-stage8", "8a1d383"),
    ("round3", "eb458aa"),
    ("round4", "4a810e2"),
)
SECTIONS = ("gt", "decomp", "res", "history", "loss", "fix")
#: Distance bins (pixels from the GT's 0.5 contour) for where the haze lies.
DIST_BINS = (0, 2, 4, 8, 16, 32, np.inf)


def soft(a: np.ndarray) -> np.ndarray:
    return (a > LOW) & (a < HIGH)


@dataclass
class Photo:
    """One held-out photo with its labels and the geometry of its GT edge."""

    name: str
    rgb: np.ndarray  # H x W x 3 float32 in [0, 1], as matte eval reads it
    alpha: np.ndarray  # soft GT alpha, H x W float32
    mask: np.ndarray  # the dataset's binary mask, H x W float32
    sdist: np.ndarray  # signed distance (px) to the GT's 0.5 contour: > 0 on the person, < 0 outside
    band: float  # half-width of the GT's own transition band (95th percentile of |sdist| over GT-soft pixels)


def signed_distance(alpha: np.ndarray) -> np.ndarray:
    """Distance of each pixel to the nearest pixel on the other side of alpha = 0.5 (>= 1), signed."""
    import cv2

    inside = (alpha >= 0.5).astype(np.uint8)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    return np.where(inside > 0, d_in, -d_out).astype(np.float32)


def load_photos(data: Path, names_file: Path) -> list[Photo]:
    from mattecli.data.reading import read_alpha, read_rgb

    photos = []
    for name in names_file.read_text().split():
        rgb = read_rgb(data / "people" / "image" / f"{name}.jpg").astype(np.float32) / 255.0
        alpha = read_alpha(data / "people" / "alpha" / f"{name}.png")
        mask = read_alpha(data / "people" / "mask" / f"{name}.png")
        sd = signed_distance(alpha)
        gt_soft = soft(alpha)
        band = float(np.percentile(np.abs(sd[gt_soft]), 95)) if gt_soft.any() else 1.0
        photos.append(Photo(name, rgb, alpha, mask, sd, band))
    return photos


# ------------------------------------------------------------------------------------------ the network


def make_matter(model: str, max_size: int | None = None, refine: bool | None = None, tta: bool = False):
    from mattecli.inference import Matter

    return Matter(model=model, device="cpu", max_size=max_size, refine=refine, tta=tta)


def net_maps(matter, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """F, 1 - B, beta and alpha at working size, computed exactly as the global pass computes alpha."""
    import torch

    from mattecli.inference import _resize, working_size

    h, w = working_size(*rgb.shape[:2], matter.max_size)
    small = np.empty((1, h, w, 3), np.float32)
    for c in range(3):
        small[0, :, :, c] = _resize(np.ascontiguousarray(rgb[:, :, c]), h, w)
    batch = torch.from_numpy(small).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = matter.net(batch)
    grab = lambda t: t.float()[0, 0].numpy().copy()  # noqa: E731
    return {
        "F": grab(out.foreground),
        "nB": 1.0 - grab(out.background),
        "beta": grab(out.beta),
        "alpha": np.clip(grab(out.alpha), 0.0, 1.0),
    }


def upsample(small: np.ndarray, photo: Photo) -> np.ndarray:
    from mattecli.inference import _resize

    return _resize(small, *photo.alpha.shape)


def scores(pred: np.ndarray, photo: Photo) -> dict[str, float]:
    """matte eval's numbers for one photo (soft alpha: IoU, MSE, SAD; binary mask: IoU) and the soft share."""
    from mattecli.metrics import iou, mse, sad, soft_share

    return {
        "iou": iou(pred, photo.alpha),
        "mask_iou": iou(pred, photo.mask),
        "mse": mse(pred, photo.alpha),
        "sad": sad(pred, photo.alpha),
        "soft": soft_share(pred),
    }


def mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def fmt_scores(s: dict[str, float]) -> str:
    return (
        f"IoU {s['iou']:.3f}  mask IoU {s['mask_iou']:.3f}  MSE {s['mse']:.4f}  SAD {s['sad']:5.2f}  "
        f"soft {100 * s['soft']:5.1f} %"
    )


# ------------------------------------------------------------------------------------------ sections


def section_gt(photos: list[Photo]) -> dict:
    """The ground truth's own soft share and band width."""
    print("\n== 1. ground truth: its own soft share (0.02 < alpha < 0.98)")
    rows = []
    for p in photos:
        tails = ((p.alpha > LOW) & (p.alpha <= 0.05)) | ((p.alpha >= 0.95) & (p.alpha < HIGH))
        rows.append(
            {
                "name": p.name,
                "size": f"{p.alpha.shape[1]}x{p.alpha.shape[0]}",
                "soft": float(soft(p.alpha).mean()),
                "tails": float(tails.mean()),
                "band": p.band,
            }
        )
        print(
            f"  {p.name:>4} {rows[-1]['size']:>9}  GT soft {100 * rows[-1]['soft']:5.1f} %  "
            f"band half-width {p.band:4.1f} px"
        )
    shares = np.array([r["soft"] for r in rows])
    pooled = sum(soft(p.alpha).sum() for p in photos) / sum(p.alpha.size for p in photos)
    tails = np.mean([r["tails"] for r in rows])
    print(
        f"  mean over photos {100 * shares.mean():.2f} %, median {100 * np.median(shares):.2f} %, "
        f"pooled over pixels {100 * pooled:.2f} %; of which in 0.02-0.05 or 0.95-0.98 (hard for the loss, "
        f"soft for the metric) {100 * tails:.2f} %; band half-width median "
        f"{np.median([p.band for p in photos]):.1f} px"
    )
    return {"per_photo": rows, "mean": float(shares.mean()), "pooled": float(pooled), "tails": float(tails)}


def _location(sd: np.ndarray, gt: np.ndarray, band: float) -> dict[str, np.ndarray]:
    """Disjoint pixel classes relative to the GT edge."""
    gt_soft = soft(gt)
    hard = ~gt_soft
    far = np.abs(sd) > band
    return {
        "GT soft": gt_soft,
        "GT hard, inside GT band": hard & ~far,
        "beyond band, person side": hard & far & (sd > 0),
        "beyond band, background side": hard & far & (sd < 0),
    }


def _sources(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Disjoint causes of a soft alpha pixel at working size."""
    f_soft, b_soft = soft(m["F"]), soft(m["nB"])
    return {
        "F and 1-B crisp, opposite (alpha = beta)": ~f_soft & ~b_soft & (np.abs(m["F"] - m["nB"]) > 0.5),
        "F soft, 1-B crisp": f_soft & ~b_soft,
        "1-B soft, F crisp": ~f_soft & b_soft,
        "both soft": f_soft & b_soft,
    }


def edge_width(matte: np.ndarray, sd: np.ndarray, reach: int = 32) -> float:
    """10-90 % width (px) of the median edge profile: the median of ``matte`` at each signed distance from the
    GT's 0.5 contour (1 px bins), then the distance between where it crosses 0.1 and 0.9. Medians keep a
    missed limb from widening the profile of the rest of the edge."""
    centres, values = [], []
    for d in range(-reach, reach + 1):
        sel = (sd >= d - 0.5) & (sd < d + 0.5)
        if sel.any():
            centres.append(float(d))
            values.append(float(np.median(matte[sel])))
    c, v = np.array(centres), np.maximum.accumulate(np.array(values))  # monotone envelope
    return float(np.interp(0.9, v, c) - np.interp(0.1, v, c)) if v[0] < 0.1 < 0.9 < v[-1] else float("nan")


def decompose(matter, photos: list[Photo]) -> dict:
    """Working-size decomposition of the haze: shares are means over photos of per-photo pixel shares, so
    each table's rows add up to the mean soft share of alpha (in percentage points)."""
    from mattecli.inference import _resize

    acc: dict[str, list[float]] = {}
    per_photo: list[dict] = []

    def add(key: str, value: float) -> None:
        acc.setdefault(key, []).append(float(value))

    for p in photos:
        m = net_maps(matter, p.rgb)
        h, w = m["alpha"].shape
        k = p.alpha.shape[0] / h
        gt = _resize(p.alpha, h, w)
        sd = signed_distance(gt)
        haze = soft(m["alpha"])
        disagree = np.abs(m["F"] - m["nB"]) > 0.5
        add("soft F", soft(m["F"]).mean())
        add("soft 1-B", soft(m["nB"]).mean())
        add("soft beta (all pixels)", soft(m["beta"]).mean())
        add("branches disagree (|F - (1-B)| > 0.5)", disagree.mean())
        add("soft beta where branches disagree", (soft(m["beta"]) & disagree).mean())
        add("soft alpha", haze.mean())
        add("soft GT (at working size)", soft(gt).mean())
        for name, cls in _sources(m).items():
            add(f"src: {name}", (haze & cls).mean())
        for name, cls in _location(sd, gt, max(1.0, p.band / k)).items():
            add(f"loc: {name}", (haze & cls).mean())
            add(f"gtloc: {name}", (soft(gt) & cls).mean())
        far = _location(sd, gt, max(1.0, p.band / k))
        far_any = far["beyond band, person side"] | far["beyond band, background side"]
        for name, cls in _sources(m).items():
            add(f"far src: {name}", (haze & far_any & cls).mean())
        hard_beta = np.where(m["beta"] >= 0.5, m["F"], m["nB"])
        add("cf: beta made 0/1", soft(hard_beta).mean())
        crisp_branches = m["beta"] * (m["F"] >= 0.5) + (1 - m["beta"]) * (m["nB"] >= 0.5)
        add("cf: F and B made 0/1 (beta kept)", soft(crisp_branches).mean())
        add("cf: alpha = F", soft(m["F"]).mean())
        add("cf: alpha = 1-B", soft(m["nB"]).mean())
        full = upsample(m["alpha"], p)
        widths = (edge_width(p.alpha, p.sdist), edge_width(full, p.sdist))
        add("edge: GT 10-90 width (full-res px)", widths[0])
        add("edge: prediction 10-90 width (full-res px)", widths[1])
        add("edge: prediction 10-90 width (working px)", widths[1] / k)
        beyond = haze & (np.abs(sd) > max(1.0, p.band / k)) & ~soft(gt)
        per_photo.append(
            {
                "name": p.name,
                "scale": round(k, 2),
                "soft": float(haze.mean()),
                "soft_gt": float(soft(gt).mean()),
                "beyond_person": float((beyond & (sd > 0)).mean()),
                "beyond_background": float((beyond & (sd < 0)).mean()),
                "iou": scores(full, p)["iou"],
                "gt_width": widths[0],
                "width": widths[1],
            }
        )
        for lo, hi in itertools.pairwise(DIST_BINS):
            ring = (np.abs(sd) * k > lo) & (np.abs(sd) * k <= hi) & ~soft(gt)
            add(f"dist: {lo}-{hi} px (full-res px, GT hard)", (haze & ring).mean())
    means = {key: float(np.nanmedian(v) if key.startswith("edge") else np.mean(v)) for key, v in acc.items()}
    return {**means, "per_photo": per_photo}


def print_decomp(d: dict, title: str) -> None:
    print(f"\n== 2. decomposition at working size: {title} (percent of pixels, mean over photos)")
    for key in (
        "soft GT (at working size)",
        "soft alpha",
        "soft F",
        "soft 1-B",
        "soft beta (all pixels)",
        "branches disagree (|F - (1-B)| > 0.5)",
        "soft beta where branches disagree",
    ):
        print(f"  {key:<48} {100 * d[key]:6.2f}")
    for prefix, head in (
        ("src: ", "hazy alpha pixels by source"),
        ("loc: ", "hazy alpha pixels by place (band = the GT's own band half-width)"),
        ("far src: ", "hazy pixels beyond the GT band, by source"),
        ("dist: ", "hazy pixels where the GT is hard, by distance to the GT edge"),
        ("cf: ", "counterfactual soft share"),
    ):
        print(f"  {head}:")
        for key, value in d.items():
            if key.startswith(prefix):
                share = f"   ({100 * value / d['soft alpha']:4.1f} % of the haze)" if prefix != "cf: " else ""
                print(f"    {key[len(prefix) :]:<46} {100 * value:6.2f}{share}")
    print("  the GT's own soft pixels by place:")
    for key, value in d.items():
        if key.startswith("gtloc: "):
            print(f"    {key[7:]:<46} {100 * value:6.2f}")
    print("  edge profile (median over photos):")
    for key, value in d.items():
        if key.startswith("edge: "):
            print(f"    {key[6:]:<46} {value:6.1f}")
    rows = sorted(d["per_photo"], key=lambda r: r["soft"] - r["soft_gt"], reverse=True)
    excess = sum(r["soft"] - r["soft_gt"] for r in rows)
    print("  per photo, by excess haze (soft alpha - soft GT, working size), percent of the photo's pixels:")
    running = 0.0
    for r in rows:
        running += r["soft"] - r["soft_gt"]
        print(
            f"    {r['name']:>4} x{r['scale']:<4} IoU {r['iou']:.3f}  soft {100 * r['soft']:5.1f} (GT {100 * r['soft_gt']:4.1f})"
            f"  beyond band: person {100 * r['beyond_person']:5.1f}, background {100 * r['beyond_background']:4.1f}"
            f"  edge width GT {r['gt_width']:4.1f} pred {r['width']:4.1f} px  cumulative {100 * running / excess:5.1f} %"
        )


def section_res(model: str, photos: list[Photo], sizes: list[int]) -> dict:
    """Soft share at working size vs full size, refine off/on, several working sizes."""
    from mattecli.inference import _resize

    print("\n== 3. resolution: working size vs full size, refinement, --max-size")
    result = {}
    for size in sizes:
        for refine in (None, True):
            matter = make_matter(model, size, refine)
            rows, small_soft, band_soft = [], [], []
            for p in photos:
                m = net_maps(matter, p.rgb)
                small_soft.append(soft(m["alpha"]).mean())
                # A crisp edge (the working-size alpha thresholded at 0.5) resized back like the matte.
                band_soft.append(soft(upsample((m["alpha"] >= 0.5).astype(np.float32), p)).mean())
                rows.append(scores(matter.predict_alpha(p.rgb), p))
            s = mean_rows(rows)
            label = f"max-size {size:4d} refine {'auto' if refine is None else 'on  '}"
            print(
                f"  {label}: {fmt_scores(s)}  | soft at working size {100 * np.mean(small_soft):5.1f} %,"
                f" crisp edge resized back {100 * np.mean(band_soft):4.1f} %"
            )
            result[label] = {
                **s,
                "soft_working": float(np.mean(small_soft)),
                "band": float(np.mean(band_soft)),
            }
    tta_matter = make_matter(model, tta=True)
    tta = mean_rows([scores(tta_matter.predict_alpha(p.rgb), p) for p in photos])
    print(f"  default size with --tta (mirrored pass averaged in): {fmt_scores(tta)}")
    result["tta"] = tta
    gt_round = []
    for p in photos:
        from mattecli.inference import working_size

        h, w = working_size(*p.alpha.shape, 512)
        gt_round.append(soft(_resize(_resize(p.alpha, h, w), *p.alpha.shape)).mean())
    print(f"  the GT itself shrunk to 512 px and resized back: soft {100 * np.mean(gt_round):.1f} %")
    result["gt_round_trip_512"] = float(np.mean(gt_round))
    return result


def section_history(models: dict[str, str], photos: list[Photo]) -> dict:
    print("\n== 4. training history: every round on the same photos (default settings)")
    out = {}
    for name, path in models.items():
        matter = make_matter(path)
        rows = [scores(matter.predict_alpha(p.rgb), p) for p in photos]
        s = mean_rows(rows)
        d = decompose(matter, photos)
        far = d["loc: beyond band, person side"] + d["loc: beyond band, background side"]
        print(
            f"  {name:<14} {fmt_scores(s)}  | working: F {100 * d['soft F']:4.1f}, 1-B {100 * d['soft 1-B']:4.1f},"
            f" alpha {100 * d['soft alpha']:4.1f}, beyond GT band {100 * far:4.1f} %,"
            f" alpha=beta {100 * d['src: F and 1-B crisp, opposite (alpha = beta)']:4.1f} %,"
            f" edge 10-90 {d['edge: prediction 10-90 width (full-res px)']:4.1f} px"
        )
        out[name] = {"scores": s, "decomp": d, "per_photo_soft": [r["soft"] for r in rows]}
    return out


def section_loss(matter, photos: list[Photo]) -> dict:
    """What the loss sees: alpha where the GT is exactly 0/1, calibration, fusion-loss weight of haze."""
    from mattecli.inference import _resize

    print("\n== 5. loss side")
    bins = DIST_BINS
    sums = {side: np.zeros((4, len(bins) - 1)) for side in ("GT = 0", "GT = 1")}
    calib_edges = np.array([LOW, 0.2, 0.4, 0.6, 0.8, HIGH])
    calib = {k: np.zeros((len(calib_edges) - 1, 3)) for k in ("alpha", "F", "1-B")}
    lu = np.zeros(4)
    for p in photos:
        m = net_maps(matter, p.rgb)
        full = {k: np.clip(upsample(v, p), 0, 1) for k, v in m.items()}
        dist = np.abs(p.sdist)
        for side, value in (("GT = 0", 0.0), ("GT = 1", 1.0)):
            exact = p.alpha == value
            for j, (lo, hi) in enumerate(itertools.pairwise(bins)):
                sel = exact & (dist > lo) & (dist <= hi)
                sums[side][0, j] += sel.sum()
                sums[side][1, j] += full["alpha"][sel].sum()
                sums[side][2, j] += soft(full["alpha"][sel]).sum()
                sums[side][3, j] += np.abs(full["alpha"][sel] - value).sum()
        hard_far = ~soft(p.alpha) & (dist > p.band)
        for key, src in (("alpha", "alpha"), ("F", "F"), ("1-B", "nB")):
            values, fg = full[src][hard_far], p.alpha[hard_far] >= 0.5
            for j in range(len(calib_edges) - 1):
                sel = (values > calib_edges[j]) & (values <= calib_edges[j + 1])
                calib[key][j] += (sel.sum(), fg[sel].sum(), values[sel].sum())
        # Fusion loss L_u at working size against the resized GT (0.05/0.95 transition, weights 1 / 0.1).
        h, w = m["alpha"].shape
        gt = _resize(p.alpha, h, w)
        transition = (gt > 0.05) & (gt < 0.95)
        err = np.abs(m["alpha"] - gt)
        weight = np.where(transition, 1.0, 0.1)
        hazy_hard = soft(m["alpha"]) & ~transition
        lu += (
            (weight * err)[transition].sum() / weight.sum(),
            (weight * err)[hazy_hard].sum() / weight.sum(),
            err[hazy_hard].sum() / (transition.sum() + (~transition).sum()),
            err[transition].sum() / gt.size,
        )
    out: dict = {"exact": {}, "calibration": {}}
    print("  predicted alpha (full size) where the GT is exactly 0 or 1, by distance to the GT edge:")
    print("    " + " ".join(f"{f'{lo}-{hi}px':>14}" for lo, hi in itertools.pairwise(bins)))
    for side, s in sums.items():
        n = np.maximum(s[0], 1)
        print(f"    {side}: pixels " + " ".join(f"{int(c):>10}" for c in s[0]))
        print(f"    {side}: mean alpha " + " ".join(f"{v:8.3f}" for v in s[1] / n))
        print(f"    {side}: soft share " + " ".join(f"{100 * v:7.1f}%" for v in s[2] / n))
        print(f"    {side}: |error| sum share " + " ".join(f"{100 * v:6.1f}%" for v in s[3] / s[3].sum()))
        out["exact"][side] = {
            "pixels": s[0].tolist(),
            "mean": (s[1] / n).tolist(),
            "soft": (s[2] / n).tolist(),
        }
    print("  calibration on GT-hard pixels beyond the GT band (full size): prediction bin -> share of")
    print("  those pixels, P(GT is the person), mean prediction")
    for key, table in calib.items():
        cells = []
        for j in range(len(calib_edges) - 1):
            n, fg, _ = table[j]
            cells.append(
                f"{calib_edges[j]:.2f}-{calib_edges[j + 1]:.2f}: n {int(n):6d} P {fg / max(n, 1):.2f}"
            )
        print(f"    {key:<5} " + " | ".join(cells))
        means = " ".join(f"{t[2] / max(t[0], 1):.2f}" for t in table)
        print(f"          mean prediction per bin: {means}")
        out["calibration"][key] = table.tolist()
    lu /= len(photos)
    print(
        f"  fusion loss L_u at working size (weights 1 transition / 0.1 hard): {lu[0] + lu[1]:.4f} from all "
        f"transition pixels + hazy hard pixels; hazy hard pixels' part {100 * lu[1] / (lu[0] + lu[1]):.1f} %. "
        f"Unweighted mean |error| of hazy hard pixels {lu[2]:.4f} vs transition pixels {lu[3]:.4f}"
    )
    out["lu"] = lu.tolist()
    out["optima"] = print_loss_optima()
    return out


def loss_optimum(q: float, stage: str, **patch: float) -> float:
    """The prediction that minimises a stage loss (mattecli.losses, unchanged code) on pixels the network
    cannot tell apart, of which a share ``q`` is the person (GT 1) and the rest background (GT 0).

    The crop: 10 % transition pixels (GT 0.5, predicted exactly, both branches at 1 as the CE targets ask) and
    90 % such uncertain hard pixels, all predicted at one value s (F = 1 - B = alpha = s, every side output
    alike). ``patch`` overrides module constants of mattecli.losses (e.g. FUSION_WEIGHT_HARD=1.0) for this
    call. Where the minimiser is q, the loss teaches grey wherever the network is unsure; where it is 0 or
    1, the loss teaches a crisp guess.
    """
    import torch

    import mattecli.losses as losses
    from mattecli.models import LateFusionOutput

    side = 40
    gt = torch.zeros(1, 1, side, side)
    transition_rows = side // 10
    gt[..., :transition_rows, :] = 0.5
    hard = torch.arange(side * (side - transition_rows))
    person = (hard < round(q * hard.numel())).float().view(side - transition_rows, side)
    gt[0, 0, transition_rows:] = person
    saved = {k: getattr(losses, k) for k in patch}
    best = (float("inf"), 0.0)
    try:
        for k, v in patch.items():
            setattr(losses, k, v)
        for s in np.linspace(0.001, 0.999, 499):
            pred = torch.full_like(gt, float(s))
            pred[..., :transition_rows, :] = 0.5
            fg = pred.clone()
            bg = 1.0 - pred
            fg[..., :transition_rows, :], bg[..., :transition_rows, :] = 1.0, 1.0
            out = LateFusionOutput(pred, fg, bg, torch.full_like(gt, 0.5), (fg,) * 4, (bg,) * 4)
            value = float(losses.stage_loss(stage, out, gt).total)
            best = min(best, (value, float(s)))
    finally:
        for k, v in saved.items():
            setattr(losses, k, v)
    return best[1]


def print_loss_optima() -> dict:
    """Minimisers of each stage loss and of variants, for several q."""
    variants = {
        "seg (CE + L_d + L_g, 4 sides x 2 branches)": ("seg", {}),
        "fusion (L_u + L_g(alpha) + 0.01 sparsity)": ("fusion", {}),
        "joint (L_u + 0.5 x branches' CE + L_d)": ("joint", {}),
        "joint, L_u hard weight 0.1 -> 1.0": ("joint", {"FUSION_WEIGHT_HARD": 1.0}),
        "joint, branch weight 0.5 -> 0.1": ("joint", {"JOINT_BRANCH_WEIGHT": 0.1}),
        "joint, sparsity weight 0.01 -> 0.5": ("joint", {"SPARSITY_WEIGHT": 0.5}),
        "joint, L_u hard 1.0 and branch weight 0.1": (
            "joint",
            {"FUSION_WEIGHT_HARD": 1.0, "JOINT_BRANCH_WEIGHT": 0.1},
        ),
        "joint, L_u hard 1.0 and branch weight 0.02": (
            "joint",
            {"FUSION_WEIGHT_HARD": 1.0, "JOINT_BRANCH_WEIGHT": 0.02},
        ),
        "joint, branch weight 0 (L_u + extras only)": ("joint", {"JOINT_BRANCH_WEIGHT": 0.0}),
    }
    qs = (0.6, 0.7, 0.8, 0.9)
    print(
        "  the loss-optimal prediction for pixels that are the person with probability q (mattecli.losses):"
    )
    print("    " + " " * 44 + "".join(f"  q={q:.1f}" for q in qs))
    out = {}
    for name, (stage, patch) in variants.items():
        optima = [loss_optimum(q, stage, **patch) for q in qs]
        print(f"    {name:<44}" + "".join(f"  {o:5.3f}" for o in optima))
        out[name] = optima
    return out


def guided_upsample(small: np.ndarray, rgb: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Fast guided filter (He & Sun 2015): the linear model alpha = a * I + b fitted at working size with the
    grey working-size image as the guide, the coefficients resized, applied to the full-size grey image."""
    import cv2

    from mattecli.inference import _resize

    h, w = small.shape
    grey_full = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = _resize(grey_full, h, w)
    box = lambda x: cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1))  # noqa: E731
    mean_i, mean_p = box(grey), box(small)
    cov = box(grey * small) - mean_i * mean_p
    var = box(grey * grey) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    a, b = box(a), box(b)
    full = _resize(a, *rgb.shape[:2]) * grey_full + _resize(b, *rgb.shape[:2])
    return np.clip(full, 0.0, 1.0).astype(np.float32)


def section_fix(matter, photos: list[Photo]) -> dict:
    """Inference-side prototypes, scored before/after on the photos the resize touches (k > 1.2) and on all.

    A prototype replaces the bilinear resize only where there is one to replace (scale > 1.2); the others
    keep the shipped path."""
    print("\n== 6. inference-side prototypes (not in mattecli): before / after")
    variants = {
        "bilinear (shipped)": lambda m, p: upsample(m["alpha"], p),
        "guided upsampling r=2 eps=1e-3": lambda m, p: guided_upsample(m["alpha"], p.rgb, 2, 1e-3),
        "guided upsampling r=4 eps=1e-2": lambda m, p: guided_upsample(m["alpha"], p.rgb, 4, 1e-2),
    }
    maps = [net_maps(matter, p.rgb) for p in photos]
    big = [i for i, p in enumerate(photos) if p.alpha.shape[0] / maps[i]["alpha"].shape[0] > 1.2]
    out = {}
    for name, fn in variants.items():
        rows = [
            scores(fn(m, p) if i in big else upsample(m["alpha"], p), p)
            for i, (m, p) in enumerate(zip(maps, photos, strict=True))
        ]
        s_all, s_big = mean_rows(rows), mean_rows([rows[i] for i in big])
        print(f"  {name:<32} all 30: {fmt_scores(s_all)}")
        print(f"  {'':<32} {len(big)} resized > 1.2x: {fmt_scores(s_big)}")
        out[name] = {"all": s_all, "resized": s_big}
    return out


# ------------------------------------------------------------------------------------------ main


def history_models(tmp: Path) -> dict[str, str]:
    """Rounds 1-4 from git history, and round 4's GPU run (stage 10) rebuilt from the average."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    models = {}
    for name, commit in ROUNDS:
        path = tmp / f"{name}.safetensors"
        blob = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{commit}:weights/lite.safetensors"],
            check=True,
            capture_output=True,
        ).stdout
        path.write_bytes(blob)
        models[name] = str(path)
    # round 4 = (round 3 + stage 10) / 2 (matte average, equal weights), so stage 10 = 2 * round 4 - round 3.
    with safe_open(models["round4"], "pt") as r4, safe_open(models["round3"], "pt") as r3:
        metadata = r4.metadata()
        tensors = {}
        for key in r4.keys():  # noqa: SIM118 (safe_open is not iterable)
            a, b = r4.get_tensor(key), r3.get_tensor(key)
            tensors[key] = (2 * a.double() - b.double()).to(a.dtype) if a.is_floating_point() else a
    path = tmp / "stage10.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    models["stage10 (GPU)"] = str(path)
    models["round4"] = models.pop("round4")  # keep it last, after the two it averages
    return models


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = REPO.parent / "shared" / "data"
    if not default_data.exists():
        default_data = REPO.parent.parent / "shared" / "data"  # a worktree under wt/
    parser.add_argument("--data", type=Path, default=default_data, help="the shared data root (read only)")
    parser.add_argument("--names", type=Path, default=NAMES, help="photo names (default: val_people.txt)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="repeatable")
    parser.add_argument("--history", action="store_true", help="add rounds 1-4 from git history")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--sizes", default="320,512,640,1024", help="--max-size values for section res")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    args = parse_args(argv)
    sections = set(args.sections.split(","))
    models = dict(item.split("=", 1) for item in args.model)
    if not models and not args.history:
        models = {"lite": "lite"}
    photos = load_photos(args.data, args.names)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.history:
            models = {**history_models(Path(tmp)), **models}
        print(f"{len(photos)} photos from {args.data}; models: {', '.join(models)}; torch threads 1")
        main_model = models.get("round4", next(iter(models.values())))
        matter = make_matter(main_model)
        if "gt" in sections:
            results["gt"] = section_gt(photos)
        if "decomp" in sections:
            results["decomp"] = decompose(matter, photos)
            print_decomp(results["decomp"], main_model)
        if "res" in sections:
            results["res"] = section_res(main_model, photos, [int(s) for s in args.sizes.split(",")])
        if "history" in sections:
            results["history"] = section_history(models, photos)
        if "loss" in sections:
            results["loss"] = section_loss(matter, photos)
        if "fix" in sections:
            results["fix"] = section_fix(matter, photos)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float) + "\n")


if __name__ == "__main__":
    sys.exit(main())
