"""Loss modules for mixed targets, thin wrappers of :mod:`lightning_mix.functional.loss`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_mix.functional._checks import check_choice, check_probability, expected
from lightning_mix.functional.loss import (
    REDUCTIONS,
    Reduction,
    soft_target_binary_cross_entropy,
    soft_target_cross_entropy,
)

__all__ = ["SoftTargetBCELoss", "SoftTargetLoss"]


def _class_weights(name: str, value: Tensor | Sequence[float] | None) -> Tensor | None:
    """Return ``value`` as a float32 ``(C,)`` tensor of finite, non-negative weights, or None."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        vector = value.detach().to(torch.float32)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise TypeError(expected(name, "None, a tensor or a list of floats", value))
        vector = torch.tensor([float(v) for v in value], dtype=torch.float32)
    else:
        raise TypeError(expected(name, "None, a tensor or a list of floats", value))
    if vector.ndim != 1 or vector.numel() == 0:
        raise ValueError(expected(f"{name}.shape", "(C,), one entry per class", tuple(vector.shape)))
    if not all(math.isfinite(v) and v >= 0.0 for v in vector.tolist()):
        raise ValueError(expected(name, "finite and non-negative", vector.tolist()))
    return vector


class SoftTargetLoss(nn.Module):
    """Cross-entropy for class indices and soft (mixed, smoothed, one-hot) targets, in float32.

    A drop-in for :class:`torch.nn.CrossEntropyLoss` in a model trained with mixing: the training step passes
    mixed ``(B, C)`` targets, validation passes class indices, and both go through the same module. See
    :func:`~lightning_mix.functional.soft_target_cross_entropy` for the exact rules. In short: class
    indices give exactly ``F.cross_entropy``; a dense target's class terms are weighted by ``weight`` and
    ``"mean"`` divides by the total weighted target mass (a one-hot float target gives the loss of its index);
    dense positions whose target sums to 0 are ignored. For a binary (multi-label) model use
    :class:`SoftTargetBCELoss`.

    Smooth labels in one place only: if the callback already builds targets with ``label_smoothing``, leave
    it at 0 here.

    Args:
        weight: optional ``(C,)`` non-negative class weights (a tensor, or a list of floats from a config file);
            stored as a buffer, so it follows the module's device and is saved in checkpoints.
        label_smoothing: ε in [0, 1], default 0.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        ignore_index: class index left out of the loss (class-index targets only).

    Raises:
        TypeError: if ``weight`` or ``ignore_index`` has the wrong type.
        ValueError: if an argument is out of range.

    Example:
        >>> criterion = SoftTargetLoss()
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> criterion(logits, torch.tensor([[0.5, 0.5], [0.0, 1.0]]))
        tensor(0.6269)
        >>> criterion(logits, torch.tensor([0, 1]))
        tensor(0.1269)
    """

    weight: Tensor | None

    def __init__(
        self,
        *,
        weight: Tensor | Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        reduction: Reduction = "mean",
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        self.label_smoothing = check_probability("label_smoothing", label_smoothing)
        self.reduction: Reduction = check_choice("reduction", reduction, REDUCTIONS)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(expected("ignore_index", "an int", ignore_index))
        self.ignore_index = ignore_index
        self.register_buffer("weight", _class_weights("weight", weight))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the loss of ``logits`` ``(B, C, *d)`` against indices ``(B, *d)`` or dense targets."""
        return soft_target_cross_entropy(
            logits,
            target,
            weight=self.weight,
            label_smoothing=self.label_smoothing,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        """Show the non-default settings."""
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}, ignore_index={self.ignore_index}"


class SoftTargetBCELoss(nn.Module):
    """Binary cross-entropy with logits for multi-label, multi-hot or mixed targets, in float32.

    See :func:`~lightning_mix.functional.soft_target_binary_cross_entropy`: equal to
    :class:`torch.nn.BCEWithLogitsLoss` with per-class ``weight``/``pos_weight`` along dim 1, and label smoothing
    ``t' = (1 − ε)·t + ε/2``.

    Args:
        weight: optional ``(C,)`` per-class rescaling (a tensor or a list of floats), kept as a buffer.
        pos_weight: optional ``(C,)`` per-class weight of the positive term, kept as a buffer.
        label_smoothing: ε in [0, 1], default 0.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Raises:
        TypeError: if a weight has the wrong type.
        ValueError: if an argument is out of range.

    Example:
        >>> criterion = SoftTargetBCELoss(pos_weight=[1.0, 2.0])
        >>> criterion(torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        tensor(0.7798)
    """

    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(
        self,
        *,
        weight: Tensor | Sequence[float] | None = None,
        pos_weight: Tensor | Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.label_smoothing = check_probability("label_smoothing", label_smoothing)
        self.reduction: Reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.register_buffer("weight", _class_weights("weight", weight))
        self.register_buffer("pos_weight", _class_weights("pos_weight", pos_weight))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the loss of ``logits`` ``(B, C, *d)`` against targets of the same shape."""
        return soft_target_binary_cross_entropy(
            logits,
            target,
            weight=self.weight,
            pos_weight=self.pos_weight,
            label_smoothing=self.label_smoothing,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        """Show the settings."""
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"
