"""Whether a training loader puts its samples in a random order, which makes adjacent pairing as good as random."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler

__all__ = ["loader_shuffles"]


def _sampler_shuffles(sampler: Any) -> bool:
    if isinstance(sampler, BatchSampler):
        return _sampler_shuffles(sampler.sampler)
    if isinstance(sampler, RandomSampler):
        return True
    # Lightning's injected samplers: the plain one, and the wrapper that shuffles a custom sampler's indices
    return isinstance(sampler, DistributedSampler) and bool(sampler.shuffle)


def loader_shuffles(loaders: Any) -> bool:
    """Whether every :class:`~torch.utils.data.DataLoader` in ``loaders`` draws its samples in a random order.

    True for a ``RandomSampler`` (``shuffle=True``) and a ``DistributedSampler`` with ``shuffle=True`` (what
    Lightning puts in place of a ``RandomSampler`` under DDP), directly or inside the loader's ``BatchSampler``.
    False for anything it cannot vouch for: sequential samplers, custom samplers and batch samplers, iterable
    datasets, ``batch_size=None`` (the dataset builds the batches), loaders that are not ``DataLoader`` s, and an
    empty collection.

    Args:
        loaders: a DataLoader, or a list, tuple or dict of them (what ``trainer.train_dataloader`` returns).

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> data = TensorDataset(torch.arange(8))
        >>> loader_shuffles(DataLoader(data, shuffle=True)), loader_shuffles(DataLoader(data))
        (True, False)
    """
    leaves = list(_leaves(loaders))
    return bool(leaves) and all(isinstance(leaf, DataLoader) and _loader_shuffles(leaf) for leaf in leaves)


def _leaves(loaders: Any) -> Iterator[Any]:
    if isinstance(loaders, Mapping):
        loaders = list(loaders.values())
    if isinstance(loaders, (list, tuple)):
        for item in loaders:
            yield from _leaves(item)
    else:
        yield loaders


def _loader_shuffles(loader: DataLoader[Any]) -> bool:
    # without a batch sampler (batch_size=None) the dataset builds the batches, in an order nobody vouches for
    return loader.batch_sampler is not None and _sampler_shuffles(loader.batch_sampler)
