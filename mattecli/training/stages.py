"""The paper's three training stages: which parts train, and which BatchNorm statistics update.

| stage  | trains                       | BN statistics                                   |
| ------ | ---------------------------- | ----------------------------------------------- |
| seg    | encoder + both decoders      | encoder and decoders update; fusion net untouched |
| fusion | fusion network only          | fusion net updates; encoder and decoders frozen |
| joint  | everything                   | all frozen (the affine BN parameters still train) |

Freezing is done twice over: parameters that must not change get ``requires_grad=False`` (so no optimiser
ever sees them), and modules whose statistics must not change are put in eval mode after every
``model.train()`` call (:func:`set_stage_mode`), because ``train()`` would otherwise switch them back.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from mattecli.models import LateFusionOutput
from mattecli.training.runconfig import STAGES


@dataclass(frozen=True)
class StageSpec:
    """What one stage trains: parameter groups (names of ``LateFusionNet.parameter_groups()``) and the
    submodules whose BatchNorm layers run in training mode (updating their running statistics)."""

    name: str
    trainable: tuple[str, ...]
    bn_training: tuple[str, ...]


STAGE_SPECS = {
    "seg": StageSpec("seg", ("encoder", "decoders"), ("encoder", "fg_decoder", "bg_decoder")),
    "fusion": StageSpec("fusion", ("fusion",), ("fusion",)),
    "joint": StageSpec("joint", ("encoder", "decoders", "fusion"), ()),
}

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def stage_spec(stage: str) -> StageSpec:
    if stage not in STAGE_SPECS:
        raise ValueError(f"unknown training stage {stage!r}; choose one of {', '.join(STAGES)}")
    return STAGE_SPECS[stage]


def configure_stage(model: nn.Module, stage: str) -> list[nn.Parameter]:
    """Set ``requires_grad`` for the stage and return the trainable parameters in a fixed order.

    The order (encoder, decoders, fusion as in ``parameter_groups``) is what the optimiser state is
    keyed by, so a resumed run must build it the same way: it always does, since it is derived here.
    """
    spec = stage_spec(stage)
    for p in model.parameters():
        p.requires_grad_(False)
    # The encoder's classifier head never receives a gradient, which DistributedDataParallel would refuse.
    prefixes = model.encoder.unused_prefixes
    unused = {id(p) for name, p in model.encoder.named_parameters() if name.startswith(prefixes)}
    trainable: list[nn.Parameter] = []
    for group, params in model.parameter_groups().items():
        if group not in spec.trainable:
            continue
        for p in params:
            if id(p) not in unused:
                p.requires_grad_(True)
                trainable.append(p)
    return trainable


def set_stage_mode(model: nn.Module, stage: str) -> None:
    """``model.train()``, then eval mode for every BatchNorm whose statistics the stage freezes.

    In the fusion stage the whole encoder and both decoders run in eval mode (they are frozen feature
    extractors); in the joint stage only the BN layers switch to eval, the rest stays in training mode.
    """
    spec = stage_spec(stage)
    model.train()
    training_roots = [getattr(model, name) for name in spec.bn_training]
    training_bns = {id(m) for root in training_roots for m in root.modules() if isinstance(m, _BN_TYPES)}
    for module in model.modules():
        if isinstance(module, _BN_TYPES) and id(module) not in training_bns:
            module.eval()
    if stage == "fusion":
        for name in ("encoder", "fg_decoder", "bg_decoder"):
            getattr(model, name).eval()
    if stage == "seg":
        model.fusion.eval()


def bn_training_modules(model: nn.Module, stage: str) -> list[nn.Module]:
    """The submodules whose BN statistics the stage trains (for SyncBatchNorm conversion)."""
    return [getattr(model, name) for name in stage_spec(stage).bn_training]


class BranchesOnly(nn.Module):
    """The network without its fusion net, for the seg stage: encoder and both decoders only.

    Stage 1's loss reads only the side outputs of the two branches, yet a full forward pass also runs the
    fusion network, whose 3x3 convolutions at full resolution are most of the paper model's cost (about
    60 % of a seg step on a CPU at 320 px). The returned output's ``alpha`` is F (the fusion net, which
    would blend F and 1 - B, does not run) and ``beta`` is None; nothing in stage 1 reads them.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> LateFusionOutput:
        return self.net(image, fuse=False)
