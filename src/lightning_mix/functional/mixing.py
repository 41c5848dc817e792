"""In-place application of :class:`MixParams` to a batch tensor (images, video, 1-D signals, masks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_mix.functional._checks import expected
from lightning_mix.functional.params import MixParams

__all__ = ["Workspace", "box_mask", "default_cut_dims", "mix_", "pixel_weight"]

_EXACT_FLOATS = (torch.float32, torch.float64)


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
    """A scratch buffer reused across steps, so mixing allocates no batch-sized tensor per call.

    Pass the same instance to every :func:`mix_` call; it re-allocates only when the batch's shape, dtype,
    device or memory layout changes.

    Example:
        >>> ws = Workspace()
        >>> a = ws.get(torch.zeros(2, 3, 4, 4), torch.float32)
        >>> a is ws.get(torch.ones(2, 3, 4, 4), torch.float32)
        True
    """

    def __init__(self) -> None:
        self._buffer: Tensor | None = None

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


def _check_batch(x: Tensor, params: MixParams, dims: tuple[int, ...], name: str = "input") -> None:
    if x.shape[0] != params.batch_size:
        raise ValueError(
            expected(f"{name}.shape[0]", f"the batch size of the parameters ({params.batch_size})", x.shape[0])
        )
    if params.has_cutmix:
        sizes = tuple(int(x.shape[d]) for d in dims)
        if sizes != params.cut_sizes:
            raise ValueError(
                expected(
                    f"the sizes of {name} dims {dims}",
                    f"the sizes the boxes were drawn for, {params.cut_sizes}",
                    sizes,
                    "Sample the parameters with the input's sizes along `cut_dims`.",
                )
            )


@torch.no_grad()
def mix_(
    x: Tensor,
    params: MixParams,
    *,
    cut_dims: Sequence[int] | None = None,
    workspace: Workspace | None = None,
) -> Tensor:
    """Mix a batch in place: ``x[i] <- mix(x[i], x[partner[i]])`` with MixUp or CutMix per ``params``.

    MixUp samples become ``λ·x_i + (1−λ)·x_partner``; CutMix samples get the partner's box pasted. Float32 and
    float64 batches are mixed in their own dtype; float16, bfloat16 and integer batches are mixed in float32 and
    cast back (integers rounded to nearest), so the pixel weights are exactly λ. A pure CutMix configuration
    only copies values and works for every dtype. Memory layout (e.g. channels_last) is kept.

    Args:
        x: the batch ``(B, ...)``; overwritten. Pass a copy to keep the original.
        params: parameters from :func:`~lightning_mix.functional.sample_mix_params` for this batch.
        cut_dims: negative dims the CutMix boxes span; :func:`default_cut_dims` when None.
        workspace: a :class:`Workspace` to reuse a scratch buffer across calls.

    Returns:
        ``x``, mixed.

    Raises:
        ValueError: if the batch does not match the parameters.

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
    dims = _normalise_cut_dims(cut_dims if cut_dims is not None else default_cut_dims(x.ndim), x.ndim)
    _check_batch(x, params, dims)
    partner = params.partner.to(x.device, non_blocking=True)
    if not params.has_mixup:  # only copies: exact for every dtype, no arithmetic
        mask = box_mask(params, x.shape, dims).to(x.device, non_blocking=True)
        donor = torch.index_select(x, 0, partner, out=_buffer(workspace, x, x.dtype))
        return torch.where(mask, donor, x, out=x)

    weight = pixel_weight(params, x.shape, dims).to(x.device, non_blocking=True)
    if x.dtype in _EXACT_FLOATS:
        donor = torch.index_select(x, 0, partner, out=_buffer(workspace, x, x.dtype))
        return x.lerp_(donor, weight.to(x.dtype))
    mixed = _buffer(workspace, x, torch.float32)
    mixed.copy_(torch.index_select(x, 0, partner))
    mixed.sub_(x).mul_(weight).add_(x)  # x + w·(x_partner − x), all in float32
    if not x.dtype.is_floating_point:
        mixed.round_()
    return x.copy_(mixed)


def _buffer(workspace: Workspace | None, like: Tensor, dtype: torch.dtype) -> Tensor:
    if workspace is None:
        return torch.empty_like(like, dtype=dtype)
    return workspace.get(like, dtype)
