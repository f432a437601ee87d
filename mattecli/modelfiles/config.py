"""Old import path of :mod:`mattecli.models.config`: a model's configuration is the network's (the models
layer builds from it), and a model file stores it. Kept so that ``mattecli.modelfiles.config`` keeps working."""

from mattecli.models.config import (
    AUTHORS_MEAN_PIXEL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE,
    LITE1,
    LITE2,
    PAPER,
    PAPER_AUTHORS_INPUT,
    ModelConfig,
)

__all__ = [
    "AUTHORS_MEAN_PIXEL",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LITE",
    "LITE1",
    "LITE2",
    "PAPER",
    "PAPER_AUTHORS_INPUT",
    "ModelConfig",
]
