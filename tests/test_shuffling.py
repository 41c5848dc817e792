"""`loader_shuffles`: True only when every DataLoader of a training collection draws its samples in random order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    TensorDataset,
)

from lightning_mix.shuffling import loader_shuffles

DATA = TensorDataset(torch.arange(12.0))


class Reversed(Sampler[int]):
    """A custom sampler: a fixed order nobody can vouch for."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.n - 1, -1, -1))

    def __len__(self) -> int:
        return self.n


class Stream(IterableDataset):
    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(torch.arange(12.0))


def distributed(shuffle: bool) -> DistributedSampler:
    return DistributedSampler(DATA, num_replicas=2, rank=1, shuffle=shuffle, seed=3)  # no process group needed


def wrapper(shuffle: bool) -> DistributedSamplerWrapper:
    return DistributedSamplerWrapper(Reversed(len(DATA)), num_replicas=2, rank=0, shuffle=shuffle)


def shuffled() -> DataLoader:
    return DataLoader(DATA, batch_size=4, shuffle=True)


def sequential() -> DataLoader:
    return DataLoader(DATA, batch_size=4)


LOADERS = {
    # shuffling loaders
    "shuffle=True": (shuffled, True),
    "sampler=RandomSampler": (lambda: DataLoader(DATA, batch_size=3, sampler=RandomSampler(DATA)), True),
    "RandomSampler with replacement": (
        lambda: DataLoader(DATA, batch_size=3, sampler=RandomSampler(DATA, replacement=True, num_samples=6)),
        True,
    ),
    "DistributedSampler(shuffle=True)": (lambda: DataLoader(DATA, batch_size=3, sampler=distributed(True)), True),
    "batch_sampler=BatchSampler(RandomSampler)": (
        lambda: DataLoader(DATA, batch_sampler=BatchSampler(RandomSampler(DATA), batch_size=4, drop_last=False)),
        True,
    ),
    "batch_sampler=BatchSampler(DistributedSampler(shuffle=True))": (
        lambda: DataLoader(DATA, batch_sampler=BatchSampler(distributed(True), batch_size=2, drop_last=True)),
        True,
    ),
    "DistributedSamplerWrapper(shuffle=True)": (lambda: DataLoader(DATA, batch_size=2, sampler=wrapper(True)), True),
    # loaders in an order nobody vouches for
    "shuffle=False": (sequential, False),
    "sampler=SequentialSampler": (lambda: DataLoader(DATA, batch_size=3, sampler=SequentialSampler(DATA)), False),
    "DistributedSampler(shuffle=False)": (lambda: DataLoader(DATA, batch_size=3, sampler=distributed(False)), False),
    "batch_sampler=BatchSampler(DistributedSampler(shuffle=False))": (
        lambda: DataLoader(DATA, batch_sampler=BatchSampler(distributed(False), batch_size=2, drop_last=True)),
        False,
    ),
    "DistributedSamplerWrapper(shuffle=False)": (
        lambda: DataLoader(DATA, batch_size=2, sampler=wrapper(False)),
        False,
    ),
    "custom sampler": (lambda: DataLoader(DATA, batch_size=3, sampler=Reversed(len(DATA))), False),
    "batch_sampler=BatchSampler(SequentialSampler)": (
        lambda: DataLoader(DATA, batch_sampler=BatchSampler(SequentialSampler(DATA), batch_size=4, drop_last=False)),
        False,
    ),
    "custom batch sampler": (lambda: DataLoader(DATA, batch_sampler=[[5, 1, 9], [0, 2, 4]]), False),
    "iterable dataset": (lambda: DataLoader(Stream(), batch_size=4), False),
    "batch_size=None with shuffle=True": (lambda: DataLoader(DATA, batch_size=None, shuffle=True), False),
    "batch_size=None": (lambda: DataLoader(DATA, batch_size=None), False),
}


@pytest.mark.parametrize("name", list(LOADERS))
def test_a_single_loader(name: str) -> None:
    make, expected = LOADERS[name]
    loader = make()
    assert loader_shuffles(loader) is expected
    assert loader_shuffles([loader]) is expected and loader_shuffles({"only": loader}) is expected


def test_the_distributed_samplers_need_no_process_group() -> None:
    assert not torch.distributed.is_initialized()
    for sampler in (distributed(True), distributed(False), wrapper(True), wrapper(False)):
        assert len(list(sampler)) == len(DATA) // 2  # one rank's half


@pytest.mark.parametrize(
    ("loaders", "expected"),
    [
        pytest.param(lambda: [shuffled(), shuffled()], True, id="list"),
        pytest.param(lambda: (shuffled(), shuffled()), True, id="tuple"),
        pytest.param(lambda: {"a": shuffled(), "b": [shuffled(), (shuffled(),)]}, True, id="nested"),
        pytest.param(lambda: {"a": {"b": {"c": shuffled()}}}, True, id="deep-dict"),
        pytest.param(lambda: {"a": shuffled(), "b": [shuffled(), (sequential(),)]}, False, id="nested-one-sequential"),
        pytest.param(lambda: [shuffled(), sequential()], False, id="one-of-two-sequential"),
        pytest.param(lambda: {"a": sequential(), "b": sequential()}, False, id="all-sequential"),
    ],
)
def test_every_loader_of_a_collection_must_shuffle(loaders: Any, expected: bool) -> None:
    assert loader_shuffles(loaders()) is expected


@pytest.mark.parametrize(
    "loaders",
    [
        pytest.param(lambda: [], id="empty-list"),
        pytest.param(lambda: (), id="empty-tuple"),
        pytest.param(lambda: {}, id="empty-dict"),
        pytest.param(lambda: {"a": [], "b": {}}, id="nested-empty"),
        pytest.param(lambda: None, id="none"),
        pytest.param(lambda: [torch.arange(4), torch.arange(4)], id="tensors"),
        pytest.param(lambda: iter([torch.arange(4)]), id="iterator"),
        pytest.param(lambda: RandomSampler(DATA), id="a-sampler-not-a-loader"),
        pytest.param(lambda: [shuffled(), [[0, 1], [2, 3]]], id="a-shuffling-loader-and-a-list-of-batches"),
        pytest.param(lambda: {"a": shuffled(), "b": None}, id="a-shuffling-loader-and-none"),
    ],
)
def test_nothing_to_vouch_for_is_false(loaders: Any) -> None:
    assert loader_shuffles(loaders()) is False
