"""A HuggingFace-style model that computes its own loss from ``labels``, and a LightningModule fine-tuning it.

The stand-in follows ``ViTForImageClassification.forward`` and ``ForSequenceClassificationLoss`` of
huggingface/transformers (src/transformers/models/vit/modeling_vit.py, src/transformers/loss/loss_utils.py): the
problem type is decided once, on the first call with labels, from ``config.num_labels`` and ``labels.dtype``
(int64/int32: single-label cross-entropy on ``logits.view(-1, num_labels)`` and ``labels.view(-1)``; anything else:
multi-label ``BCEWithLogitsLoss``), and written into the config, so every later call (validation included) uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from torchmetrics import Accuracy
from torchmetrics.classification import MultilabelAccuracy

from .base import NUM_CLASSES, Recorded, confident_


@dataclass
class TinyConfig:
    """The part of a ``PretrainedConfig`` the classification head reads."""

    num_labels: int = NUM_CLASSES
    problem_type: str | None = None


@dataclass
class ImageClassifierOutput:
    loss: Tensor | None
    logits: Tensor


class TinyForImageClassification(nn.Module):
    """A linear "backbone" with HuggingFace's classification-head loss logic."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.classifier = nn.Linear(64, config.num_labels)
        confident_(self.classifier)

    def forward(self, pixel_values: Tensor, labels: Tensor | None = None) -> ImageClassifierOutput:
        logits = self.classifier(pixel_values.flatten(1))
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif self.num_labels > 1 and (labels.dtype == torch.long or labels.dtype == torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression":
                loss = MSELoss()(logits.squeeze(), labels.squeeze())
            elif self.config.problem_type == "single_label_classification":
                loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
            else:
                loss = BCEWithLogitsLoss()(logits, labels)
        return ImageClassifierOutput(loss=loss, logits=logits)


class HFImageClassifier(Recorded):
    """``outputs = self.model(**batch)``, ``outputs.loss`` returned, metrics on ``outputs.logits`` and
    ``batch["labels"]``; ``num_classes`` only in ``model.config.num_labels``.

    Idiom: the Lightning fine-tuning modules around ``AutoModelFor*Classification`` (e.g. Lightning-AI/tutorials
    lightning_examples/text-transformers/text-transformers.py: ``outputs = self(**batch)``, ``loss = outputs[0]``).
    """

    def __init__(self, model: nn.Module | None = None, multi_label: bool = False) -> None:
        super().__init__()
        self.model = model if model is not None else TinyForImageClassification(TinyConfig())
        num_labels = self.model.config.num_labels
        self.multi_label = multi_label
        if multi_label:
            self.train_acc: Any = MultilabelAccuracy(num_labels=num_labels)
            self.val_acc: Any = MultilabelAccuracy(num_labels=num_labels)
        else:
            self.train_acc = Accuracy(task="multiclass", num_classes=num_labels)
            self.val_acc = Accuracy(task="multiclass", num_classes=num_labels)

    def forward(self, **inputs: Any) -> Any:
        return self.model(**inputs)

    def _metric_inputs(self, logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        return (logits.sigmoid(), labels.int()) if self.multi_label else (logits, labels)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        outputs = self(**batch)
        self.record(outputs.logits)
        loss: Tensor = outputs.loss
        self.log("train_loss", loss)
        self.train_acc(*self._metric_inputs(outputs.logits, batch["labels"]))
        self.log("train_acc", self.train_acc, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        outputs = self(**batch)
        self.record_val(batch["labels"], outputs.logits)
        self.log("val_loss", outputs.loss)
        self.val_acc(*self._metric_inputs(outputs.logits, batch["labels"]))
        self.log("val_acc", self.val_acc)
