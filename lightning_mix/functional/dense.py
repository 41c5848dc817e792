"""Dense-prediction targets: segmentation masks mixed with the same parameters as their images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lightning_mix.functional._checks import check_choice, check_int, check_probability, expected
from lightning_mix.functional.mixing import _check_batch, _normalise_cut_dims, mix_, pixel_weight
from lightning_mix.functional.params import MixParams
from lightning_mix.functional.targets import check_dense_target, check_unit_values, mix_target

__all__ = ["check_mask", "mix_any_target", "mix_mask_target", "paste_mask_"]


def check_mask(mask: Tensor, image: Tensor | None = None) -> None:
    """Check that ``mask`` is an integer ``(B, *spatial)`` mask matching ``image`` ``(B, C, *spatial)``.

    Args:
        mask: class-index mask.
        image: the batch the mask belongs to, if any.

    Raises:
        TypeError: if ``mask`` is not an integer tensor.
        ValueError: if the batch size or spatial sizes differ from the image's.

    Example:
        >>> check_mask(torch.zeros(2, 4, 5, dtype=torch.long), torch.zeros(2, 3, 4, 5))
    """
    if not isinstance(mask, Tensor) or mask.dtype.is_floating_point or mask.dtype == torch.bool:
        raise TypeError(expected("mask", "an integer tensor of class indices", getattr(mask, "dtype", mask)))
    if mask.ndim < 2:
        raise ValueError(expected("mask.ndim", ">= 2, a mask (B, *spatial)", mask.ndim))
    if image is not None and (mask.shape[0] != image.shape[0] or mask.shape[1:] != image.shape[2:]):
        raise ValueError(
            expected(
                "mask.shape",
                f"(B, *spatial) matching the input's {tuple(image.shape[:1] + image.shape[2:])}",
                tuple(mask.shape),
                "Mask and input must have the same batch size and spatial sizes.",
            )
        )


@torch.no_grad()
def paste_mask_(mask: Tensor, params: MixParams, *, cut_dims: Sequence[int] = (-2, -1)) -> Tensor:
    """Paste the partner's CutMix box into an integer mask, in place; masks stay integer.

    Every value, ``ignore_index`` included, is copied like any other, so no label ever becomes fractional.

    Args:
        mask: ``(B, *spatial)`` integer mask; overwritten.
        params: CutMix-only parameters of the step (``params.has_mixup`` False).
        cut_dims: the negative dims the boxes span (those of the image, e.g. ``(-2, -1)``).

    Returns:
        ``mask``, with boxes pasted.

    Raises:
        ValueError: if the parameters can produce MixUp samples; use :func:`mix_mask_target` then.

    Example:
        >>> from lightning_mix.functional.params import sample_mix_params
        >>> p = sample_mix_params(2, (4, 4), cutmix_alpha=1.0, generator=torch.Generator().manual_seed(0))
        >>> m = torch.stack([torch.zeros(4, 4, dtype=torch.long), torch.full((4, 4), 255)])
        >>> out = paste_mask_(m.clone(), p)
        >>> out.dtype, sorted(out.unique().tolist())
        (torch.int64, [0, 255])
    """
    check_mask(mask)
    if params.has_mixup:
        raise ValueError(
            expected(
                "params.has_mixup",
                "False for an integer mask",
                True,
                "MixUp blends labels: build per-pixel soft targets with `mix_mask_target` instead.",
            )
        )
    return mix_(mask, params, cut_dims=cut_dims)


@torch.no_grad()
def mix_mask_target(
    mask: Tensor,
    params: MixParams,
    *,
    num_classes: int,
    cut_dims: Sequence[int] = (-2, -1),
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    validate_args: bool = True,
) -> Tensor:
    """Per-pixel soft targets ``(B, C, *spatial)`` mixed with the same parameters as the image.

    Each pixel gets ``λ_p·t_own + (1 − λ_p)·t_partner`` where ``λ_p`` is the sample's λ for MixUp and 0 or 1 for
    CutMix (inside or outside the box). A pixel at ``ignore_index`` contributes a zero vector, so it carries no
    weight: a fully ignored pixel has target mass 0, and a MixUp pixel whose partner is ignored keeps only
    its own share. :class:`~lightning_mix.SoftTargetLoss` averages over target mass, so ignored pixels drop out.
    Memory: ``B·C·prod(spatial)`` float32 values (e.g. 176 MB for 8 × 21 classes × 512²); use CutMix alone with
    :func:`paste_mask_` to keep integer masks.

    Args:
        mask: ``(B, *spatial)`` integer class indices.
        params: the parameters of the step.
        num_classes: C.
        cut_dims: the negative dims the boxes span.
        ignore_index: label of pixels that carry no target.
        label_smoothing: ε applied to each non-ignored pixel's one-hot vector.
        validate_args: check that every label is in ``[0, C)`` or ``ignore_index`` (reads the values).

    Returns:
        A float32 tensor ``(B, C, *spatial)``.

    Raises:
        ValueError: for out-of-range labels or mismatched sizes.
        TypeError: for a non-integer mask.

    Example:
        >>> from lightning_mix.functional.params import sample_mix_params
        >>> p = sample_mix_params(2, (2, 2), mixup_alpha=1.0, generator=torch.Generator().manual_seed(0))
        >>> m = torch.tensor([[[0, 1], [1, 255]], [[2, 2], [2, 2]]])
        >>> soft = mix_mask_target(m, p, num_classes=3, ignore_index=255)
        >>> soft.shape, torch.allclose(soft[0, :, 1, 1].sum(), 1 - p.lam[0])
        (torch.Size([2, 3, 2, 2]), True)
    """
    check_mask(mask)
    check_int("num_classes", num_classes, 1)
    eps = check_probability("label_smoothing", label_smoothing)
    dims = _normalise_cut_dims(cut_dims, mask.ndim)
    _check_batch(mask, params, dims, "mask")
    valid = mask != ignore_index if ignore_index is not None else torch.ones_like(mask, dtype=torch.bool)
    if validate_args:
        bad = valid & ((mask < 0) | (mask >= num_classes))
        if bool(bad.any()):
            allowed = f"[0, {num_classes})" + (f" or {ignore_index}" if ignore_index is not None else "")
            raise ValueError(
                expected(
                    "mask",
                    f"labels in {allowed}",
                    f"values such as {mask[bad][:5].tolist()}",
                    "Check `num_classes` and `ignore_index`.",
                )
            )
    index = torch.where(valid, mask, 0).long().unsqueeze(1)
    off = eps / num_classes
    soft = torch.full((mask.shape[0], num_classes, *mask.shape[1:]), off, dtype=torch.float32, device=mask.device)
    soft.scatter_(1, index, 1.0 - eps + off).mul_(valid.unsqueeze(1))
    weight = pixel_weight(params, soft.shape, dims).to(soft.device, non_blocking=True)
    partner = params.partner.to(soft.device, non_blocking=True)
    return soft.lerp_(soft.index_select(0, partner), weight)


def mix_any_target(
    target: Tensor,
    params: MixParams,
    *,
    input_shape: Sequence[int],
    cut_dims: Sequence[int],
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    mask_mixup: Literal["soft", "error"] = "soft",
    copy: bool = True,
    validate_args: bool = True,
) -> Tensor:
    """Mix a target of any supported kind with the parameters used for its input of shape ``input_shape``.

    The kind is told by dtype and shape, never guessed:

    - integer ``(B,)`` class indices and floating/bool ``(B, C)`` rows: :func:`mix_target` (soft ``(B, C)``);
    - integer ``(B, *spatial)`` masks, ``spatial`` equal to the input's: with CutMix alone and no label
      smoothing, the partner's box is pasted and the mask stays integer (:func:`paste_mask_`); when MixUp can
      occur, or with smoothing, per-pixel soft targets ``(B, C, *spatial)`` (:func:`mix_mask_target`), unless
      ``mask_mixup="error"``;
    - floating ``(B, C, *spatial)`` per-pixel soft targets: mixed like the pixels, as float32.

    Args:
        target: the batch's target.
        params: the parameters used for the input.
        input_shape: the input's shape ``(B, C, *spatial)``.
        cut_dims: the negative dims the boxes span.
        num_classes: C for class indices and masks.
        label_smoothing: ε for class indices and masks.
        ignore_index: mask label that carries no target.
        mask_mixup: ``"soft"`` builds per-pixel soft targets when MixUp mixes a mask; ``"error"`` refuses.
        copy: paste into a copy of an integer mask (False: overwrite ``target``).
        validate_args: check label ranges, and that dense float values are in ``[0, 1]`` (reads the values).

    Returns:
        The mixed target.

    Raises:
        TypeError: for a target of no supported kind.
        ValueError: for MixUp on a mask with ``mask_mixup="error"``, or a bad value.

    Example:
        >>> from lightning_mix.functional.params import sample_mix_params
        >>> p = sample_mix_params(2, (4, 4), cutmix_alpha=1.0, generator=torch.Generator().manual_seed(0))
        >>> mask = torch.randint(3, (2, 4, 4))
        >>> mix_any_target(mask, p, input_shape=(2, 3, 4, 4), cut_dims=(-2, -1)).dtype
        torch.int64
        >>> mix_any_target(torch.tensor([0, 2]), p, input_shape=(2, 3, 4, 4), cut_dims=(-2, -1), num_classes=3).shape
        torch.Size([2, 3])
    """
    check_choice("mask_mixup", mask_mixup, ("soft", "error"))
    if not isinstance(target, Tensor):
        raise TypeError(expected("target", "a torch.Tensor", type(target).__name__))
    spatial = tuple(input_shape[2:])
    integer = not (target.dtype.is_floating_point or target.dtype == torch.bool)
    if target.ndim == 1 or (target.ndim == 2 and not integer):
        return mix_target(
            target, params, num_classes=num_classes, label_smoothing=label_smoothing, validate_args=validate_args
        )
    if integer and target.ndim == len(input_shape) - 1 and tuple(target.shape[1:]) != spatial:
        raise ValueError(
            expected(
                "mask.shape",
                f"(B, *spatial) matching the input's {(input_shape[0], *spatial)}",
                tuple(target.shape),
                "Mask and input must have the same spatial sizes.",
            )
        )
    if integer and tuple(target.shape[1:]) == spatial:
        if not params.has_mixup and label_smoothing == 0:
            return paste_mask_(target.clone() if copy else target, params, cut_dims=cut_dims)
        if params.has_mixup and mask_mixup == "error":
            raise ValueError(
                expected(
                    "mask_mixup",
                    '"soft" when MixUp mixes segmentation masks',
                    mask_mixup,
                    "Use CutMix alone to keep integer masks, or allow per-pixel soft targets.",
                )
            )
        if num_classes is None:
            raise ValueError(expected("num_classes", "an int >= 1 for soft mask targets", None, "Pass `num_classes`."))
        return mix_mask_target(
            target,
            params,
            num_classes=num_classes,
            cut_dims=cut_dims,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            validate_args=validate_args,
        )
    if not integer and target.ndim >= 3 and tuple(target.shape[2:]) == spatial:
        check_dense_target(target, num_classes, label_smoothing)
        if validate_args:
            check_unit_values(target)
        return mix_(target.to(torch.float32, copy=True), params, cut_dims=cut_dims)
    raise TypeError(
        expected(
            "target",
            f"class indices (B,), dense rows (B, C), an integer mask (B, *{spatial}) or soft per-pixel "
            f"targets (B, C, *{spatial})",
            f"{target.dtype} of shape {tuple(target.shape)}",
        )
    )
