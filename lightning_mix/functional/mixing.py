"""In-place application of :class:`MixParams` to a batch tensor (images, video, 1-D signals, masks)."""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_mix.functional._adjacent import mix_adjacent_
from lightning_mix.functional._blend import (
    BLOCK_BYTES,
    EXACT_FLOATS,
    BlockSource,
    along,
    lerp_in_float32_,
    select_,
    written_out,
)
from lightning_mix.functional._checks import expected
from lightning_mix.functional._host_boxes import host_boxes_pay, paste_boxes_on_host_
from lightning_mix.functional.params import BatchDraw, MixParams, _float32

__all__ = ["Workspace", "box_mask", "default_cut_dims", "mix_", "pixel_weight"]


_SHORT_ROW_BYTES = 128  # two cache lines


def default_cut_dims(ndim: int) -> tuple[int, ...]:
    """The dimensions CutMix cuts along by default, counted from the end.

    ``(B, C, L)`` signals are cut along time (``(-1,)``); images ``(B, C, H, W)`` and video
    ``(B, C, T, H, W)`` along height and width (``(-2, -1)``), so a video box spans every frame.

    Example:
        >>> default_cut_dims(3), default_cut_dims(4), default_cut_dims(5)
        ((-1,), (-2, -1), (-2, -1))
    """
    if ndim < 3:
        raise ValueError(expected("input.ndim", ">= 3, a batch (B, C, *spatial)", ndim))
    return (-1,) if ndim == 3 else (-2, -1)


def _dims(cut_dims: Sequence[int] | None, ndim: int, has_cutmix: bool) -> tuple[int, ...]:
    """The sorted negative dims to cut along; none for MixUp alone without ``cut_dims`` (``(B, F)`` is fine)."""
    if type(cut_dims) is tuple and all(type(d) is int for d in cut_dims):
        return _hashable_dims(cut_dims, ndim, has_cutmix)
    if cut_dims is None:
        return _hashable_dims(None, ndim, has_cutmix)
    return _normalise_cut_dims(cut_dims, ndim)


@functools.lru_cache(maxsize=256)
def _hashable_dims(cut_dims: tuple[int, ...] | None, ndim: int, has_cutmix: bool) -> tuple[int, ...]:
    if cut_dims is not None:
        return _normalise_cut_dims(cut_dims, ndim)
    return _normalise_cut_dims(default_cut_dims(ndim), ndim) if has_cutmix else ()


def _normalise_cut_dims(cut_dims: Sequence[int], ndim: int) -> tuple[int, ...]:
    dims = tuple(int(d) for d in cut_dims)
    if not dims or any(not -ndim < d < 0 for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(
            expected("cut_dims", f"distinct negative dims in [{1 - ndim}, -1] that leave the batch dim out", cut_dims)
        )
    return tuple(sorted(dims))


def box_mask(params: MixParams, shape: Sequence[int], cut_dims: Sequence[int]) -> Tensor:
    """The CutMix paste mask of every sample, broadcastable against a batch of ``shape``.

    Args:
        params: the parameters of the step.
        shape: the batch's shape ``(B, ...)``.
        cut_dims: negative dimensions the boxes span, in the order of ``params.box``.

    Returns:
        A bool tensor with ``shape``'s sizes along the batch and cut dimensions and 1 elsewhere.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> from lightning_mix.functional.params import sample_mix_params
        >>> p = sample_mix_params(2, (4, 6), cutmix_alpha=1.0, generator=g)
        >>> box_mask(p, (2, 3, 4, 6), (-2, -1)).shape
        torch.Size([2, 1, 4, 6])
    """
    ndim = len(shape)
    dims = _normalise_cut_dims(cut_dims, ndim)
    mask = torch.ones((), dtype=torch.bool, device=params.box.device)
    for k, dim in enumerate(dims):
        size = int(shape[dim])
        positions = torch.arange(size, device=params.box.device)
        inside = (positions >= params.box[:, k, :1]) & (positions < params.box[:, k, 1:])
        view = [shape[0]] + [1] * (ndim - 1)
        view[dim] = size
        mask = mask & inside.view(view)
    return mask


def pixel_weight(params: MixParams, shape: Sequence[int], cut_dims: Sequence[int]) -> Tensor:
    """The weight of the partner at every position: ``1 − λ`` for MixUp, the box mask for CutMix, 0 unmixed.

    Mixing is then ``x + w·(x_partner − x)`` everywhere, for pixels and per-pixel targets alike.

    Args:
        params: the parameters of the step.
        shape: the batch's shape ``(B, ...)``.
        cut_dims: negative dimensions the boxes span.

    Returns:
        A float32 tensor broadcastable against ``shape`` (size 1 along dimensions nothing varies on).

    Example:
        >>> from lightning_mix.functional.params import sample_mix_params
        >>> p = sample_mix_params(2, (), mixup_alpha=1.0, generator=torch.Generator().manual_seed(0))
        >>> w = pixel_weight(p, (2, 3, 4, 4), (-2, -1))
        >>> w.shape, torch.allclose(w.flatten(), 1 - p.lam)
        (torch.Size([2, 1, 1, 1]), True)
    """
    lead = (-1,) + (1,) * (len(shape) - 1)
    weight = (1.0 - params.lam).view(lead)
    if params.has_cutmix:
        cut = box_mask(params, shape, cut_dims).to(weight.dtype)
        weight = torch.where(params.cutmix.view(lead), cut, weight)
    return weight * params.mixed.view(lead)


class Workspace:
    """Scratch buffers reused across steps, so mixing allocates no batch-sized tensor per call.

    Pass the same instance to every :func:`mix_` call; it re-allocates only when the batch's shape, dtype,
    device or memory layout changes. With random partners it holds one batch-sized buffer (the partners'
    values, in the batch's dtype); with adjacent partners, blocks of a few MiB on CPU and half a batch on other
    devices. MixUp of low-precision or integer batches adds float32 blocks of a few MiB.

    Example:
        >>> ws = Workspace()
        >>> a = ws.get(torch.zeros(2, 3, 4, 4), torch.float32)
        >>> a is ws.get(torch.ones(2, 3, 4, 4), torch.float32)
        True
    """

    def __init__(self) -> None:
        self._buffer: Tensor | None = None
        self._blocks: dict[tuple[str, torch.dtype], Tensor] = {}

    def get(self, like: Tensor, dtype: torch.dtype) -> Tensor:
        """Return a buffer with ``like``'s shape, device and strides, and ``dtype``."""
        buf = self._buffer
        if (
            buf is None
            or buf.shape != like.shape
            or buf.dtype != dtype
            or buf.device != like.device
            or (buf.stride() != like.stride())
        ):
            buf = torch.empty_strided(like.shape, like.stride(), dtype=dtype, device=like.device)
            self._buffer = buf
        return buf

    def block(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
        """Return a contiguous scratch tensor of ``shape``, a view of a buffer kept under ``name`` and ``dtype``."""
        strides, size = [], 1
        for extent in reversed(shape):
            strides.append(size)
            size *= extent
        buf = self._blocks.get((name, dtype))
        if buf is None or buf.numel() < size or buf.device != device:
            buf = self._blocks[(name, dtype)] = torch.empty(size, dtype=dtype, device=device)
        return buf.as_strided(shape, strides[::-1])  # (cheaper than slicing and viewing)


def _check_batch(x: Tensor, params: MixParams, dims: tuple[int, ...], name: str = "input") -> None:
    if x.shape[0] != params.batch_size:
        raise ValueError(
            expected(f"{name}.shape[0]", f"the batch size of the parameters ({params.batch_size})", x.shape[0])
        )
    if params.has_cutmix:
        sizes = tuple([x.shape[d] for d in dims])
        if sizes != params.cut_sizes:
            raise ValueError(
                expected(
                    f"the sizes of {name} dims {dims}",
                    f"the sizes the boxes were drawn for, {params.cut_sizes}",
                    sizes,
                    "Sample the parameters with the input's sizes along `cut_dims`.",
                )
            )


def mix_(
    x: Tensor,
    params: MixParams,
    *,
    cut_dims: Sequence[int] | None = None,
    workspace: Workspace | None = None,
    validate_args: bool = False,
) -> Tensor:
    """Mix a batch in place: ``x[i] <- mix(x[i], x[partner[i]])`` with MixUp or CutMix per ``params``.

    MixUp samples become ``λ·x_i + (1−λ)·x_partner``; CutMix samples get the partner's box pasted. Float32 and
    float64 batches are mixed in their own dtype, complex ones as their real and imaginary parts; float16,
    bfloat16 and integer batches are mixed in float32 and cast back (integers rounded to nearest), so the pixel
    weights are exactly λ. A pure CutMix configuration does no rounding and works for every dtype: integer
    values are selected bit for bit, floating ones with weights that are exactly 0 or 1, which returns every
    finite value unchanged (up to the sign of a zero) as long as differences do not overflow (see below). Memory
    layout (e.g. channels_last) is kept.

    Values that are blended must be finite: ``x + w·(x_partner − x)`` turns ±inf and NaN into NaN, in the sample
    that holds them and in its partner, even where the weight is 0 (``0·inf`` is NaN). This concerns float32,
    float64 and complex batches, and float16/bfloat16 batches when MixUp is on; ``validate_args=True`` checks it.
    Float32, float64 and complex batches are blended in their own dtype, CutMix included (a ``lerp_`` with weights
    of 0 or 1, about twice as fast as a bit select), so ``x_partner − x`` must not overflow either: a batch with
    values of both signs near the dtype's largest value (a range ``max − min`` beyond ``finfo.max``) can get NaN
    or inf; ``validate_args=True`` refuses such a range.

    With ``params.adjacent`` (``pairing="adjacent"``) each pair of neighbours is mixed in one pass, a few MiB
    of pairs at a time on CPU: the even samples of a block are saved to scratch, then both sides are blended, so
    the batch crosses memory about once each way. Otherwise the work is two passes over the batch. The
    partners' values are gathered into a reusable buffer, by sample, or for per-sample CutMix boxes by row (the
    innermost cut dimension and everything after it), taking the partner's row only where the box crosses it;
    one ``lerp_`` then blends them in with a weight that varies along the samples and the innermost cut
    dimension only, or, for a box the whole batch shares (``params.shared``), along the cut dimensions only.
    No per-sample pixel mask is ever built.

    Args:
        x: the batch ``(B, ...)``; overwritten. Pass a copy to keep the original.
        params: parameters from :func:`~lightning_mix.functional.sample_mix_params` for this batch.
        cut_dims: negative dims the CutMix boxes span; :func:`default_cut_dims` when None.
        workspace: a :class:`Workspace` to reuse scratch buffers across calls.
        validate_args: check that the values to be blended are finite. This reads the batch, which on an
            accelerator is a host-device sync: check a first batch, not every step.

    Returns:
        ``x``, mixed.

    Raises:
        ValueError: if the batch does not match the parameters, or ``validate_args`` finds non-finite values.

    Example:
        >>> from lightning_mix.functional.params import sample_mix_params
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
        >>> p = sample_mix_params(2, (), mixup_alpha=1.0, generator=g)
        >>> y = mix_(x.clone(), p)
        >>> torch.allclose(y[0], 1 - p.lam[0].expand(1, 4, 4))
        True
    """
    if not isinstance(x, Tensor):
        raise TypeError(expected("input", "a torch.Tensor", type(x).__name__))
    if x.requires_grad and torch.is_grad_enabled():  # the writes are not part of any graph
        with torch.no_grad():
            return _mix(x, params, cut_dims, workspace, validate_args)
    return _mix(x, params, cut_dims, workspace, validate_args)


def _mix(
    x: Tensor,
    params: MixParams,
    cut_dims: Sequence[int] | None,
    workspace: Workspace | None,
    validate_args: bool,
) -> Tensor:
    dims = _dims(cut_dims, x.ndim, params.has_cutmix)
    _check_batch(x, params, dims)
    if validate_args:
        _check_finite(x, params)
    if x.is_complex():  # the real and imaginary parts, mixed as a real batch with a trailing dim of 2
        if x.is_conj():  # a lazy conjugate has no real view: mix the values it shows, then write them back
            return x.copy_(mix_(x.resolve_conj(), params, cut_dims=dims or None, workspace=workspace))
        mix_(torch.view_as_real(x), params, cut_dims=tuple(d - 1 for d in dims) or None, workspace=workspace)
        return x
    if x.is_contiguous():  # (the common case, without sorting strides)
        y, cuts = x, [d % x.ndim for d in dims] if params.has_cutmix else []
    else:
        order = _memory_order(x)
        if order is None:  # gaps or overlaps in memory: mix a dense copy
            return x.copy_(mix_(x.contiguous(), params, cut_dims=dims or None, workspace=workspace))
        y = x.permute(order)  # the same memory with the dims in memory order: contiguous
        cuts = [order.index(d % x.ndim) for d in dims] if params.has_cutmix else []
    block = functools.partial(_block, workspace)
    if params.draw is not None and params.shared:  # scalars known on the host: move the box, or blend by a scalar
        _mix_drawn_(y, params, params.draw, cuts, workspace, block)
        return x
    if host_boxes_pay(y, params):  # per-sample CutMix of large samples on CPU: slice copies of the boxes only
        paste_boxes_on_host_(y, params, cuts, block)
        return x
    box = params.box[:1] if params.shared else params.box  # a shared box serves every sample
    spans = _spans(box.to(x.device, non_blocking=True), [y.shape[d] for d in cuts]) if cuts else []
    # per-sample CutMix of bytes: the row gather beats the blocked bit select, whose broadcast masks are slow
    byte_boxes = x.element_size() == 1 and not params.has_mixup and not params.shared
    if params.adjacent and x.shape[0] > 1 and not byte_boxes:
        mix_adjacent_(y, params, cuts, spans, block)
        return x
    donor = _gather_partners(y, params, [] if params.shared else cuts, spans, workspace)
    weight = _partner_weight(y, params, cuts, spans)
    if x.dtype in EXACT_FLOATS:
        y.lerp_(donor, weight.to(x.dtype))
    elif not params.has_mixup:
        select_(y, donor, weight, donor)
    else:
        lerp_in_float32_(y, donor, weight, block)
    return x


def _mix_drawn_(
    y: Tensor, params: MixParams, draw: BatchDraw, cuts: list[int], workspace: Workspace | None, block: BlockSource
) -> None:
    """Mix ``y`` (contiguous, batch first) with a per-batch draw whose λ and box are host scalars.

    CutMix moves the box only: adjacent pairs swap their box regions through a scratch of half the box (a few
    MiB of pairs at a time on CPU); random partners' box regions are gathered into the front of the workspace's
    batch buffer, then copied in. MixUp blends every sample with one scalar weight.
    """
    if not draw.mixed or y.shape[0] == 1 or not (draw.cutmix or params.has_mixup):
        return  # (parameters narrowed to CutMix, e.g. to paste masks, do nothing for a MixUp draw)
    if draw.cutmix:
        shape, strides, offset = list(y.shape), y.stride(), y.storage_offset()
        for dim, (start, stop) in zip(cuts, draw.box, strict=True):
            shape[dim] = stop - start
            offset += start * strides[dim]
        region = y.as_strided(shape, strides, offset)  # the box of every sample: one view, not a narrow per dim
        if region.numel():
            batch_buffer = workspace.get(y, y.dtype) if workspace is not None and not params.adjacent else None
            # Rows of at most two cache lines: a box spanning 70% of a row touches the same lines as the row, and
            # saving whole rows makes one long copy of many short ones (measured: only such rows gain, on CPU).
            inner, (start, stop) = cuts[-1], draw.box[-1]
            short = y.shape[inner] * y.stride(inner) * y.element_size() <= _SHORT_ROW_BYTES
            wide = short and 10 * (stop - start) >= 7 * y.shape[inner] and y.device.type == "cpu"
            _paste_region_(region, params, batch_buffer, block, (inner, start, y.shape[inner]) if wide else None)
        return
    weight = _float32(1.0 - draw.lam)  # the partner's weight, as the general path computes it in float32
    if params.adjacent:
        mix_adjacent_(y, params, [], [], block, weight=weight)
        return
    donor = _gather_partners(y, params, [], [], workspace)
    if y.dtype in EXACT_FLOATS:
        y.lerp_(donor, weight)
    else:
        lerp_in_float32_(y, donor, weight, block)


def _paste_region_(
    region: Tensor,
    params: MixParams,
    batch_buffer: Tensor | None,
    block: BlockSource,
    rows: tuple[int, int, int] | None = None,
) -> None:
    """``region[i] <- region[partner[i]]`` for a strided view of the batch (the box of every sample), bit for bit.

    Random partners' boxes are gathered into the front of ``batch_buffer`` (the batch-sized buffer MixUp uses
    too, so the workspace never holds more than one batch); adjacent pairs swap through ``block`` scratch.
    ``rows`` (adjacent pairs): ``(dim, start, size)`` of the innermost cut dim, to save the even samples' boxes
    widened to whole rows along it: one long copy instead of many short rows, cheaper on CPU for a box that
    spans most of the row (the two other copies still move the box only).
    """
    n, device = region.shape[0], region.device
    if not params.adjacent:
        if batch_buffer is None:
            donor = torch.empty(region.shape, dtype=region.dtype, device=device)
        else:
            donor = batch_buffer.view(-1)[: region.numel()].view(region.shape)
        torch.index_select(region, 0, params.partner.to(device, non_blocking=True), out=donor)
        region.copy_(donor)
        return
    half, odd_one = divmod(n, 2)
    if odd_one:  # the odd one out takes from the sample before it, which is still unmixed
        region[n - 1].copy_(region[n - 2])
    box_bytes = region.numel() // n * region.element_size()
    step = max(1, min(half, BLOCK_BYTES // (2 * box_bytes))) if device.type == "cpu" else half
    shape, strides, offset = list(region.shape), region.stride(), region.storage_offset()
    every_other = (2 * strides[0], *strides[1:])  # the even (or odd) samples' boxes: views of any strides
    dim, lead, size = rows if rows is not None else (0, 0, 0)
    saved_shape = list(shape)
    if rows is not None:
        saved_shape[dim] = size
    for start in range(0, half, step):  # cache-sized blocks of pairs on CPU, not a loop over samples
        shape[0] = saved_shape[0] = min(step, half - start)
        even_offset = offset + 2 * start * strides[0]
        even = region.as_strided(shape, every_other, even_offset)
        odd = region.as_strided(shape, every_other, even_offset + strides[0])
        saved = block("box", tuple(saved_shape), region.dtype, device)
        if rows is None:
            saved.copy_(even)
        else:  # whole rows of the even samples, then the box within them
            saved = saved.copy_(region.as_strided(saved_shape, every_other, even_offset - lead * strides[dim]))
            saved = saved.narrow(dim, lead, shape[dim])
        even.copy_(odd)
        odd.copy_(saved)


def _check_finite(x: Tensor, params: MixParams) -> None:
    """Raise if ``x`` holds ±inf or NaN where mixing blends arithmetically (everything but a bit select).

    Float32, float64 and complex batches are blended in their own dtype, so ``x_partner − x`` must not overflow
    either: their range ``max − min`` must be finite.
    """
    blended = x.dtype in EXACT_FLOATS or x.is_complex() or (x.is_floating_point() and params.has_mixup)
    if x.numel() == 0 or not blended:
        return
    # One pass and nothing batch-sized: min and max are finite iff every value is (both propagate NaN).
    low, high = torch.aminmax(torch.view_as_real(x) if x.is_complex() else x)
    in_own_dtype = x.dtype in EXACT_FLOATS or x.is_complex()
    if bool(torch.isfinite(high - low) if in_own_dtype else torch.isfinite(low) & torch.isfinite(high)):  # a host read
        return
    bad = int(x.numel() - torch.isfinite(x).sum())  # the error path only
    if bad == 0:
        raise ValueError(
            expected(
                "input values",
                "within a range max − min that the dtype can hold, since mixing blends x + w·(x_partner − x), which "
                "turns a difference that overflows into inf or NaN",
                f"values from {float(low):.4g} to {float(high):.4g} in {x.dtype}",
                "Rescale the input, or mix it in float64.",
            )
        )
    raise ValueError(
        expected(
            "input values",
            "finite, since mixing blends x + w·(x_partner − x), which turns ±inf and NaN into NaN",
            f"{bad} non-finite of {x.numel()}",
            "Replace them before mixing, e.g. with `torch.nan_to_num`, or take logs of `x.clamp_min(eps)`.",
        )
    )


def _memory_order(x: Tensor) -> list[int] | None:
    """The permutation that makes ``x`` contiguous with the batch dim first, or None if there is none."""
    strides = x.stride()
    order = sorted(range(x.ndim), key=lambda d: -strides[d])  # stable: ties keep their logical order
    return order if order[0] == 0 and x.permute(order).is_contiguous() else None


def _spans(box: Tensor, sizes: list[int]) -> list[Tensor]:
    """Per cut dim, a ``(B, size)`` bool of the positions inside each sample's ``[start, stop)`` range."""
    positions = torch.arange(max(sizes), device=box.device)
    inside = (positions >= box[..., :1]) & (positions < box[..., 1:])  # (B, D, max size), one pass for all dims
    return [inside[:, k, :size] for k, size in enumerate(sizes)]


def _gather_partners(
    y: Tensor, params: MixParams, cuts: list[int], spans: list[Tensor], workspace: Workspace | None
) -> Tensor:
    """The partners' values, gathered by sample, or by row for CutMix boxes that span several rows."""
    size, device = y.shape[0], y.device
    partner = params.partner.to(device, non_blocking=True)
    donor = _buffer(workspace, y, y.dtype)
    if len(cuts) <= 1:  # every row of a sample comes from the same place: gather whole samples
        return torch.index_select(y.view(size, -1), 0, partner, out=donor.view(size, -1)).view(y.shape)
    inner = max(cuts)
    lead = (size,) + (1,) * (inner - 1)
    crossed = (along(span, dim, lead, y.shape[dim]) for dim, span in zip(cuts, spans, strict=True) if dim != inner)
    take = functools.reduce(operator.and_, crossed)  # the rows the box spans
    if params.has_mixup:  # a MixUp sample takes every row
        take = take | ~params.cutmix.to(device, non_blocking=True).view(lead)
    rows = y.shape[1:inner]
    per_sample = math.prod(rows)
    start = torch.where(
        take, partner.view(lead) * per_sample, torch.arange(0, size * per_sample, per_sample, device=device).view(lead)
    )
    index = torch.arange(per_sample, device=device).view(1, *rows) + start
    flat = (size * per_sample, -1)
    return torch.index_select(y.view(flat), 0, index.view(-1), out=donor.view(flat)).view(y.shape)


def _partner_weight(y: Tensor, params: MixParams, cuts: list[int], spans: list[Tensor]) -> Tensor:
    """The weight of the partner, broadcastable against ``y``.

    Per sample it varies along the innermost cut dim only (the gather chose the rows); a shared box gives one
    weight over all cut dims, broadcast over the batch.
    """
    n = 1 if params.shared else y.shape[0]
    lead = (n,) + (1,) * (y.ndim - 1)
    lam, cutmix, mixed = (
        t[:n].to(y.device, non_blocking=True).view(lead) for t in (params.lam, params.cutmix, params.mixed)
    )
    if not cuts:
        return (1.0 - lam) * mixed
    dims = cuts if params.shared else [max(cuts)]
    cut = functools.reduce(operator.and_, (along(spans[cuts.index(d)], d, lead, y.shape[d]) for d in dims))
    # a box is empty where the sample is not mixed by CutMix
    weight = torch.where(cutmix, cut.to(lam.dtype), 1.0 - lam) * mixed if params.has_mixup else cut
    inner = max(dims)
    tail = written_out(y.shape, inner)
    if tail:
        weight = weight.expand(*weight.shape[: inner + 1], *tail).contiguous()
    return weight


def _buffer(workspace: Workspace | None, like: Tensor, dtype: torch.dtype) -> Tensor:
    if workspace is None:
        return torch.empty_like(like, dtype=dtype)
    return workspace.get(like, dtype)


def _block(
    workspace: Workspace | None, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> Tensor:
    if workspace is None:
        return torch.empty(shape, dtype=dtype, device=device)
    return workspace.block(name, shape, dtype, device)
