"""Late Fusion losses: every term against hand-worked numbers, the stage losses on a real tiny network."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mattecli import losses
from mattecli.models import LateFusionNet, LateFusionOutput, blend
from mattecli.models.config import LITE

TINY = LITE.replace(name="tiny", decoder_channels=8, fusion_channels=(8, 8), fusion_image_channels=8)
EPS = 1e-7  # the code's epsilon in sqrt(x^2 + eps) and in the probability clamp


def row(*values: float) -> torch.Tensor:
    """A 1 x 1 x 1 x W tensor: one row of pixels."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1)


# Four pixels used by several tests: hard 1, hard 0, transition 0.5, hard 1.
ALPHA = row(1.0, 0.0, 0.5, 1.0)
PROB = row(0.5, 0.25, 0.8, 1.0)


def test_transition_mask_is_strictly_between_0_05_and_0_95():
    alpha = row(0.0, 0.05, 0.0501, 0.5, 0.9499, 0.95, 1.0)
    # Both thresholds are exclusive: 0.05 and 0.95 themselves are hard pixels.
    expected = row(0, 0, 1, 1, 1, 0, 0)
    assert torch.equal(losses.transition_mask(alpha), expected)


def test_regression_loss_is_abs_on_transition_and_square_on_hard_pixels():
    # hard:       (0.5 - 1)^2 = 0.25,  (0.25 - 0)^2 = 0.0625,  (1 - 1)^2 = 0
    # transition: |0.8 - 0.5| = 0.3  (the square would be 0.09)
    # mean over 4 pixels: (0.25 + 0.0625 + 0.3 + 0) / 4 = 0.153125
    assert losses.regression_loss(PROB, ALPHA).item() == pytest.approx(0.153125, rel=1e-6)


def test_weighted_ce_weights_hard_pixels_1_and_transition_pixels_0_5():
    target = (ALPHA > 0.05).float()  # 1, 0, 1, 1
    transition = losses.transition_mask(ALPHA)  # 0, 0, 1, 0
    # pixel 1: -ln(0.5)        = 0.693147   weight 1
    # pixel 2: -ln(1 - 0.25)   = 0.287682   weight 1
    # pixel 3: -ln(0.8)        = 0.223144   weight 0.5 (transition)
    # pixel 4: p = 1 is clamped to 1 - 1e-7: -ln(1 - 1e-7) ~ 1e-7, weight 1
    expected = (-math.log(0.5) - math.log(0.75) - 0.5 * math.log(0.8) + 1e-7) / 4
    assert losses.weighted_ce(PROB, target, transition).item() == pytest.approx(expected, rel=1e-5)


def test_weighted_ce_clamps_probabilities_like_keras():
    # p = 0 with target 1 would be infinite; Keras clamps p to 1e-7: -ln(1e-7) = 16.118
    value = losses.weighted_ce(row(0.0), row(1.0), row(0.0)).item()
    assert value == pytest.approx(-math.log(1e-7), rel=1e-5)


def test_gradient_loss_on_a_ramp():
    # alpha is a horizontal ramp 0, 0.5, 1 (two rows); the prediction is flat zero.
    alpha = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]]).view(1, 1, 2, 3)
    prob = torch.zeros_like(alpha)
    # x: the 2 x 2 forward differences of alpha are all 0.5, of prob 0: mean sqrt(0.5^2 + 1e-7)
    # y: all differences are 0: mean sqrt(0 + 1e-7)
    expected = math.sqrt(0.25 + EPS) + math.sqrt(EPS)
    assert losses.gradient_loss(prob, alpha).item() == pytest.approx(expected, rel=1e-6)
    # A perfect prediction leaves only the epsilon floor, 2 * sqrt(1e-7).
    assert losses.gradient_loss(alpha, alpha).item() == pytest.approx(2 * math.sqrt(EPS), rel=1e-5)


def test_fusion_l1_weights_transition_1_and_hard_0_1_normalised_by_weight_sum():
    alpha_pred = PROB
    # weights: 0.1, 0.1, 1, 0.1 (sum 1.3); |d| = sqrt(d^2 + 1e-7) for d = -0.5, 0.25, 0.3, 0
    numerator = (
        0.1 * math.sqrt(0.25 + EPS)
        + 0.1 * math.sqrt(0.0625 + EPS)
        + 1.0 * math.sqrt(0.09 + EPS)
        + 0.1 * math.sqrt(EPS)
    )
    expected = numerator / 1.3  # ~ 0.288486
    assert losses.fusion_l1(alpha_pred, ALPHA).item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.288486, abs=1e-6)


def test_sparsity_prior():
    # a = 0 (clamped to 1e-7): 1e-7^0.9 + (1 - 1e-7)^0.9 ~ 5.0e-7 + 1
    # a = 0.5:                 2 * 0.5^0.9 = 1.071773
    # a = 1 (clamped):         same as a = 0
    expected = (2 * (EPS**0.9 + 1.0) + 2 * 0.5**0.9) / 3  # ~ 1.023925
    assert losses.sparsity_prior(row(0.0, 0.5, 1.0)).item() == pytest.approx(expected, rel=1e-5)


def test_sparsity_prior_gradient_is_finite_at_exact_0_and_1():
    alpha = row(0.0, 0.5, 1.0).requires_grad_()
    losses.sparsity_prior(alpha).backward()
    assert torch.isfinite(alpha.grad).all()


def test_branch_loss_of_background_uses_inverted_target():
    alpha = row(0.0, 0.5, 0.97)
    background = row(0.9, 0.9, 0.9)
    parts = losses.branch_loss(background, 1.0 - alpha)
    # Target 1 - alpha = 1, 0.5, 0.03 -> hard target [alpha < 0.95] = 1, 1, 0; transition 0, 1, 0.
    # CE: -ln 0.9 (w 1), -ln 0.9 (w 0.5), -ln 0.1 (w 1)
    expected_ce = (-math.log(0.9) * 1.5 - math.log(0.1)) / 3
    assert parts["ce"].item() == pytest.approx(expected_ce, rel=1e-5)
    # L_d: (0.9 - 1)^2 = 0.01, |0.9 - 0.5| = 0.4, (0.9 - 0.03)^2 = 0.7569
    assert parts["d"].item() == pytest.approx((0.01 + 0.4 + 0.7569) / 3, rel=1e-5)
    assert set(parts) == {"ce", "d", "g"}
    assert set(losses.branch_loss(background, alpha, include_gradient=False)) == {"ce", "d"}


def test_blend_gradient_wrt_beta_vanishes_where_branches_agree():
    # d alpha / d beta = F + B - 1: zero for (F, B) = (0.7, 0.3) and (0.2, 0.8), non-zero otherwise.
    beta = row(0.3, 0.3, 0.3, 0.3).requires_grad_()
    foreground = row(0.7, 0.2, 0.9, 0.2)
    background = row(0.3, 0.8, 0.9, 0.1)
    blend(beta, foreground, background).sum().backward()
    assert beta.grad.flatten().tolist() == pytest.approx([0.0, 0.0, 0.8, -0.7], abs=1e-6)


def test_weight_decay_penalty_on_a_hand_made_module():
    model = nn.Module()
    model.encoder = nn.Sequential(nn.Conv2d(1, 1, 2), nn.BatchNorm2d(1), nn.Conv2d(1, 1, 1))
    model.head = nn.Linear(2, 1)
    with torch.no_grad():
        model.encoder[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, -4.0]]).view(1, 1, 2, 2))
        model.encoder[2].weight.fill_(2.0)
        model.head.weight.copy_(torch.tensor([[3.0, 4.0]]))
        for module in (model.encoder[0], model.encoder[2], model.head):
            module.bias.fill_(100.0)  # biases are not decayed
        model.encoder[1].weight.fill_(100.0)  # nor is BatchNorm
    # first conv (L1):  0.01 * (1 + 2 + 3 + 4) / 4 = 0.025
    # second conv (L2): 0.01 * 2^2 / 1             = 0.04
    # linear (L2):      0.01 * (9 + 16) / 2        = 0.125
    assert losses.weight_decay_penalty(model).item() == pytest.approx(0.19, rel=1e-6)
    assert losses.weight_decay_penalty(model, "paper").item() == 0.0
    assert losses.weight_decay_penalty(model, "none").item() == 0.0
    model.head.requires_grad_(False)  # frozen weights are skipped
    assert losses.weight_decay_penalty(model).item() == pytest.approx(0.065, rel=1e-6)
    with pytest.raises(ValueError, match="weight decay mode"):
        losses.weight_decay_penalty(model, "l2")


def test_weight_decay_penalty_uses_l1_on_the_network_stem():
    model = LateFusionNet(TINY)
    penalty = losses.weight_decay_penalty(model)
    penalty.backward()
    stem = model.encoder._conv_stem.weight
    # d/dw of 0.01 * sum|w| / n is 0.01 * sign(w) / n; any other conv gets 0.01 * 2w / n.
    assert torch.allclose(stem.grad, 0.01 * stem.sign() / stem.numel())
    head = model.fusion.head.weight
    assert torch.allclose(head.grad, 0.01 * 2 * head / head.numel())
    assert model.fusion.head.bias.grad is None


@pytest.fixture(scope="module")
def net() -> LateFusionNet:
    torch.manual_seed(0)
    return LateFusionNet(TINY)


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 64, 64, generator=generator)
    # A disc with a soft edge: hard 0, hard 1 and a transition band.
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    radius = ((yy - 32) ** 2 + (xx - 32) ** 2).sqrt()
    alpha = (20.0 - radius).div(4.0).clamp(0, 1).expand(2, 1, 64, 64).contiguous()
    return image, alpha


def _grads_exist(module: nn.Module) -> bool:
    """Backprop reached the module (some gradient is non-zero) and every gradient is finite.

    Not every parameter gets one: the Lite0 encoder keeps an unused classifier head.
    """
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return any(g.abs().sum() > 0 for g in grads) and all(torch.isfinite(g).all() for g in grads)


def _check(result: losses.LossOutput, names: set[str]) -> None:
    assert set(result.parts) == names
    assert result.total.ndim == 0 and torch.isfinite(result.total)
    assert all(not p.requires_grad for p in result.parts.values())
    assert result.total.item() == pytest.approx(sum(p.item() for p in result.parts.values()))


SEG_PARTS = {"fg_ce", "fg_d", "fg_g", "bg_ce", "bg_d", "bg_g"}
EXTRAS = {"alpha_grad", "sparsity"}


def test_segmentation_loss_on_a_real_network(net, batch):
    image, alpha = batch
    net.zero_grad()
    out = net(image)
    result = losses.segmentation_loss(out, alpha)
    _check(result, SEG_PARTS)
    # fg_ce is the CE of the four side outputs, each resized bilinearly to 64 x 64, summed.
    sides = [F.interpolate(s, size=(64, 64), mode="bilinear") for s in out.fg_sides]
    mask = losses.transition_mask(alpha)
    expected = sum(losses.weighted_ce(s, (alpha > 0.05).float(), mask) for s in sides)
    assert result.parts["fg_ce"].item() == pytest.approx(expected.item(), rel=1e-6)
    result.total.backward()
    assert _grads_exist(net.encoder) and _grads_exist(net.fg_decoder)
    assert _grads_exist(net.bg_decoder)
    # The segmentation stage does not involve the fusion network at all.
    assert all(p.grad is None for p in net.fusion.parameters())


def test_fusion_loss_extras_switch_changes_exactly_the_extra_parts(net, batch):
    image, alpha = batch
    net.zero_grad()
    out = net(image)
    code = losses.fusion_loss(out, alpha)
    paper = losses.fusion_loss(out, alpha, authors_extras=False)
    _check(code, {"fusion"} | EXTRAS)
    _check(paper, {"fusion"})
    assert torch.equal(code.parts["fusion"], paper.parts["fusion"])
    assert code.parts["fusion"] == pytest.approx(losses.fusion_l1(out.alpha, alpha).item())
    assert code.parts["alpha_grad"] == pytest.approx(losses.gradient_loss(out.alpha, alpha).item())
    assert code.parts["sparsity"] == pytest.approx(0.01 * losses.sparsity_prior(out.alpha).item())
    code.total.backward()
    assert _grads_exist(net.fusion)


def test_joint_loss_halves_the_branch_terms_and_drops_their_gradient_loss(net, batch):
    image, alpha = batch
    net.zero_grad()
    out = net(image)
    joint = losses.joint_loss(out, alpha)
    _check(joint, {"fusion", "fg_ce", "fg_d", "bg_ce", "bg_d"} | EXTRAS)
    _check(losses.joint_loss(out, alpha, authors_extras=False), {"fusion", "fg_ce", "fg_d", "bg_ce", "bg_d"})
    seg = losses.segmentation_loss(out, alpha)
    for name in ("fg_ce", "fg_d", "bg_ce", "bg_d"):
        assert joint.parts[name].item() == pytest.approx(0.5 * seg.parts[name].item(), rel=1e-6)
    joint.total.backward()
    for part in (net.encoder, net.fg_decoder, net.bg_decoder, net.fusion):
        assert _grads_exist(part)


# ------------------------------------------------------------------------------------ loss weights


def test_fusion_l1_hard_weight_replaces_0_1_on_hard_pixels():
    # The four pixels of the test above; |d| = sqrt(d^2 + 1e-7) for d = -0.5, 0.25, 0.3, 0.
    d_hard = (math.sqrt(0.25 + EPS), math.sqrt(0.0625 + EPS), math.sqrt(EPS))
    d_transition = math.sqrt(0.09 + EPS)
    # hard weight 1: every pixel weighs 1, so L_u is the plain mean of |d|.
    expected_1 = (sum(d_hard) + d_transition) / 4
    assert losses.fusion_l1(PROB, ALPHA, hard_weight=1.0).item() == pytest.approx(expected_1, rel=1e-6)
    # hard weight 0.5: weights 0.5, 0.5, 1, 0.5 (sum 2.5).
    expected_half = (0.5 * sum(d_hard) + d_transition) / 2.5
    assert losses.fusion_l1(PROB, ALPHA, hard_weight=0.5).item() == pytest.approx(expected_half, rel=1e-6)
    # hard weight 3 (hard pixels weigh more than transition ones): weights 3, 3, 1, 3 (sum 10).
    expected_3 = (3 * sum(d_hard) + d_transition) / 10
    assert losses.fusion_l1(PROB, ALPHA, hard_weight=3.0).item() == pytest.approx(expected_3, rel=1e-6)


def _todays_fusion_l1(alpha_pred: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """L_u as written before the weight became a setting, with the paper's 0.1 spelled out."""
    transition = ((alpha > 0.05) & (alpha < 0.95)).float()
    weight = 0.1 + (1.0 - 0.1) * transition
    return (weight * torch.sqrt((alpha_pred - alpha) ** 2 + 1e-7)).sum() / weight.sum()


def test_default_loss_weights_are_the_papers_bit_for_bit(net, batch):
    image, alpha = batch
    with torch.no_grad():
        out = net(image)
    assert (losses.FUSION_WEIGHT_HARD, losses.JOINT_BRANCH_WEIGHT) == (0.1, 0.5)
    assert torch.equal(losses.fusion_l1(out, alpha), _todays_fusion_l1(out.alpha, alpha))
    paper = {"fusion_hard_weight": 0.1, "joint_branch_weight": 0.5}
    for stage in losses.STAGES:
        default = losses.stage_loss(stage, out, alpha)
        explicit = losses.stage_loss(stage, out, alpha, **paper)
        assert torch.equal(default.total, explicit.total), stage
        assert default.parts.keys() == explicit.parts.keys()
        assert all(torch.equal(default.parts[k], explicit.parts[k]) for k in default.parts), stage
    joint = losses.joint_loss(out, alpha)
    assert torch.equal(joint.parts["fusion"], _todays_fusion_l1(out.alpha, alpha))
    # The joint stage's branch parts are 0.5 x the branches' CE and L_d, as before.
    seg = losses.segmentation_loss(out, alpha)
    for name in ("fg_ce", "fg_d", "bg_ce", "bg_d"):
        assert joint.parts[name].item() == pytest.approx(0.5 * seg.parts[name].item(), rel=1e-6)


def test_loss_weights_change_only_their_own_terms(net, batch):
    image, alpha = batch
    with torch.no_grad():
        out = net(image)
    paper = losses.joint_loss(out, alpha)
    crisp = losses.joint_loss(out, alpha, fusion_hard_weight=1.0, joint_branch_weight=0.1)
    assert crisp.parts.keys() == paper.parts.keys()
    assert torch.equal(crisp.parts["fusion"], losses.fusion_l1(out, alpha, hard_weight=1.0))
    assert not torch.equal(crisp.parts["fusion"], paper.parts["fusion"])
    for name in ("fg_ce", "fg_d", "bg_ce", "bg_d"):  # 0.1 / 0.5 of the paper's branch parts
        assert crisp.parts[name].item() == pytest.approx(0.2 * paper.parts[name].item(), rel=1e-6)
    for name in EXTRAS:
        assert torch.equal(crisp.parts[name], paper.parts[name])
    # The fusion stage has no branch terms, so only the hard weight matters there; seg has neither.
    fusion = losses.stage_loss("fusion", out, alpha, fusion_hard_weight=1.0, joint_branch_weight=0.0)
    assert torch.equal(fusion.total, losses.fusion_loss(out, alpha, fusion_hard_weight=1.0).total)
    assert torch.equal(fusion.parts["fusion"], crisp.parts["fusion"])
    seg = losses.stage_loss("seg", out, alpha, fusion_hard_weight=1.0, joint_branch_weight=0.0)
    assert torch.equal(seg.total, losses.segmentation_loss(out, alpha).total)


def test_joint_branch_weight_0_leaves_only_fusion_and_extras(net, batch):
    image, alpha = batch
    net.zero_grad()
    out = net(image)
    joint = losses.joint_loss(out, alpha, joint_branch_weight=0.0, fusion_hard_weight=0.3)
    _check(joint, {"fusion"} | EXTRAS)
    fusion = losses.fusion_loss(out, alpha, fusion_hard_weight=0.3)
    assert torch.equal(joint.total, fusion.total)
    _check(losses.joint_loss(out, alpha, joint_branch_weight=0.0, authors_extras=False), {"fusion"})
    joint.total.backward()  # the branches still learn, through alpha alone
    for part in (net.encoder, net.fg_decoder, net.bg_decoder, net.fusion):
        assert _grads_exist(part)


def test_stage_loss_dispatches_by_name(net, batch):
    image, alpha = batch
    with torch.no_grad():
        out = net(image)
    assert torch.equal(losses.stage_loss("seg", out, alpha).total, losses.segmentation_loss(out, alpha).total)
    # authors_extras is accepted (and meaningless) for the segmentation stage.
    assert set(losses.stage_loss("seg", out, alpha, authors_extras=False).parts) == SEG_PARTS
    fusion = losses.stage_loss("fusion", out, alpha, authors_extras=False)
    assert set(fusion.parts) == {"fusion"}
    assert torch.equal(losses.stage_loss("joint", out, alpha).total, losses.joint_loss(out, alpha).total)
    with pytest.raises(ValueError, match="unknown training stage"):
        losses.stage_loss("finetune", out, alpha)
    with pytest.raises(ValueError, match="does not match"):
        losses.fusion_loss(out, alpha[:, :, :32])


def _cast(out: LateFusionOutput, dtype: torch.dtype) -> LateFusionOutput:
    return LateFusionOutput(
        alpha=out.alpha.to(dtype),
        foreground=out.foreground.to(dtype),
        background=out.background.to(dtype),
        beta=out.beta.to(dtype),
        fg_sides=tuple(s.to(dtype) for s in out.fg_sides),
        bg_sides=tuple(s.to(dtype) for s in out.bg_sides),
    )


def test_losses_are_computed_in_float32_under_bfloat16_autocast(net, batch):
    image, alpha = batch
    with torch.no_grad():
        low = _cast(net(image), torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = losses.joint_loss(low, alpha.bfloat16())
    assert result.total.dtype == torch.float32 and torch.isfinite(result.total)
    # The same bfloat16 values upcast by hand give the same number: nothing ran in bfloat16.
    reference = losses.joint_loss(_cast(low, torch.float32), alpha.bfloat16().float())
    assert result.total.item() == pytest.approx(reference.total.item(), rel=1e-6)
