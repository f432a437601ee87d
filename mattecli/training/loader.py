"""Feeding the trainer: a resumable, rank-aware batch order, and the data's skip reports passed on.

Resuming a run must replay exactly the samples an uninterrupted run would have seen, and a run over N
processes must see exactly the global batches of a one-process run. Both follow from one rule: the order is
a pure function of (seed, epoch). Epoch ``e`` is a permutation of the dataset drawn from a generator seeded
with (seed, e); global batch ``b`` is its slice ``[b * G, (b + 1) * G)``; process ``r`` of ``N`` takes the
``r``-th of N equal parts of that slice. Samples left over at the end of an epoch are dropped (as
``drop_last`` does), so every step consumes one full global batch and the step counter alone says where a
run is: epoch = step // steps_per_epoch, batch = step % steps_per_epoch.

Augmentation randomness is made a pure function of the same key: before a sample is read, the process's
RNGs (and the dataset's, where it has one) are seeded from (seed, epoch, global position). The same sample
position gets the same crop whichever process or worker reads it, before or after a resume.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mattecli.training.runconfig import RunConfig


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for the sample at a global position of an epoch (SeedSequence mixes the parts)."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, position]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class GlobalBatchSampler:
    """Yields this process's share of each global batch as keys ``(epoch, position, index)``.

    Args:
        dataset_size: Number of samples in the dataset (one epoch).
        global_batch: Samples per optimiser step over all processes.
        rank, world_size: This process's share: ``global_batch / world_size`` consecutive samples.
        seed: The run's seed; the order of epoch ``e`` depends on (seed, e) only.
        shuffle: False keeps dataset order (validation).
    """

    def __init__(
        self,
        dataset_size: int,
        global_batch: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by the {world_size} processes")
        if dataset_size < global_batch:
            raise ValueError(
                f"the data set has {dataset_size} samples, fewer than one batch of {global_batch}"
            )
        self.dataset_size = dataset_size
        self.global_batch = global_batch
        self.local_batch = global_batch // world_size
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.steps_per_epoch = dataset_size // global_batch
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start_batch`` on (the resume point)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.dataset_size)
        generator = torch.Generator().manual_seed(sample_seed(self.seed, epoch, -1 & 0xFFFFFFFF))
        return torch.randperm(self.dataset_size, generator=generator)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        order = self.order(self.epoch).tolist()
        for batch in range(self.start_batch, self.steps_per_epoch):
            first = batch * self.global_batch + self.rank * self.local_batch
            yield [
                (self.epoch, position, order[position]) for position in range(first, first + self.local_batch)
            ]

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_batch


class KeyedSamples(Dataset):
    """Reads ``base[index]`` for a key ``(epoch, position, index)`` with RNGs seeded from the key, and
    hands on what the data package skipped while reading it.

    Skipping is the data package's job alone (:class:`~mattecli.data.MatteDataset` takes the next readable
    sample and reports the bad file once through its :class:`~mattecli.data.sources.Reporter`). Here the
    reporter is switched to keeping its reports, which travel with the sample (``"skipped"``: list of
    messages), so the main process logs them whichever worker met the file.
    """

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base = base
        self.seed = seed
        self.reporter = getattr(base, "reporter", None)
        if self.reporter is not None:
            self.reporter.collect()

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, Any]:
        epoch, position, index = key
        seed_rngs(sample_seed(self.seed, epoch, position), self.base)
        sample = dict(self.base[index])
        sample["skipped"] = self.reporter.take() if self.reporter is not None else []
        return sample


def seed_rngs(seed: int, dataset: Any = None) -> None:
    """Seed Python's, NumPy's and torch's global RNGs and the dataset's own generator.

    The data package's :class:`~mattecli.data.MatteDataset` draws augmentations from one generator per
    process; ``reseed`` replaces it by one seeded from the sample's key, so augmentation does not depend on
    worker count or on where a resumed run restarted.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.random.default_generator.manual_seed(seed)  # the CPU generator only; CUDA's is not used here
    if dataset is None:
        return
    dataset.reseed(seed)


def keyed_collate(collate: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> Callable:
    """Wrap the data package's collate: pull out the skip reports, collate the rest."""

    def wrapped(samples: list[dict[str, Any]]) -> dict[str, Any]:
        skipped = [message for s in samples for message in s.pop("skipped", [])]
        batch = collate(samples)
        batch["skipped"] = skipped
        return batch

    return wrapped


def build_training_data(
    config: RunConfig, rank: int, world_size: int, pin_memory: bool
) -> tuple[GlobalBatchSampler, DataLoader]:
    """The run's batch order and its DataLoader over the training data.

    Refuses a global batch that the processes cannot share equally, or that the data cannot fill once.
    """
    from mattecli.data import build_dataset, collate, worker_init_fn
    from mattecli.errors import MatteError

    base = build_dataset(
        config.data, size=config.size, train=True, seed=config.seed, epoch_length=config.epoch_length
    )
    if config.batch_size % world_size:
        raise MatteError(
            f"--batch-size {config.batch_size} (the global batch) is not divisible by the "
            f"{world_size} processes"
        )
    if len(base) < config.batch_size:
        raise MatteError(
            f"the training data has {len(base)} samples, fewer than one batch of {config.batch_size}",
            config.data,
        )
    sampler = GlobalBatchSampler(len(base), config.batch_size, rank, world_size, config.seed)
    loader = DataLoader(
        KeyedSamples(base, config.seed),
        batch_sampler=sampler,
        num_workers=config.workers,
        collate_fn=keyed_collate(collate),
        worker_init_fn=worker_init_fn if config.workers else None,
        persistent_workers=config.workers > 0,
        pin_memory=pin_memory,
    )
    return sampler, loader
