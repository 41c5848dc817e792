"""A torchmetrics accuracy that understands mixed (soft) targets."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_mix.functional.accuracy import (
    AccuracyMode,
    _mixed_accuracy_arg_validation,
    _mixed_accuracy_compute,
    _mixed_accuracy_tensor_validation,
    _mixed_accuracy_update,
    _mixed_label_accuracy_update,
)
from lightning_mix.labels import MixedLabels

__all__ = ["MixedAccuracy"]


class MixedAccuracy(Metric):
    """Accuracy on class indices or mixed targets, synchronised across processes like any torchmetrics metric.

    ``update(preds, target)`` takes ``(B, C, *d)`` logits or probabilities and ``(B, *d)`` class indices,
    ``(B, C, *d)`` dense targets or :class:`~lightning_mix.MixedLabels`; see
    :func:`~lightning_mix.functional.mixed_accuracy` for the modes and the label-smoothing rule. With class
    indices it equals ``MulticlassAccuracy(num_classes, average="micro", top_k=top_k)``, so one metric class
    serves mixed training batches and clean validation batches. Given :class:`~lightning_mix.MixedLabels` (the
    callback's default target form), a top-k hit of the own label earns λ and one of the partner's label
    1 − λ, exactly the credit of the matching dense target, computed from the two label sets.

    Training accuracy on mixed batches measures how well the model recovers both sources of a mixed sample. It
    is lower than, and not comparable with, validation accuracy on clean samples.

    The states are a float32 sum of credit and an int64 count, both reduced by ``"sum"`` across processes.

    Args:
        num_classes: C; when given, checked against the predictions. Inferred otherwise.
        top_k: number of highest-scoring classes that earn credit.
        mode: ``"credit"`` (target mass on the top-k classes) or ``"argmax"`` (dominant target class in the
            top-k).
        label_smoothing: ε the dense targets were smoothed with, undone before scoring; 0 by default.
        ignore_index: class index whose positions are not counted (class-index targets only).
        validate_args: check the target values on every update (reads device data, so it waits for an
            accelerator); arguments and shapes are always checked.
        kwargs: passed on to :class:`torchmetrics.Metric` (``sync_on_compute``, ``dist_sync_fn``, ...).

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if an argument is out of range.

    Example:
        >>> metric = MixedAccuracy(num_classes=3)
        >>> metric.update(torch.tensor([[0.9, 0.1, 0.0]]), torch.tensor([[0.7, 0.3, 0.0]]))
        >>> metric.update(torch.tensor([[0.1, 0.8, 0.1]]), torch.tensor([1]))
        >>> metric.compute()  # (0.7 + 1) / 2
        tensor(0.8500)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    correct: Tensor
    total: Tensor

    def __init__(
        self,
        *,
        num_classes: int | None = None,
        top_k: int = 1,
        mode: AccuracyMode = "credit",
        label_smoothing: float = 0.0,
        ignore_index: int | None = None,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _mixed_accuracy_arg_validation(top_k, mode, num_classes, label_smoothing, ignore_index)
        self.num_classes = num_classes
        self.top_k = top_k
        self.mode: AccuracyMode = mode
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.add_state("correct", torch.zeros((), dtype=torch.float32), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add the credit of one batch."""
        if isinstance(target, MixedLabels):  # λ-credit from the two label sets, no dense target built
            own, partner = target.labels, target.partner_labels
            for labels in (own, partner):
                _mixed_accuracy_tensor_validation(
                    preds, labels, self.num_classes, self.top_k, self.ignore_index, self.validate_args
                )
            correct, total = _mixed_label_accuracy_update(
                preds, own, partner, target.lam, top_k=self.top_k, mode=self.mode, ignore_index=self.ignore_index
            )
        else:
            _mixed_accuracy_tensor_validation(
                preds, target, self.num_classes, self.top_k, self.ignore_index, self.validate_args
            )
            correct, total = _mixed_accuracy_update(
                preds,
                target,
                top_k=self.top_k,
                mode=self.mode,
                label_smoothing=self.label_smoothing,
                ignore_index=self.ignore_index,
            )
        self.correct += correct
        self.total += total

    def compute(self) -> Tensor:
        """Return the mean credit over everything seen since the last reset."""
        return _mixed_accuracy_compute(self.correct, self.total)
