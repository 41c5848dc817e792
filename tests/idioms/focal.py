"""A custom functional focal loss registered with ``lightning_mix.register_loss`` (decorator form)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

import lightning_mix

from .base import Recorded, tiny_net


def focal_terms(input: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """The per-sample multiclass focal loss on logits and class indices (not registered)."""
    logp = F.log_softmax(input, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    return -((1 - logp.exp()) ** gamma) * logp


def reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


@lightning_mix.register_loss
def focal_loss(input: Tensor, target: Tensor, gamma: float = 2.0, reduction: str = "mean") -> Tensor:
    """Multiclass focal loss on logits and class indices, registered with the decorator form."""
    return reduce(focal_terms(input, target, gamma), reduction)


class FocalModule(Recorded):
    """A custom functional focal loss, registered with ``lightning_mix.register_loss``.

    Idiom: the functional focal losses of kornia/kornia (kornia/losses/focal.py,
    ``focal_loss(pred, target, alpha, gamma, reduction)``) and pytorch/vision (torchvision/ops/focal_loss.py),
    called from ``training_step``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.model = tiny_net()

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.record(logits)
        return focal_loss(logits, y, gamma=2.0)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.record_val(y, logits)
        self.log("val_loss", focal_loss(logits, y, gamma=2.0))


sigmoid_focal_loss = lightning_mix.register_loss(torchvision.ops.sigmoid_focal_loss, target="targets")


class SigmoidFocalMultiLabelTask(Recorded):
    """torchvision's ``sigmoid_focal_loss`` (argument ``targets``) on int64 multi-hot rows cast with ``.float()``,
    summed and divided by the batch size; registered in the function form, whose return value is called.

    Idiom: pytorch/vision torchvision/ops/focal_loss.py (``sigmoid_focal_loss(inputs, targets, alpha, gamma,
    reduction)``), used by torchvision's detection models with ``reduction="sum"`` over a normaliser.
    """

    def __init__(self) -> None:
        super().__init__()
        self.model = tiny_net()

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.record(logits)
        return sigmoid_focal_loss(logits, y.float(), alpha=0.25, gamma=2.0, reduction="sum") / x.shape[0]


@lightning_mix.register_loss
class FocalLoss(nn.Module):
    """A focal-loss module with a ``reduction`` attribute, registered as a class (every instance reads the mix).

    Idiom: the focal-loss modules of qubvel-org/segmentation_models.pytorch
    (segmentation_models_pytorch/losses/focal.py, ``FocalLoss(mode=...)``) and
    kornia/kornia (kornia/losses/focal.py, ``FocalLoss(alpha, gamma, reduction)``).
    """

    def __init__(self, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__()
        self.gamma, self.reduction = gamma, reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return reduce(focal_terms(input, target, self.gamma), self.reduction)


class FocalModuleClass(FocalModule):
    """The same step with the registered module class as ``self.criterion``."""

    def __init__(self) -> None:
        super().__init__()
        self.criterion = FocalLoss(gamma=2.0)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.record(logits)
        loss: Tensor = self.criterion(logits, y)
        return loss
