"""Training and validation data for mattecli: sources, augmentation and their weighted mixture.

Typical use by a trainer::

    spec = load_data_spec("data.toml")            # or a data folder, layout auto-detected
    train_set = build_dataset(spec, size=320, train=True, seed=0)
    loader = DataLoader(train_set, batch_size=8, shuffle=True, num_workers=2, collate_fn=collate,
                        worker_init_fn=worker_init_fn, generator=torch.Generator().manual_seed(0))

Each item is a dict with ``image`` (3 x H x W) and ``alpha`` (1 x H x W) float tensors in [0, 1], a ``name``
and, in eval mode for sources with a ``trimap/`` folder, a ``trimap`` (1 x H x W, values 0, 0.5, 1).
"""

from __future__ import annotations

from mattecli.data.augment import AugmentConfig
from mattecli.data.mixture import MatteDataset, build_dataset, collate, worker_init_fn
from mattecli.data.spec import (
    DataSpec,
    SourceSpec,
    detect_kind,
    list_names,
    load_data_spec,
    make_split,
    read_names,
    write_names,
)

__all__ = [
    "AugmentConfig",
    "DataSpec",
    "MatteDataset",
    "SourceSpec",
    "build_dataset",
    "collate",
    "detect_kind",
    "list_names",
    "load_data_spec",
    "make_split",
    "read_names",
    "worker_init_fn",
    "write_names",
]
