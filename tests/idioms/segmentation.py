"""Semantic segmentation with an int64 mask and an ignore value, in torchgeo's idiom."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from lightning_mix import SoftTargetLoss

from .base import Recorded, confident_

SEG_CLASSES = 4
IGNORE = 255


class SemanticSegmentationTask(Recorded):
    """A dict batch (``"image"``, ``"mask"``), ``nn.CrossEntropyLoss(ignore_index=..., weight=class_weights)`` on
    ``(B, C, H, W)`` logits and a ``(B, H, W)`` int64 mask, a ``MetricCollection`` of pixel accuracy and Jaccard
    index that ignore the same value.

    Idiom: microsoft/torchgeo torchgeo/trainers/segmentation.py (``SemanticSegmentationTask``: ``configure_losses``
    with ``ignore_index``, ``configure_metrics``, ``training_step``); ``loss="soft"`` swaps in
    ``lightning_mix.SoftTargetLoss`` with the same options.
    """

    def __init__(
        self,
        num_classes: int = SEG_CLASSES,
        ignore_index: int = IGNORE,
        class_weights: Tensor | None = None,
        loss: str = "ce",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = nn.Conv2d(3, num_classes, kernel_size=1)
        confident_(self.model)
        if loss == "ce":
            self.criterion: nn.Module = nn.CrossEntropyLoss(ignore_index=ignore_index, weight=class_weights)
        else:  # this project's own loss, as its segmentation notebook uses it
            self.criterion = SoftTargetLoss(ignore_index=ignore_index, weight=class_weights)
        metrics = MetricCollection(
            {
                "OverallAccuracy": MulticlassAccuracy(
                    num_classes=num_classes, ignore_index=ignore_index, multidim_average="global", average="micro"
                ),
                "JaccardIndex": MulticlassJaccardIndex(
                    num_classes=num_classes, ignore_index=ignore_index, average="micro"
                ),
            }
        )
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        x = batch["image"]
        y = batch["mask"]
        y_hat = self(x)
        self.record(y_hat)
        loss: Tensor = self.criterion(y_hat, y)
        self.log("train_loss", loss)
        self.train_metrics(y_hat, y)
        self.log_dict(self.train_metrics)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x = batch["image"]
        y = batch["mask"]
        y_hat = self(x)
        self.record_val(y, y_hat)
        self.log("val_loss", self.criterion(y_hat, y))
        self.val_metrics(y_hat, y)
        self.log_dict(self.val_metrics)
