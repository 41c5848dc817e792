"""Accuracy on mixed (soft) targets: the λ-weighted credit of the CutMix and MixUp training logs.

The credit of a sample is the target probability mass on its top-k predicted classes. For a target mixed as
``λ·a + (1 − λ)·b``, a top-1 prediction of ``a`` earns λ, one of ``b`` earns 1 − λ, anything else 0. For class
indices the credit is 1 or 0, and the metric is ordinary (micro) top-k accuracy.

The update/compute split follows torchmetrics: :func:`_mixed_accuracy_update` returns the two sums kept as
metric states, :func:`_mixed_accuracy_compute` divides them.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.overrides import handle_torch_function, has_torch_function_variadic

from lightning_mix.functional._checks import check_choice, check_int, check_probability, expected
from lightning_mix.functional.loss import _TINY, _is_dense

__all__ = ["mixed_accuracy"]

AccuracyMode = Literal["credit", "argmax"]
MODES = ("credit", "argmax")


def _mixed_accuracy_arg_validation(
    top_k: int, mode: str, num_classes: int | None, label_smoothing: float, ignore_index: int | None
) -> None:
    """Check the plain arguments; raise ``TypeError``/``ValueError`` with the project's template."""
    check_int("top_k", top_k, 1)
    check_choice("mode", mode, MODES)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)):
        raise TypeError(expected("num_classes", "None or an int", num_classes))
    if num_classes is not None and num_classes < 1:
        raise ValueError(expected("num_classes", "None or an int >= 1", num_classes))
    if num_classes is not None and top_k > num_classes:
        raise ValueError(expected("top_k", f"at most num_classes ({num_classes})", top_k))
    if check_probability("label_smoothing", label_smoothing) >= 1.0:
        raise ValueError(expected("label_smoothing", "a float in [0, 1)", label_smoothing))
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(expected("ignore_index", "None or an int", ignore_index))


def _mixed_accuracy_tensor_validation(
    preds: Tensor, target: Tensor, num_classes: int | None, top_k: int, ignore_index: int | None, check_values: bool
) -> None:
    """Check shapes and dtypes (free), and with ``check_values`` the target values (reads device data)."""
    if not isinstance(preds, Tensor) or not preds.dtype.is_floating_point:
        raise TypeError(
            expected(
                "preds",
                "a floating tensor of logits or probabilities",
                getattr(preds, "dtype", type(preds).__name__),
                "Pass scores of shape (B, C, *d), not predicted labels.",
            )
        )
    if not isinstance(target, Tensor):
        raise TypeError(expected("target", "a torch.Tensor", type(target).__name__))
    if preds.ndim < 2:
        raise ValueError(expected("preds", "a tensor of shape (B, C, *d)", tuple(preds.shape)))
    classes = preds.shape[1]
    if num_classes is not None and classes != num_classes:
        raise ValueError(expected("preds.shape[1]", f"num_classes ({num_classes})", classes))
    if top_k > classes:
        raise ValueError(expected("top_k", f"at most the number of classes ({classes})", top_k))
    index_shape = (preds.shape[0], *preds.shape[2:])
    if _is_dense(target):
        if target.shape != preds.shape:
            raise ValueError(
                expected("target", f"dense targets of the preds' shape {tuple(preds.shape)}", tuple(target.shape))
            )
        if check_values and bool((target < 0).any() | ~torch.isfinite(target.float()).all()):
            raise ValueError(expected("target", "finite and non-negative", "negative or non-finite entries"))
        return
    if target.shape != index_shape:
        hint = "Cast one-hot integer targets to float." if target.shape == preds.shape else ""
        raise (TypeError if hint else ValueError)(
            expected("target", f"class indices of shape {index_shape} or dense targets", tuple(target.shape), hint)
        )
    if check_values:
        bad = (target < 0) | (target >= classes)
        if ignore_index is not None:
            bad &= target != ignore_index
        if bool(bad.any()):
            values = target[bad][:5].tolist()
            raise ValueError(
                expected("target", f"class indices in [0, {classes})", f"values such as {values}", "Check the labels.")
            )


def _mixed_accuracy_update(
    preds: Tensor, target: Tensor, *, top_k: int, mode: str, label_smoothing: float, ignore_index: int | None
) -> tuple[Tensor, Tensor]:
    """Return the summed credit (float32) and the number of counted positions (int64) of one batch."""
    classes = preds.shape[1]
    scores = preds.movedim(1, -1).reshape(-1, classes)
    top = scores.argmax(-1, keepdim=True) if top_k == 1 else scores.topk(top_k, dim=-1).indices
    if not _is_dense(target):
        labels = target.reshape(-1, 1)
        counted = (
            labels.squeeze(1) != ignore_index
            if ignore_index is not None
            else torch.ones_like(labels[:, 0], dtype=torch.bool)
        )
        hit = (top == labels).any(-1) & counted
        return hit.sum(dtype=torch.float32), counted.sum()
    dense = target.movedim(1, -1).reshape(-1, classes).float()
    if label_smoothing > 0.0:  # undo t' = (1 − ε)·t + ε·m / C
        shift = dense.sum(-1, keepdim=True) * (label_smoothing / classes)
        dense = dense.sub(shift).div_(1.0 - label_smoothing).clamp_min_(0.0)
    mass = dense.sum(-1)
    counted = mass > 0
    if mode == "argmax":
        credit = ((top == dense.argmax(-1, keepdim=True)).any(-1) & counted).float()
    else:
        credit = (dense.gather(-1, top).sum(-1) / mass.clamp_min(_TINY)).clamp_max_(1.0)
    return credit.sum(), counted.sum()


def _mixed_label_accuracy_update(
    preds: Tensor, own: Tensor, partner: Tensor, lam: Tensor, *, top_k: int, mode: str, ignore_index: int | None
) -> tuple[Tensor, Tensor]:
    """The sums of :func:`_mixed_accuracy_update` for labels mixed as ``λ·own + (1 − λ)·partner``.

    Equal to the credit of the dense target ``λ·keep_a·onehot(a) + (1 − λ)·keep_b·onehot(b)`` without building
    it: ``keep`` is 0 at ``ignore_index``, a position whose two shares are both 0 is not counted.
    """
    classes = preds.shape[1]
    scores = preds.movedim(1, -1).reshape(-1, classes)
    top = scores.argmax(-1, keepdim=True) if top_k == 1 else scores.topk(top_k, dim=-1).indices
    a, b, lam = own.reshape(-1, 1), partner.reshape(-1, 1), lam.reshape(-1)
    share_a, share_b = lam, 1.0 - lam
    if ignore_index is not None:
        share_a, share_b = share_a * (a[:, 0] != ignore_index), share_b * (b[:, 0] != ignore_index)
    mass = share_a + share_b
    counted = mass > 0
    if mode == "argmax":  # the heavier label; the lower class index at a tie, as the argmax of the dense target
        tie = torch.minimum(a, b)
        dominant = torch.where((share_a > share_b)[:, None], a, torch.where((share_b > share_a)[:, None], b, tie))
        credit = ((top == dominant).any(-1) & counted).float()
    else:
        hits = share_a * (top == a).any(-1) + share_b * (top == b).any(-1)
        credit = (hits / mass.clamp_min(_TINY)).clamp_max_(1.0)
    return credit.sum(), counted.sum()


def _mixed_label_accuracy(
    preds: Tensor,
    own: Tensor,
    partner: Tensor,
    lam: Tensor,
    *,
    top_k: int = 1,
    mode: AccuracyMode = "credit",
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    validate_args: bool = True,
) -> Tensor:
    """:func:`mixed_accuracy` of mixed labels given as their two label sets and the own labels' weight."""
    _mixed_accuracy_arg_validation(top_k, mode, num_classes, label_smoothing, ignore_index)
    if _is_dense(own):
        raise TypeError(expected("target", "mixed class indices", own.dtype, "Accuracy needs class indices."))
    for labels in (own, partner):
        _mixed_accuracy_tensor_validation(preds, labels, num_classes, top_k, ignore_index, validate_args)
    correct, total = _mixed_label_accuracy_update(
        preds, own, partner, lam, top_k=top_k, mode=mode, ignore_index=ignore_index
    )
    return _mixed_accuracy_compute(correct, total)


def _mixed_accuracy_compute(correct: Tensor, total: Tensor) -> Tensor:
    """Return ``correct / total`` as float32, and 0 when nothing was counted."""
    return correct.float() / total.clamp_min(1).float()


def mixed_accuracy(
    preds: Tensor,
    target: Tensor,
    *,
    top_k: int = 1,
    mode: AccuracyMode = "credit",
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    validate_args: bool = True,
) -> Tensor:
    """Accuracy of predictions against class indices or mixed (soft) targets.

    Modes:

    - ``"credit"`` (default): a sample earns the target probability mass on its top-k predicted classes, so a
      top-1 prediction of ``a`` for the target ``λ·a + (1 − λ)·b`` earns λ. Rows are normalised by their mass,
      so un-normalised (e.g. bool one-hot) rows work too.
    - ``"argmax"``: a sample earns 1 when the dominant target class (the argmax of the target; the lowest class
      index among ties, e.g. at λ = 0.5) is among its top-k predictions, else 0.

    With class indices both modes give micro top-k accuracy, exactly
    ``torchmetrics.classification.MulticlassAccuracy(num_classes, average="micro", top_k=top_k)``.

    **Label-smoothed targets** put ε/C of mass on every class, so a perfect model would earn less than 1. Pass
    the ε the targets were smoothed with (e.g. the callback's ``label_smoothing``) and the smoothing is undone
    before scoring: ``t = (t' − ε·m / C) / (1 − ε)`` per row of mass m, clipped at 0. Class indices are never
    smoothed, so ``label_smoothing`` leaves them alone.

    Dense-prediction inputs ``(B, C, *d)`` score every position; positions whose dense target sums to 0 (or
    whose index equals ``ignore_index``) are not counted.

    Args:
        preds: ``(B, C, *d)`` logits or probabilities; only their ranking matters.
        target: ``(B, *d)`` integer class indices, or ``(B, C, *d)`` floating/bool dense targets.
        top_k: number of highest-scoring classes that earn credit.
        mode: ``"credit"`` or ``"argmax"``.
        num_classes: C; when given, checked against ``preds.shape[1]``. Inferred otherwise.
        label_smoothing: ε in [0, 1) the dense targets were smoothed with, undone before scoring.
        ignore_index: class index whose positions are not counted (class-index targets only).
        validate_args: check the target values (index range; dense entries finite and non-negative). This reads
            the values, which waits for an accelerator; shapes and arguments are always checked.

    Returns:
        A float32 scalar in [0, 1] (0 when no position is counted).

    Raises:
        TypeError: if ``preds`` is not floating, or an argument has the wrong type.
        ValueError: for shape or ``num_classes`` mismatches and out-of-range arguments or targets.

    Example:
        >>> preds = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
        >>> target = torch.tensor([[0.7, 0.3, 0.0], [0.6, 0.4, 0.0]])
        >>> mixed_accuracy(preds, target)  # (0.7 + 0.0) / 2
        tensor(0.3500)
        >>> mixed_accuracy(preds, target, top_k=2)  # (1.0 + 0.4) / 2
        tensor(0.7000)
        >>> mixed_accuracy(preds, target, mode="argmax")
        tensor(0.5000)
    """
    if has_torch_function_variadic(preds, target):  # e.g. MixedLabels, scored with λ-credit
        return handle_torch_function(
            mixed_accuracy,
            (preds, target),
            preds,
            target,
            top_k=top_k,
            mode=mode,
            num_classes=num_classes,
            label_smoothing=label_smoothing,
            ignore_index=ignore_index,
            validate_args=validate_args,
        )
    _mixed_accuracy_arg_validation(top_k, mode, num_classes, label_smoothing, ignore_index)
    _mixed_accuracy_tensor_validation(preds, target, num_classes, top_k, ignore_index, validate_args)
    correct, total = _mixed_accuracy_update(
        preds, target, top_k=top_k, mode=mode, label_smoothing=label_smoothing, ignore_index=ignore_index
    )
    return _mixed_accuracy_compute(correct, total)
