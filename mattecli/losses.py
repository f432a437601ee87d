"""Training losses of the Late Fusion CNN (Zhang et al., CVPR 2019), one function per term.

The design document (``late-fusion.md``, section Losses) is the specification. Where the paper and
the authors' released Keras code differ we follow the code, and say so; every such difference can be
switched off so that the paper's formulation is also available:

* ``authors_extras`` (fusion and joint stages): the code adds the gradient loss ``L_g`` on the final
  alpha and ``0.01 * sparsity prior``; the paper's fusion loss is ``L_u`` alone. On by default.
* ``|x|`` in ``L_g`` and ``L_u`` is ``sqrt(x^2 + 1e-7)`` as in the code (smooth at 0, so the loss
  keeps a useful gradient where prediction and target agree).
* The transition region is ``0.05 < alpha < 0.95`` (the code's thresholds,
  :mod:`mattecli.transition_band`; not inference's certainty band of :mod:`mattecli.certainty`).
* :func:`weight_decay_penalty` in ``"code"`` mode reproduces the code's per-weight regulariser;
  ``"paper"`` mode leaves weight decay to the optimizer.

Two weights are run settings (``fusion_hard_weight``, ``joint_branch_weight``): L_u's weight on hard pixels
and the joint stage's weight of the branch terms. Their defaults are the paper's (0.1, 0.5, the module
constants below); lower branch and higher hard weights make the joint stage teach crisper mattes
(``benchmarks/HAZE.md``, section 5). Passing ``None`` reads the module constants at call time.

All terms are computed in float32 whatever the autocast dtype: ``log``, ``pow`` and the small
epsilons (1e-7) are meaningless in float16/bfloat16. Every public term takes probabilities (the
network already applies its sigmoids) and targets of shape N x 1 x H x W in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mattecli.models import LateFusionOutput
from mattecli.transition_band import LOSS_TRANSITION_LOW, in_loss_transition

#: Cross-entropy weights on hard and transition pixels.
CE_WEIGHT_HARD = 1.0
CE_WEIGHT_TRANSITION = 0.5
#: Fusion loss L_u weights on transition and hard pixels (the hard one is the paper's value, the default of
#: the run setting ``fusion_hard_weight``).
FUSION_WEIGHT_TRANSITION = 1.0
FUSION_WEIGHT_HARD = 0.1
#: The code's smooth |x| = sqrt(x^2 + SMOOTH_ABS_EPS).
SMOOTH_ABS_EPS = 1e-7
#: Keras clamps probabilities to [EPS, 1 - EPS] before taking logs.
PROB_EPS = 1e-7
SPARSITY_EXPONENT = 0.9
SPARSITY_WEIGHT = 0.01
#: Joint stage: weight of the branches' CE + L_d next to L_u (the paper's; the default of the run setting
#: ``joint_branch_weight``).
JOINT_BRANCH_WEIGHT = 0.5
WEIGHT_DECAY = 0.01
#: How weight decay is applied (:func:`weight_decay_penalty`); also the run configuration's choices.
WEIGHT_DECAY_MODES = ("code", "paper", "none")
#: The paper's three training stages, each with its own loss (:func:`stage_loss`); the one list of them.
STAGES = ("seg", "fusion", "joint")


@dataclass
class LossOutput:
    """A stage loss: ``total`` to backpropagate and its named ``parts`` to log.

    Each part is its weighted contribution to ``total`` (e.g. the joint stage's ``fg_ce`` already
    includes the branch weight, 0.5 by default, and ``sparsity`` the 0.01 factor), so
    ``sum(parts.values()) == total``. Parts are detached.
    """

    total: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


def _f32(x: Tensor) -> Tensor:
    return x.float()


def _smooth_abs(x: Tensor) -> Tensor:
    """The code's differentiable |x|: sqrt(x^2 + 1e-7)."""
    return torch.sqrt(x * x + SMOOTH_ABS_EPS)


def transition_mask(alpha: Tensor) -> Tensor:
    """1.0 where 0.05 < alpha < 0.95 (transition pixels), 0.0 on hard pixels (float32)."""
    return in_loss_transition(_f32(alpha)).float()


def regression_loss(prob: Tensor, alpha: Tensor) -> Tensor:
    """L_d: |F - alpha| on transition pixels, (F - alpha)^2 on hard ones, mean over all pixels.

    The absolute error keeps pushing on soft pixels, where errors are small; the square is gentle on
    hard pixels, where the CE term already does the work.
    """
    prob, alpha = _f32(prob), _f32(alpha)
    diff = prob - alpha
    per_pixel = torch.where(transition_mask(alpha) > 0, diff.abs(), diff * diff)
    return per_pixel.mean()


def _dx(x: Tensor) -> Tensor:
    return x[..., :, 1:] - x[..., :, :-1]


def _dy(x: Tensor) -> Tensor:
    return x[..., 1:, :] - x[..., :-1, :]


def gradient_loss(prob: Tensor, alpha: Tensor) -> Tensor:
    """L_g: mean |dx F - dx alpha| + mean |dy F - dy alpha| with forward differences.

    ``|x|`` is the code's ``sqrt(x^2 + 1e-7)``. Each mean runs over the difference map (H x (W-1)
    for x, (H-1) x W for y). The target is the soft alpha, so the branch learns the matte's edges,
    not the mask's.
    """
    prob, alpha = _f32(prob), _f32(alpha)
    loss_x = _smooth_abs(_dx(prob) - _dx(alpha)).mean()
    loss_y = _smooth_abs(_dy(prob) - _dy(alpha)).mean()
    return loss_x + loss_y


def weighted_ce(prob: Tensor, target_hard: Tensor, transition: Tensor) -> Tensor:
    """Binary cross-entropy weighted 1 on hard and 0.5 on transition pixels, mean over pixels.

    Probabilities are clamped to [1e-7, 1 - 1e-7] before the logs, as Keras' ``binary_crossentropy``
    does, so saturated sigmoids give a finite loss (and no gradient, as in Keras).
    """
    p = _f32(prob).clamp(PROB_EPS, 1.0 - PROB_EPS)
    target, transition = _f32(target_hard), _f32(transition)
    ce = -(target * torch.log(p) + (1.0 - target) * torch.log1p(-p))
    weight = CE_WEIGHT_HARD + (CE_WEIGHT_TRANSITION - CE_WEIGHT_HARD) * transition
    return (weight * ce).mean()


def branch_loss(prob: Tensor, alpha: Tensor, *, include_gradient: bool = True) -> dict[str, Tensor]:
    """One branch's loss at one scale: CE + L_d (+ L_g), as differentiable parts "ce", "d" ("g").

    Pass ``alpha`` for the foreground branch and ``1 - alpha`` for the background branch. The CE
    target is ``[alpha > 0.05]``; for the background branch that is ``[alpha < 0.95]``, so both
    branches are pushed to 1 in the transition region and F + B > 1 there, which is what gives the
    fusion network a gradient (d alpha / d beta = F + B - 1).
    """
    alpha = _f32(alpha)
    transition = transition_mask(alpha)
    parts = {
        "ce": weighted_ce(prob, (alpha > LOSS_TRANSITION_LOW).float(), transition),
        "d": regression_loss(prob, alpha),
    }
    if include_gradient:
        parts["g"] = gradient_loss(prob, alpha)
    return parts


def fusion_l1(out: LateFusionOutput | Tensor, alpha: Tensor, *, hard_weight: float | None = None) -> Tensor:
    """L_u: sum_p w_p |alpha_pred - alpha| / sum_p w_p; w = 1 on transition, 0.1 on hard pixels.

    ``out`` is a network output (its ``alpha`` = beta F + (1 - beta)(1 - B) is used) or the
    predicted alpha. ``|x|`` is the code's ``sqrt(x^2 + 1e-7)``. Normalising by the weight sum keeps
    the loss's scale independent of how much of the image is transition. ``hard_weight`` replaces
    the paper's 0.1 on hard pixels (``None``: :data:`FUSION_WEIGHT_HARD`); it must be positive, or an
    image without transition pixels would have no weight at all.
    """
    hard = FUSION_WEIGHT_HARD if hard_weight is None else hard_weight
    alpha_pred = out if isinstance(out, Tensor) else out.alpha
    alpha_pred, alpha = _f32(alpha_pred), _f32(alpha)
    transition = transition_mask(alpha)
    weight = hard + (FUSION_WEIGHT_TRANSITION - hard) * transition
    return (weight * _smooth_abs(alpha_pred - alpha)).sum() / weight.sum()


def sparsity_prior(alpha_pred: Tensor) -> Tensor:
    """mean(alpha^0.9 + (1 - alpha)^0.9): lowest at 0 and 1, so it favours opaque or clear pixels.

    Unweighted here; the stage losses apply the code's 0.01. alpha is clamped to [1e-7, 1 - 1e-7]
    first because the derivative of x^0.9 is infinite at 0, and a float32 sigmoid can reach exactly
    0 or 1.
    """
    a = _f32(alpha_pred).clamp(PROB_EPS, 1.0 - PROB_EPS)
    return (a.pow(SPARSITY_EXPONENT) + (1.0 - a).pow(SPARSITY_EXPONENT)).mean()


def _check_shapes(out: LateFusionOutput, alpha: Tensor) -> None:
    if alpha.ndim != 4 or alpha.shape[1] != 1:
        raise ValueError(f"alpha must be N x 1 x H x W, got shape {tuple(alpha.shape)}")
    if out.alpha.shape != alpha.shape:
        raise ValueError(
            f"prediction shape {tuple(out.alpha.shape)} does not match alpha {tuple(alpha.shape)}"
        )


def _to_input_size(side: Tensor, alpha: Tensor) -> Tensor:
    """Bilinear resize (align_corners=False) of a side output to the target's size, in float32."""
    side = _f32(side)
    if side.shape[-2:] == alpha.shape[-2:]:
        return side
    return F.interpolate(side, size=alpha.shape[-2:], mode="bilinear", align_corners=False)


def _deep_supervision(
    out: LateFusionOutput, alpha: Tensor, *, include_gradient: bool, weight: float
) -> dict[str, Tensor]:
    """Branch losses summed over the four side outputs of each branch, times ``weight``.

    Parts: fg_ce, fg_d, (fg_g), bg_ce, bg_d, (bg_g).
    """
    alpha = _f32(alpha)
    targets = {"fg": (out.fg_sides, alpha), "bg": (out.bg_sides, 1.0 - alpha)}
    parts: dict[str, Tensor] = {}
    for branch, (sides, target) in targets.items():
        for side in sides:
            side_parts = branch_loss(_to_input_size(side, alpha), target, include_gradient=include_gradient)
            for name, value in side_parts.items():
                key = f"{branch}_{name}"
                parts[key] = parts.get(key, 0.0) + weight * value
    return parts


def _authors_extras(out: LateFusionOutput, alpha: Tensor) -> dict[str, Tensor]:
    """The code's additions in the fusion and joint stages (not in the paper)."""
    return {
        "alpha_grad": gradient_loss(out.alpha, alpha),
        "sparsity": SPARSITY_WEIGHT * sparsity_prior(out.alpha),
    }


def _finish(parts: dict[str, Tensor]) -> LossOutput:
    total = torch.stack(list(parts.values())).sum()
    return LossOutput(total=total, parts={k: v.detach() for k, v in parts.items()})


def segmentation_loss(out: LateFusionOutput, alpha: Tensor) -> LossOutput:
    """Stage 1: sum of L_F (foreground, target alpha) and L_B (background, target 1 - alpha) at all
    four side outputs of both branches, weight 1 each; L = CE + L_d + L_g.

    Parts: fg_ce, fg_d, fg_g, bg_ce, bg_d, bg_g (each summed over the four scales).
    """
    _check_shapes(out, alpha)
    return _finish(_deep_supervision(out, alpha, include_gradient=True, weight=1.0))


def fusion_loss(
    out: LateFusionOutput,
    alpha: Tensor,
    *,
    authors_extras: bool = True,
    fusion_hard_weight: float | None = None,
) -> LossOutput:
    """Stage 2: L_u on the fused alpha (part ``fusion``), hard pixels weighted ``fusion_hard_weight``
    (``None``: the paper's 0.1).

    Paper vs code: the paper's loss is L_u alone; the authors' code also adds L_g on the final alpha
    (part ``alpha_grad``) and 0.01 * sparsity prior (part ``sparsity``). We follow the code by
    default; ``authors_extras=False`` gives the paper's loss.
    """
    _check_shapes(out, alpha)
    parts = {"fusion": fusion_l1(out, alpha, hard_weight=fusion_hard_weight)}
    if authors_extras:
        parts.update(_authors_extras(out, alpha))
    return _finish(parts)


def joint_loss(
    out: LateFusionOutput,
    alpha: Tensor,
    *,
    authors_extras: bool = True,
    fusion_hard_weight: float | None = None,
    joint_branch_weight: float | None = None,
) -> LossOutput:
    """Stage 3: L_u + 0.5 * (CE + L_d) of both branches at all four side outputs (no branch L_g).

    Parts: fusion, fg_ce, fg_d, bg_ce, bg_d (the branch weight included). ``joint_branch_weight`` replaces the
    paper's 0.5 (``None``: :data:`JOINT_BRANCH_WEIGHT`); at 0 the branch parts are left out, so only
    L_u (and the extras) train the network. ``fusion_hard_weight`` is L_u's, as in :func:`fusion_loss`.
    Paper vs code as in :func:`fusion_loss`: by default the code's ``alpha_grad`` and ``sparsity``
    parts are added; ``authors_extras=False`` drops them.
    """
    _check_shapes(out, alpha)
    branch = JOINT_BRANCH_WEIGHT if joint_branch_weight is None else joint_branch_weight
    parts = {"fusion": fusion_l1(out, alpha, hard_weight=fusion_hard_weight)}
    if branch != 0:
        parts.update(_deep_supervision(out, alpha, include_gradient=False, weight=branch))
    if authors_extras:
        parts.update(_authors_extras(out, alpha))
    return _finish(parts)


def stage_loss(
    stage: str,
    out: LateFusionOutput,
    alpha: Tensor,
    *,
    authors_extras: bool = True,
    fusion_hard_weight: float | None = None,
    joint_branch_weight: float | None = None,
) -> LossOutput:
    """The loss of a training stage by name: ``"seg"``, ``"fusion"`` or ``"joint"``.

    Every setting is accepted for every stage and ignored where it has no term (``"seg"`` has no
    extras and no L_u, ``"fusion"`` no branch terms), so a trainer can pass one run's settings to
    every stage. ``None`` weights are the paper's.
    """
    if stage == "seg":
        return segmentation_loss(out, alpha)
    if stage == "fusion":
        return fusion_loss(out, alpha, authors_extras=authors_extras, fusion_hard_weight=fusion_hard_weight)
    if stage == "joint":
        return joint_loss(
            out,
            alpha,
            authors_extras=authors_extras,
            fusion_hard_weight=fusion_hard_weight,
            joint_branch_weight=joint_branch_weight,
        )
    raise ValueError(f"unknown training stage {stage!r}; choose one of {', '.join(STAGES)}")


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside (Distributed)DataParallel or torch.compile wrappers, so that
    ``model.encoder`` is found."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def _first_conv(model: nn.Module) -> nn.Conv2d | None:
    root = getattr(model, "encoder", model)
    return next((m for m in root.modules() if isinstance(m, nn.Conv2d)), None)


def weight_decay_penalty(model: nn.Module, mode: str = "code") -> Tensor:
    """The regulariser to add to the loss (float32 scalar on the model's device).

    ``"code"`` (default, the authors' code): ``0.01 * sum(w^2) / numel(w)`` for every Conv2d and
    Linear weight (no biases, no BatchNorm parameters), except the first convolution of the encoder
    (the first Conv2d registered in ``model.encoder``, or in ``model`` when it has no encoder),
    which gets the L1 form ``0.01 * sum(|w|) / numel(w)``. Frozen weights (``requires_grad=False``)
    are skipped: their penalty is a constant with no gradient.

    ``"paper"``: the paper's plain weight decay, which the optimizer applies (its ``weight_decay``
    argument); the returned penalty is 0. ``"none"``: no weight decay at all; the penalty is 0.
    """
    if mode not in WEIGHT_DECAY_MODES:
        raise ValueError(f"unknown weight decay mode {mode!r}; choose one of {', '.join(WEIGHT_DECAY_MODES)}")
    model = _unwrap(model)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    penalty = torch.zeros((), dtype=torch.float32, device=device)
    if mode != "code":
        return penalty
    first = _first_conv(model)
    for module in model.modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)) or not module.weight.requires_grad:
            continue
        w = _f32(module.weight)
        per_weight = w.abs() if module is first else w * w
        penalty = penalty + WEIGHT_DECAY * per_weight.sum() / w.numel()
    return penalty


__all__ = [
    "LossOutput",
    "branch_loss",
    "fusion_l1",
    "fusion_loss",
    "gradient_loss",
    "joint_loss",
    "regression_loss",
    "segmentation_loss",
    "sparsity_prior",
    "stage_loss",
    "transition_mask",
    "weight_decay_penalty",
    "weighted_ce",
]
