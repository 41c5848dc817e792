"""One-pass mixing of adjacent pairs: samples ``2k`` and ``2k + 1`` swap, and each pair is read and written once.

Used by :func:`~lightning_mix.functional.mix_` when the parameters were drawn with ``pairing="adjacent"``. The
batch is walked a few MiB of pairs at a time: a copy of the even samples of the block goes to a scratch buffer,
the even samples are blended with the odd ones, then the odd ones with the copy. On CPU the block stays in the
cache, so the batch crosses the memory bus about once each way, the traffic of one copy; on other devices the
block is the whole batch (half a batch of scratch), or a slice of it small enough that the float32 working
copies of low-precision MixUp stay under half the batch's bytes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_mix.functional._blend import (
    BLOCK_BYTES,
    EXACT_FLOATS,
    BlockSource,
    along,
    lerp_in_float32_,
    select_,
    written_out,
)
from lightning_mix.functional.params import MixParams

__all__ = ["mix_adjacent_"]

_CPU_BLOCK_BYTES = BLOCK_BYTES  # a block of pairs (both halves) that stays in a CPU cache


def _weight(y: Tensor, offset: Tensor, spans: list[Tensor], cuts: list[int], mixup: bool, block: BlockSource) -> Tensor:
    """The partner's weight ``offset + prod(spans)`` for the samples of ``offset``, broadcastable against ``y``.

    ``offset`` ``(n,)`` is ``1 − λ`` for MixUp samples and 0 otherwise; ``spans`` are ``(n, size)`` 0/1 floats per
    cut dim, all zero for samples that CutMix does not mix. The result lives in ``block`` scratch (valid until
    the next call) and is never batch-sized.
    """
    lead = (offset.shape[0],) + (1,) * (y.ndim - 1)
    weight = offset.view(lead)
    if not cuts:
        return weight
    factors = [along(span, dim, lead, y.shape[dim]) for dim, span in zip(cuts, spans, strict=True)]
    shape = list(lead)
    for dim in cuts:
        shape[dim] = y.shape[dim]
    if len(factors) == 1 and not mixup:
        box = factors[0]
    else:  # products of broadcast 0/1 rows: a broadcast addcmul is several times slower
        box = block("weight", tuple(shape), torch.float32, y.device)
        if len(factors) == 1:
            torch.add(factors[0], weight, out=box)
        else:  # one pass writes the product of the first two
            torch.mul(factors[0].expand(box.shape), factors[1], out=box)
            for factor in factors[2:]:
                box.mul_(factor)
            if mixup:
                box.add_(weight)
    inner = max(cuts)
    tail = written_out(y.shape, inner)
    if tail:
        full = (*box.shape[: inner + 1], *tail)
        box = block("weight_full", full, torch.float32, y.device).copy_(box.expand(full))
    return box


def mix_adjacent_(
    y: Tensor,
    params: MixParams,
    cuts: list[int],
    spans: list[Tensor],
    block: BlockSource,
    weight: float | None = None,
) -> None:
    """Mix ``y`` (contiguous, batch first) in place, each sample with its adjacent partner.

    Args:
        y: the batch, contiguous with the cut dims at ``cuts``.
        params: parameters drawn with ``pairing="adjacent"``.
        cuts: the positions of the cut dims in ``y``, in the order of ``params.box``; empty for MixUp alone.
        spans: per cut dim, ``(B, size)`` bools of the positions inside each sample's box (one row if shared).
        block: returns a scratch buffer by name, shape, dtype and device (reused across calls).
        weight: one MixUp weight of the partner for every sample, known on the host (``cuts`` empty); the
            weights are built from ``params`` when None.
    """
    n, device = y.shape[0], y.device
    shared: Tensor | float | None = weight
    if shared is None:
        rows = 1 if params.shared else n
        offset = torch.zeros(rows, device=device)
        if params.has_mixup:
            lam, cutmix, mixed = (
                t[:rows].to(device, non_blocking=True) for t in (params.lam, params.cutmix, params.mixed)
            )
            offset = torch.where(cutmix | ~mixed, offset, 1.0 - lam)
        floats = [span.to(torch.float32) for span in spans]
        shared = _weight(y, offset, floats, cuts, params.has_mixup, block) if params.shared else None
    blend = _Blend(y, params, block)
    if weight is not None:
        blend.select, blend.converts = False, not blend.exact  # a scalar MixUp weight: a blend, never a select

    def weights(start: int, stop: int) -> Tensor | float:
        if shared is not None:
            return shared
        return _weight(y, offset[start:stop], [f[start:stop] for f in floats], cuts, params.has_mixup, block)

    if n % 2:  # the odd one out takes from the sample before it, which is still unmixed
        blend(y[n - 1 :], y[n - 2 : n - 1], weights(n - 1, n))
    half = n // 2
    pairs = y[: 2 * half].view(half, 2, *y.shape[1:])
    sample_bytes = y[0].numel() * max(y.element_size(), 4 if blend.converts else 1)
    if device.type == "cpu":
        step = max(1, min(half, _CPU_BLOCK_BYTES // (2 * sample_bytes)))
    else:  # as few blocks as keep the scratch under half a batch
        step = max(1, min(half, n * y[0].numel() * y.element_size() // (2 * _scratch_per_pair(y, cuts, blend, shared))))
    for start in range(0, half, step):  # a loop over cache-sized blocks, not over samples
        stop = min(start + step, half)
        w = weights(2 * start, 2 * stop)
        w_even: Tensor | float = w
        w_odd: Tensor | float = w
        if shared is None and isinstance(w, Tensor):  # per-sample weights: split them by pair
            pair_weights = w.view(stop - start, 2, *w.shape[1:])
            w_even, w_odd = pair_weights[:, 0], pair_weights[:, 1]
        even, odd = pairs[start:stop, 0], pairs[start:stop, 1]
        saved = block("even", even.shape, y.dtype, device).copy_(even)
        blend(even, odd, w_even)
        blend(odd, saved, w_odd)


def _scratch_per_pair(y: Tensor, cuts: list[int], blend: _Blend, shared: Tensor | float | None) -> int:
    """Bytes of scratch a block needs per pair: the saved even sample, the weights and the blend's buffers."""
    sample = y[0].numel()
    weights = 0
    if shared is None and cuts:
        spread = math.prod(written_out(y.shape, max(cuts)))
        weights = 2 * 4 * math.prod(y.shape[d] for d in cuts) * spread
    working = 2 * 4 * sample if blend.converts else (sample * y.element_size() if blend.select else 0)
    return sample * y.element_size() + weights + working


class _Blend:
    """``own <- own + w·(other − own)`` for one dtype and configuration, with scratch from ``block``."""

    def __init__(self, y: Tensor, params: MixParams, block: BlockSource) -> None:
        self.dtype, self.block = y.dtype, block
        self.exact = y.dtype in EXACT_FLOATS
        self.select = not self.exact and not params.has_mixup
        self.converts = not self.exact and params.has_mixup

    def __call__(self, own: Tensor, other: Tensor, weight: Tensor | float) -> None:
        if self.exact:
            own.lerp_(other, weight if isinstance(weight, float) else weight.to(self.dtype))
        elif self.select and isinstance(weight, Tensor):
            select_(own, other, weight, self.block("diff", own.shape, self.dtype, own.device))
        else:  # float32 arithmetic, one rounding back to the batch's dtype; the caller sized the block
            lerp_in_float32_(own, other, weight, self.block, samples=own.shape[0])
