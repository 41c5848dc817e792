"""Elementwise building blocks shared by the mixing kernels: weights' layout, exact selection, float32 blending."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["BLOCK_BYTES", "EXACT_FLOATS", "BlockSource", "along", "lerp_in_float32_", "select_", "written_out"]

EXACT_FLOATS = (torch.float32, torch.float64)  # mixed in their own dtype; others go through float32
BLOCK_BYTES = 4 << 20  # a working set that stays in a CPU cache
_BIT_VIEWS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_MATERIALISE = 64  # weights broadcast over fewer trailing values than this are written out

BlockSource = Callable[[str, tuple[int, ...], torch.dtype, torch.device], Tensor]
"""``block(name, shape, dtype, device)``: a scratch tensor kept under ``name``, valid until its next request."""


def along(span: Tensor, dim: int, lead: tuple[int, ...], size: int) -> Tensor:
    """``span`` ``(n, size)`` viewed with its positions along ``dim`` of a tensor whose other sizes are ``lead``."""
    shape = list(lead)
    shape[dim] = size
    return span.reshape(shape)


def written_out(shape: Sequence[int], inner: int) -> tuple[int, ...]:
    """The sizes after dim ``inner`` that a weight varying up to ``inner`` should be written out over, or ``()``.

    A broadcast over only a few trailing values (e.g. the 3 channels of a channels_last batch) is several times
    slower than reading a weight written out in full; a longer broadcast is fine.
    """
    trailing = tuple(int(s) for s in shape[inner + 1 :])
    return trailing if 1 < math.prod(trailing) <= _MATERIALISE else ()


def select_(own: Tensor, other: Tensor, take: Tensor, scratch: Tensor) -> None:
    """``own <- where(take, other, own)`` bit for bit and branch-free, on same-width integer views of any dtype.

    ``take`` is a 0/1 tensor broadcastable against ``own``; ``scratch`` is a buffer shaped like ``own`` (it may be
    ``other`` itself when ``other`` is not needed afterwards).
    """
    bits = _BIT_VIEWS[own.element_size()]  # complex batches arrive as their real views: 1 to 8 bytes
    mine, theirs, diff = own.view(bits), other.view(bits), scratch.view(bits)
    mask = take.to(bits).neg_()  # all ones where taken
    mine.bitwise_xor_(torch.bitwise_xor(theirs, mine, out=diff).bitwise_and_(mask))


def lerp_in_float32_(
    y: Tensor, other: Tensor, weight: Tensor | float, block: BlockSource, samples: int | None = None
) -> None:
    """``y <- y + w·(other − y)`` in float32, rounded once to ``y``'s dtype (to nearest for integers).

    Works through float32 copies of ``samples`` samples at a time (default: a few MiB), taken from ``block``.
    ``weight`` is a float32 value, or broadcasts against ``y`` with a leading dim of 1 or ``y.shape[0]``.
    """
    size = y.shape[0]
    step = min(size, samples or max(1, BLOCK_BYTES // (4 * max(1, y[0].numel()))))
    shape = (step, *y.shape[1:])
    mine, theirs = (block(name, shape, torch.float32, y.device) for name in ("own32", "other32"))
    if isinstance(weight, Tensor):
        weight = weight.expand(size, *weight.shape[1:])
    for start in range(0, size, step):
        stop = min(start + step, size)
        mixed = mine[: stop - start].copy_(y[start:stop])
        w = weight if isinstance(weight, float) else weight[start:stop]
        mixed.lerp_(theirs[: stop - start].copy_(other[start:stop]), w)
        if not y.dtype.is_floating_point:
            mixed.round_()
            if y.element_size() >= 4:  # float32 rounds the top of int32/int64 up to 2^31/2^63, which would wrap
                mixed.clamp_(max=_float32_below(y.dtype))
        y[start:stop].copy_(mixed)


def _float32_below(dtype: torch.dtype) -> float:
    """The largest float32 that ``dtype``'s range holds: ``2^(bits-1) − 2^(bits-25)`` for 32 and 64 bits."""
    bits = torch.iinfo(dtype).bits
    return float(2 ** (bits - 1) - 2 ** (bits - 25))
