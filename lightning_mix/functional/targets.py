"""Soft targets: class indices to (smoothed) one-hot rows, and mixing of targets with the pixels' λ."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_mix.functional._checks import check_int, check_probability, expected
from lightning_mix.functional.params import MixParams, _float32

__all__ = ["check_dense_target", "check_unit_values", "mix_target", "one_hot"]


def _check_num_classes(num_classes: int | None) -> int:
    if num_classes is None:
        raise ValueError(
            expected(
                "num_classes",
                "an int >= 1 when targets are class indices",
                None,
                "Pass `num_classes` so the indices can be one-hot encoded.",
            )
        )
    check_int("num_classes", num_classes, 1)
    return int(num_classes)


def _check_index_range(target: Tensor, num_classes: int) -> None:
    if target.numel() and bool(((target < 0) | (target >= num_classes)).any()):
        bad = target[(target < 0) | (target >= num_classes)][:5].tolist()
        raise ValueError(
            expected("target", f"class indices in [0, {num_classes})", f"values such as {bad}", "Check `num_classes`.")
        )


def _index_args(
    target: Tensor, num_classes: int | None, label_smoothing: float, validate_args: bool
) -> tuple[int, float]:
    """Check the arguments that go with class indices; return ``(C, ε)``."""
    classes = _check_num_classes(num_classes)
    eps = check_probability("label_smoothing", label_smoothing)
    if validate_args:
        _check_index_range(target, classes)
    return classes, eps


def check_dense_target(target: Tensor, num_classes: int | None, label_smoothing: float) -> None:
    """Check a dense target ``(B, C, ...)``: width ``num_classes`` when given, and no label smoothing.

    Example:
        >>> check_dense_target(torch.rand(2, 3), 3, 0.0)
    """
    if num_classes is not None and target.shape[1] != num_classes:
        raise ValueError(expected("target.shape[1]", f"num_classes ({num_classes})", target.shape[1]))
    if check_probability("label_smoothing", label_smoothing) > 0:
        raise ValueError(
            expected(
                "label_smoothing",
                "0 for dense targets",
                label_smoothing,
                "Smooth dense targets before mixing, or pass class indices.",
            )
        )


def check_unit_values(target: Tensor) -> None:
    """Check that a dense float target holds class targets: every value in ``[0, 1]`` (reads the values).

    Probabilities, one-hot and multi-hot rows, and label-smoothed rows pass; regression values and logits do not:
    mixing them like class targets would be silently wrong.

    Raises:
        ValueError: if a value is outside ``[0, 1]`` or NaN.

    Example:
        >>> check_unit_values(torch.tensor([[0.2, 0.8], [1.0, 1.0]]))
        >>> check_unit_values(torch.tensor([[2.5]]))
        Traceback (most recent call last):
        ...
        ValueError: Expected `target` to be class targets ... but got 'values from 2.5 to 2.5'. ...
    """
    if target.numel() == 0 or target.dtype == torch.bool:
        return
    if bool(((target >= 0) & (target <= 1)).all()):  # a host read, on purpose
        return
    low, high = float(target.min()), float(target.max())  # the error path only
    raise ValueError(
        expected(
            "target",
            "class targets with values in [0, 1] (probabilities, one-hot or multi-hot rows)",
            f"values from {low:.4g} to {high:.4g}",
            "Regression targets and logits are not mixed as class targets: mix the input alone (the callback's "
            '`targets="none"`) and interpolate them yourself with the step\'s `lam` (see `mixed_loss`).',
        )
    )


def one_hot(
    target: Tensor, num_classes: int | None, *, label_smoothing: float = 0.0, validate_args: bool = True
) -> Tensor:
    """Encode class indices ``(B,)`` as float32 rows ``(B, C)``, optionally label-smoothed.

    With smoothing ε the true class gets ``1 − ε + ε/C`` and every other class ``ε/C``; rows sum to 1.

    Args:
        target: int64/int32 class indices of shape ``(B,)``.
        num_classes: the number of classes C.
        label_smoothing: ε in [0, 1].
        validate_args: check that every index is in ``[0, C)``. This reads the values, which on an
            accelerator waits for the device; turn it off in a hot loop once the data are known to be good.

    Returns:
        A float32 tensor ``(B, C)`` on the target's device.

    Raises:
        ValueError: if ``num_classes`` is missing or an index is out of range.
        TypeError: if ``target`` is not an integer tensor.

    Example:
        >>> one_hot(torch.tensor([0, 2]), 3, label_smoothing=0.3)
        tensor([[0.8000, 0.1000, 0.1000],
                [0.1000, 0.1000, 0.8000]])
    """
    if not isinstance(target, Tensor) or target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(expected("target", "an integer tensor of class indices", getattr(target, "dtype", target)))
    classes, eps = _index_args(target, num_classes, label_smoothing, validate_args)
    off = eps / classes
    out = torch.full((*target.shape, classes), off, dtype=torch.float32, device=target.device)
    return out.scatter_(-1, target.long().unsqueeze(-1), 1.0 - eps + off)


def mix_target(
    target: Tensor,
    params: MixParams,
    *,
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    validate_args: bool = True,
) -> Tensor:
    """Mix targets with the λ used for the pixels: ``t_i <- λ_i·t_i + (1 − λ_i)·t_partner(i)``.

    Class indices ``(B,)`` are first one-hot encoded (with optional label smoothing, the one place this library
    applies it). Dense float targets ``(B, C)`` (probabilities, one-hot or multi-hot; bool accepted) are mixed as
    they are, linearly; smooth them yourself if you want that, since smoothing multi-hot rows has no single
    meaning. Their values must lie in ``[0, 1]`` (checked with ``validate_args``): regression values and logits
    are refused, since mixing them as class targets would be silently wrong.

    Args:
        target: ``(B,)`` integer class indices, or ``(B, C)`` floating or bool dense targets.
        params: the parameters used for the pixels.
        num_classes: C; required for class indices, checked against the width of dense targets.
        label_smoothing: ε for class indices; must be 0 for dense targets.
        validate_args: check index ranges (see :func:`one_hot`) and that dense values are in ``[0, 1]`` (reads
            the values).

    Returns:
        A new float32 ``(B, C)`` tensor on the target's device.

    Raises:
        ValueError: for a batch-size, width or range mismatch, or a missing ``num_classes``.
        TypeError: for a target that is neither integer ``(B,)`` nor dense ``(B, C)``.

    Example:
        >>> from lightning_mix.functional.params import sample_mix_params
        >>> p = sample_mix_params(2, (), mixup_alpha=1.0, generator=torch.Generator().manual_seed(0))
        >>> t = mix_target(torch.tensor([0, 1]), p, num_classes=2)
        >>> torch.allclose(t.sum(1), torch.ones(2)), torch.allclose(t[0, 0], p.lam[0])
        (True, True)
    """
    if not isinstance(target, Tensor):
        raise TypeError(expected("target", "a torch.Tensor", type(target).__name__))
    if target.ndim == 0 or target.shape[0] != params.batch_size:
        raise ValueError(expected("target.shape[0]", f"the batch size {params.batch_size}", tuple(target.shape), ""))
    if target.ndim == 1 and not (target.dtype.is_floating_point or target.dtype == torch.bool):
        return _mix_indices(target, params, num_classes, label_smoothing, validate_args)
    if target.ndim == 2 and (target.dtype.is_floating_point or target.dtype == torch.bool):
        check_dense_target(target, num_classes, label_smoothing)
        if validate_args:
            check_unit_values(target)
        dense = target.to(torch.float32)
    else:
        raise TypeError(
            expected(
                "target",
                "integer class indices of shape (B,) or floating/bool dense targets of shape (B, C)",
                f"{target.dtype} of shape {tuple(target.shape)}",
            )
        )
    lam = params.lam.to(dense.device, non_blocking=True).unsqueeze(1)
    partner = params.partner.to(dense.device, non_blocking=True)
    return torch.lerp(dense, dense.index_select(0, partner), 1.0 - lam)


def _mix_indices(
    target: Tensor, params: MixParams, num_classes: int | None, label_smoothing: float, validate_args: bool
) -> Tensor:
    """Soft rows of mixed class indices in one ``(B, C)`` tensor: the floor ε/C, then the two labels' shares."""
    classes, eps = _index_args(target, num_classes, label_smoothing, validate_args)
    index = target.long()
    partner = params.partner.to(target.device, non_blocking=True)
    peak = 1.0 - eps  # what the true class holds above the floor
    out = torch.full((target.shape[0], classes), eps / classes, dtype=torch.float32, device=target.device)
    own, other = index.view(-1, 1), index.index_select(0, partner).view(-1, 1)
    if params.draw is not None:  # one λ for the batch, known on the host: add scalars (float32 products)
        lam, share = params.draw.lam, _float32(peak)
        out.scatter_(1, own, _float32(lam * share), reduce="add")
        return out.scatter_(1, other, _float32(_float32(1.0 - lam) * share), reduce="add")
    weight = params.lam.to(target.device, non_blocking=True).view(-1, 1)
    out.scatter_add_(1, own, weight * peak)
    return out.scatter_add_(1, other, (1.0 - weight) * peak)
