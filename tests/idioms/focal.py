"""A custom functional focal loss registered with ``lightning_mix.register_loss`` (decorator form)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

import lightning_mix

from .base import Recorded, tiny_net


@lightning_mix.register_loss
def focal_loss(input: Tensor, target: Tensor, gamma: float = 2.0, reduction: str = "mean") -> Tensor:
    """Multiclass focal loss on logits and class indices, registered with the decorator form."""
    logp = F.log_softmax(input, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    loss = -((1 - logp.exp()) ** gamma) * logp
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


class FocalModule(Recorded):
    """A custom functional focal loss, registered with ``lightning_mix.register_loss``.

    Idiom: the functional focal losses of kornia (kornia/losses/focal.py, ``focal_loss(pred, target, alpha, gamma,
    reduction)``) and torchvision (torchvision/ops/focal_loss.py), called from ``training_step``.
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
