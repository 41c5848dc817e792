"""Losses for mixed targets: soft-target cross-entropy, its binary (multi-label) twin, and loss interpolation.

Both losses compute in float32 whatever the dtype of the logits (bf16/fp16 under autocast), from
``log_softmax``/``logsigmoid``, so finite logits never give NaN.

Target mixing and loss mixing agree only for losses that are linear in the target. Cross-entropy is:
``CE(x, λ·a + (1 − λ)·b) = λ·CE(x, a) + (1 − λ)·CE(x, b)``, so a mixed soft target and
:func:`soft_target_cross_entropy` give exactly the loss of the papers. Binary cross-entropy is linear in the
target too, but focal loss, Dice loss or any loss that transforms the target non-linearly is not: for those,
keep the two label sets and use :func:`mixed_loss`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import handle_torch_function, has_torch_function_variadic

from lightning_mix.functional._checks import check_choice, check_probability, expected

__all__ = ["mixed_loss", "soft_target_binary_cross_entropy", "soft_target_cross_entropy"]

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS = ("mean", "sum", "none")
_TINY = torch.finfo(torch.float32).tiny
_MIN = torch.finfo(torch.float32).min


def _is_dense(target: Tensor) -> bool:
    return target.dtype.is_floating_point or target.dtype == torch.bool


def _check_logits(logits: Tensor) -> None:
    if not isinstance(logits, Tensor) or not logits.dtype.is_floating_point:
        raise TypeError(expected("logits", "a floating tensor", getattr(logits, "dtype", type(logits).__name__)))
    if logits.ndim < 2:
        raise ValueError(
            expected(
                "logits",
                "a tensor of shape (B, C, *d)",
                tuple(logits.shape),
                "Add the class dimension, e.g. `logits.unsqueeze(1)` for one binary output.",
            )
        )


def _class_vector(name: str, vector: Tensor | None, logits: Tensor) -> Tensor | None:
    """Check a per-class ``(C,)`` vector and shape it as float32 ``(C, 1, ..., 1)`` to broadcast along dim 1."""
    if vector is None:
        return None
    if not isinstance(vector, Tensor) or not vector.dtype.is_floating_point:
        raise TypeError(expected(name, "None or a floating tensor", getattr(vector, "dtype", type(vector).__name__)))
    classes = logits.shape[1]
    if vector.shape != (classes,):
        raise ValueError(expected(f"{name}.shape", f"({classes},), one entry per class", tuple(vector.shape)))
    return vector.to(device=logits.device, dtype=torch.float32).view(classes, *([1] * (logits.ndim - 2)))


def _target_kind(logits: Tensor, target: Tensor, *, allow_index: bool) -> bool:
    """Return True for dense targets (same shape as the logits), False for class indices ``(B, *d)``."""
    if not isinstance(target, Tensor):
        raise TypeError(expected("target", "a torch.Tensor", type(target).__name__))
    shape, dense = tuple(target.shape), _is_dense(target)
    index_shape = (logits.shape[0], *logits.shape[2:])
    if dense and shape == tuple(logits.shape):
        return True
    if allow_index and not dense and shape == index_shape:
        return False
    forms = f"floating/bool targets of the logits' shape {tuple(logits.shape)}"
    if allow_index:
        forms = f"integer class indices of shape {index_shape} or {forms}"
    hint = ""
    if not dense and shape == tuple(logits.shape):
        hint = "Cast one-hot or multi-hot integer targets to float."
    elif dense and allow_index and shape == index_shape:
        hint = "Class indices must be an integer tensor."
    error = TypeError if hint else ValueError  # right shape for one form, dtype of the other
    raise error(expected("target", forms, f"{target.dtype} of shape {shape}", hint))


def soft_target_cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    ignore_index: int = -100,
) -> Tensor:
    """Cross-entropy between logits and class indices or dense (soft, mixed, one-hot) targets.

    The kind of target is told by dtype and shape: integer ``(B, *d)`` tensors are class indices, floating (or
    bool) tensors of the logits' shape ``(B, C, *d)`` are dense targets. Class indices give exactly
    :func:`torch.nn.functional.cross_entropy`, except that a ``"mean"`` over only ignored entries is 0, not NaN.

    For dense targets ``t`` the loss of position ``n`` is ``ℓ_n = −Σ_c w_c·t'_nc·log softmax(x_n)_c``, where
    ``t'`` is the smoothed target and ``w`` the class weights (all ones by default):

    - **Label smoothing** ε moves a fraction ε of each row's mass ``m_n = Σ_c t_nc`` evenly over the classes:
      ``t'_n = (1 − ε)·t_n + ε·m_n / C``. For rows summing to 1 this is torch's rule; rows of mass 0 stay 0.
      Apply smoothing once: here, or when building the targets (``mix_target(..., label_smoothing=ε)``).
    - **Weights** multiply each class term of the target, so a mixed target ``λ·a + (1 − λ)·b`` is weighted
      ``λ·w_a`` and ``(1 − λ)·w_b``.
    - **"mean"** divides the sum over positions by the total weighted mass of the *unsmoothed* target,
      ``Σ_n Σ_c w_c·t_nc``. Without weights and with rows summing to 1 this is the number of positions, as in
      torch; with weights it is the weighted mean torch uses for class indices, so a one-hot float target gives
      the same loss as its class index. (torch itself divides by the number of positions for weighted
      probability targets; this function does not, so that both target forms agree.)
    - **Ignored positions**: a position whose target row sums to 0 carries no weight and no loss, and
      ``"mean"`` averages over the other positions only. This is the dense form of ``ignore_index``, used for
      segmentation masks: encode ignored pixels as all-zero target vectors. ``ignore_index`` itself applies to
      class indices only.

    Args:
        logits: ``(B, C, *d)`` unnormalised scores, any floating dtype; the loss is computed in float32.
        target: ``(B, *d)`` integer class indices, or ``(B, C, *d)`` floating/bool dense targets.
        weight: optional ``(C,)`` non-negative class weights.
        label_smoothing: ε in [0, 1].
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` for the ``(B, *d)`` per-position losses.
        ignore_index: class index whose positions are left out (class-index targets only).

    Returns:
        A float32 scalar, or a float32 ``(B, *d)`` tensor for ``reduction="none"``.

    Raises:
        TypeError: if the logits are not floating, or the target is neither form.
        ValueError: for shape mismatches or out-of-range arguments.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 1.0, 0.0]])
        >>> soft_target_cross_entropy(logits, soft)
        tensor(0.6955)
        >>> bool(torch.isclose(soft_target_cross_entropy(logits, torch.tensor([0, 1])),
        ...                    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))))
        True
    """
    if has_torch_function_variadic(logits, target):  # e.g. MixedLabels, which interpolate the loss
        return handle_torch_function(
            soft_target_cross_entropy,
            (logits, target),
            logits,
            target,
            weight=weight,
            label_smoothing=label_smoothing,
            reduction=reduction,
            ignore_index=ignore_index,
        )
    _check_logits(logits)
    eps = check_probability("label_smoothing", label_smoothing)
    check_choice("reduction", reduction, REDUCTIONS)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(expected("ignore_index", "an int", ignore_index))
    dense = _target_kind(logits, target, allow_index=True)
    w = _class_vector("weight", weight, logits)
    logits = logits.float()
    if not dense:
        index = target.long()
        flat_w = None if w is None else w.flatten()
        loss = F.cross_entropy(
            logits,
            index,
            weight=flat_w,
            ignore_index=ignore_index,
            label_smoothing=eps,
            reduction="none" if reduction == "none" else "sum",
        )
        if reduction != "mean":
            return loss
        keep = index != ignore_index
        mass = keep.sum() if flat_w is None else (flat_w[index.masked_fill(~keep, 0)] * keep).sum()
        return loss / mass.clamp_min(_TINY)
    t = target.float()
    class_mass = t.sum([0, *range(2, t.ndim)]) if reduction == "mean" else None  # (C,), before smoothing
    if eps > 0.0:
        t = t.mul(1.0 - eps).add_(t.sum(1, keepdim=True), alpha=eps / logits.shape[1])
    if w is not None:
        t = t * w
    log_p = F.log_softmax(logits, dim=1).clamp_min(_MIN)  # finite, so zero target terms stay exactly 0
    loss = -(t * log_p).sum(1)
    if class_mass is None:
        return loss if reduction == "none" else loss.sum()
    normaliser = class_mass.sum() if w is None else class_mass @ w.flatten()
    return loss.sum() / normaliser.clamp_min(_TINY)


def soft_target_binary_cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> Tensor:
    """Binary cross-entropy with logits for multi-label, multi-hot or mixed (fractional) targets.

    Equals :func:`torch.nn.functional.binary_cross_entropy_with_logits` computed in float32, with ``weight`` and
    ``pos_weight`` given per class and applied along dim 1 (also for ``(B, C, *d)`` inputs, where torch would
    broadcast them along the last dimension). Label smoothing ε pulls every target towards 1/2:
    ``t' = (1 − ε)·t + ε / 2``. BCE is linear in the target, so mixing multi-hot targets and mixing the two
    losses give the same result.

    Args:
        logits: ``(B, C, *d)`` unnormalised scores, any floating dtype.
        target: floating/bool targets in [0, 1] of the logits' shape.
        weight: optional ``(C,)`` per-class rescaling of the loss.
        pos_weight: optional ``(C,)`` per-class weight of the positive term.
        label_smoothing: ε in [0, 1].
        reduction: ``"mean"`` over all entries, ``"sum"``, or ``"none"`` for the ``(B, C, *d)`` losses.

    Returns:
        A float32 scalar, or a float32 tensor of the logits' shape for ``reduction="none"``.

    Raises:
        TypeError: if the logits are not floating or the target is not floating/bool.
        ValueError: for shape mismatches or out-of-range arguments.

    Example:
        >>> logits = torch.tensor([[3.0, -3.0], [0.0, 2.0]])
        >>> soft_target_binary_cross_entropy(logits, torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        tensor(0.4793)
    """
    if has_torch_function_variadic(logits, target):  # e.g. MixedLabels, which interpolate the loss
        return handle_torch_function(
            soft_target_binary_cross_entropy,
            (logits, target),
            logits,
            target,
            weight=weight,
            pos_weight=pos_weight,
            label_smoothing=label_smoothing,
            reduction=reduction,
        )
    _check_logits(logits)
    eps = check_probability("label_smoothing", label_smoothing)
    check_choice("reduction", reduction, REDUCTIONS)
    _target_kind(logits, target, allow_index=False)
    t = target.float()
    if eps > 0.0:
        t = t.mul(1.0 - eps).add_(eps / 2.0)
    return F.binary_cross_entropy_with_logits(
        logits.float(),
        t,
        weight=_class_vector("weight", weight, logits),
        pos_weight=_class_vector("pos_weight", pos_weight, logits),
        reduction=reduction,
    )


def _check_lam(lam: Tensor | float, batch: int, device: torch.device) -> Tensor:
    if isinstance(lam, Tensor):
        if not lam.dtype.is_floating_point:
            raise TypeError(expected("lam", "a float or a floating tensor", lam.dtype))
        if lam.ndim > 1 or (lam.ndim == 1 and lam.shape[0] != batch):
            raise ValueError(expected("lam.shape", f"() or ({batch},), one λ per sample", tuple(lam.shape)))
        return lam.to(device=device, dtype=torch.float32)
    return torch.tensor(check_probability("lam", lam), device=device)


def mixed_loss(
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    logits: Tensor,
    y_a: Tensor,
    y_b: Tensor,
    lam: Tensor | float,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Interpolate a loss between two label sets, per sample: ``λ_i·L(x_i, a_i) + (1 − λ_i)·L(x_i, b_i)``.

    Use it for losses that cannot take soft targets or are not linear in the target (focal, Dice, ...), where
    mixing the targets would give a different loss than mixing the losses. ``loss_fn`` must return the
    *per-sample* losses, of shape ``(B,)`` or ``(B, *d)``, e.g. ``functools.partial(F.cross_entropy,
    reduction="none")``: each λ_i then weights its own sample, which is not the same as λ times a loss already
    averaged over the batch when λ differs between samples. With a :class:`MixParams` ``p`` and the unmixed
    labels ``y``, pass ``y_a=y``, ``y_b=y[p.partner]`` and ``lam=p.lam``.

    Args:
        loss_fn: ``loss_fn(logits, labels)`` returning unreduced losses whose first dimension is the batch.
        logits: the model output for the mixed batch, ``(B, ...)``.
        y_a: the samples' own labels.
        y_b: the partners' labels.
        lam: ``(B,)`` per-sample λ, or one λ (float or 0-d tensor) for the whole batch.
        reduction: ``"mean"`` over all loss entries, ``"sum"``, or ``"none"`` for the interpolated per-sample
            losses.

    Returns:
        A float32 scalar, or the float32 per-sample losses for ``reduction="none"``.

    Raises:
        TypeError: if ``lam`` is not a float or floating tensor.
        ValueError: if ``lam`` has the wrong shape or range, or ``loss_fn`` returns already-reduced losses.

    Example:
        >>> import functools
        >>> ce = functools.partial(F.cross_entropy, reduction="none")
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> y_a, y_b, lam = torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([0.75, 0.5])
        >>> loss = mixed_loss(ce, logits, y_a, y_b, lam)
        >>> expected = (0.75 * ce(logits, y_a)[0] + 0.25 * ce(logits, y_b)[0] + 0.5 * ce(logits, y_b)[1]
        ...             + 0.5 * ce(logits, y_a)[1]) / 2
        >>> bool(torch.isclose(loss, expected))
        True
    """
    check_choice("reduction", reduction, REDUCTIONS)
    batch = logits.shape[0]
    weight_a = _check_lam(lam, batch, logits.device)
    loss_a, loss_b = loss_fn(logits, y_a), loss_fn(logits, y_b)
    for name, loss in (("y_a", loss_a), ("y_b", loss_b)):
        if loss.ndim == 0 or loss.shape[0] != batch:
            raise ValueError(
                expected(
                    f"loss_fn(logits, {name}).shape",
                    f"({batch}, ...), one loss per sample",
                    tuple(loss.shape),
                    'Pass an unreduced loss, e.g. `functools.partial(F.cross_entropy, reduction="none")`.',
                )
            )
    weight_a = weight_a.view(-1, *([1] * (loss_a.ndim - 1))) if weight_a.ndim else weight_a
    mixed = weight_a * loss_a.float() + (1.0 - weight_a) * loss_b.float()
    if reduction == "mean":
        return mixed.mean()
    return mixed.sum() if reduction == "sum" else mixed
