"""Old import path of :mod:`mattecli.models.config`, kept so that ``mattecli.config`` keeps working.

The configs are :mod:`mattecli.models.config`'s; looking one up by name (``get_config``,
``config_names``, ``register_config``) is :mod:`mattecli.modelfiles.catalog`'s, re-exported here as before.
"""

from mattecli.modelfiles.catalog import config_names, get_config, register_config
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
    "config_names",
    "get_config",
    "register_config",
]
