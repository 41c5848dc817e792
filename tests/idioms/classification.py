"""Image classification modules with class-index targets, each in the idiom of a public LightningModule."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Accuracy, MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MultilabelAccuracy,
    MultilabelFBetaScore,
)
from torchmetrics.functional import accuracy

from .base import NUM_CLASSES, Recorded, tiny_net


class TorchmetricsDocsModule(Recorded):
    """A modular ``Accuracy`` updated in ``training_step`` and logged as an object; ``num_classes`` only in metrics.

    Idiom: Lightning-AI/torchmetrics docs/source/pages/lightning.rst ("TorchMetrics in PyTorch Lightning").
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_net()
        self.train_acc = Accuracy(task="multiclass", num_classes=10)
        self.valid_acc = Accuracy(task="multiclass", num_classes=10)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        preds = self(x)
        self.record(preds)
        loss = F.cross_entropy(preds, y)
        self.train_acc(preds, y)
        self.log("train_acc", self.train_acc, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.record_val(y, logits)
        self.valid_acc(logits, y)
        self.log("valid_acc", self.valid_acc, on_step=False, on_epoch=True)


class HydraMNISTLitModule(Recorded):
    """``model_step`` returning (loss, preds, targets), ``MeanMetric`` loss, epoch accuracy, ``MaxMetric`` best.

    Idiom: ashleve/lightning-hydra-template src/models/mnist_module.py (``MNISTLitModule``).
    """

    def __init__(self, net: nn.Module | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net"])
        self.net = net if net is not None else tiny_net()
        self.criterion = nn.CrossEntropyLoss()
        self.train_acc = Accuracy(task="multiclass", num_classes=10)
        self.val_acc = Accuracy(task="multiclass", num_classes=10)
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def on_train_start(self) -> None:
        self.val_loss.reset()
        self.val_acc.reset()
        self.val_acc_best.reset()

    def model_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        logits = self.forward(x)
        loss = self.criterion(logits, y)
        preds = torch.argmax(logits, dim=1)
        return loss, preds, y

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, preds, targets = self.model_step(batch)
        self.record(self.forward(batch[0]))  # the same logits: the parameters have not moved yet
        self.train_loss(loss)
        self.train_acc(preds, targets)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, preds, targets = self.model_step(batch)
        self.record_val(targets, self.forward(batch[0]))
        self.val_loss(loss)
        self.val_acc(preds, targets)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)


class LitResnet(Recorded):
    """``forward`` returns ``F.log_softmax``; the loss is ``F.nll_loss``; a shared ``evaluate`` with a functional
    ``accuracy`` on argmax predictions, here also run for the training stage.

    Idiom: Lightning-AI/tutorials lightning_examples/cifar10-baseline/baseline.py (``LitResnet``).
    """

    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = tiny_net()

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        return F.log_softmax(out, dim=1)

    def evaluate(self, batch: Any, stage: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.nll_loss(logits, y)
        preds = torch.argmax(logits, dim=1)
        acc = accuracy(preds, y, task="multiclass", num_classes=10)
        self.log(f"{stage}_loss", loss, prog_bar=True)
        self.log(f"{stage}_acc", acc, prog_bar=True)
        if stage == "val":
            self.record_val(y, logits)
        else:
            self.record(logits)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.evaluate(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluate(batch, "val")


class LitMNIST(Recorded):
    """A ``shared_step`` with ``F.cross_entropy`` and the hand-written ``(logits.argmax(dim=-1) == y)`` accuracy.

    Idiom: Lightning-Universe/lightning-bolts pl_bolts/models/mnist_module.py (``LitMNIST.shared_step``), with
    the hand-written argmax accuracy found across public Lightning modules (``common_step`` returning
    ``loss, accuracy``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.l1 = tiny_net()

    def forward(self, x: Tensor) -> Tensor:
        return self.l1(x.view(x.size(0), 1, -1))

    def shared_step(self, batch: Any, step: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(dim=-1) == y).float().mean()
        self.log(f"{step}_loss", loss)
        self.log(f"{step}_accuracy", acc)
        if step == "val":
            self.record_val(y, logits)
        else:
            self.record(logits)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "val")


class ClassificationTask(Recorded):
    """A dict batch (``"image"``, ``"label"``), ``nn.CrossEntropyLoss(weight=class_weights)`` and a
    ``MetricCollection`` cloned per stage with a prefix, updated by ``self.train_metrics(y_hat, y)``; ``num_classes``
    only as a hyperparameter the callback has no need to read.

    Idiom: microsoft/torchgeo torchgeo/trainers/classification.py (``ClassificationTask``).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, class_weights: Tensor | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = tiny_net(num_classes)
        self.criterion = nn.CrossEntropyLoss(weight=class_weights)
        metrics = MetricCollection(
            {
                "OverallAccuracy": MulticlassAccuracy(num_classes=num_classes, average="micro"),
                "AverageAccuracy": MulticlassAccuracy(num_classes=num_classes, average="macro"),
                "JaccardIndex": MulticlassJaccardIndex(num_classes=num_classes),
                "F1Score": MulticlassF1Score(num_classes=num_classes, average="micro"),
            }
        )
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        x = batch["image"]
        y = batch["label"]
        y_hat = self(x)
        self.record(y_hat)
        loss: Tensor = self.criterion(y_hat, y)
        self.log("train_loss", loss)
        self.train_metrics(y_hat, y)
        self.log_dict(self.train_metrics)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x = batch["image"]
        y = batch["label"]
        y_hat = self(x)
        self.record_val(y, y_hat)
        self.log("val_loss", self.criterion(y_hat, y))
        self.val_metrics(y_hat, y)
        self.log_dict(self.val_metrics)


class MultiLabelClassificationTask(ClassificationTask):
    """int64 multi-hot ``(B, C)`` labels, ``nn.BCEWithLogitsLoss`` on ``y.to(torch.float)``, multilabel metrics
    updated with the sigmoid probabilities and the int labels.

    Idiom: microsoft/torchgeo torchgeo/trainers/classification.py (``MultiLabelClassificationTask``).
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__(num_classes)
        self.criterion = nn.BCEWithLogitsLoss()
        metrics = MetricCollection(
            {
                "OverallAccuracy": MultilabelAccuracy(num_labels=num_classes, average="micro"),
                "AverageAccuracy": MultilabelAccuracy(num_labels=num_classes, average="macro"),
                "F1Score": MultilabelFBetaScore(num_labels=num_classes, beta=1.0, average="micro"),
            }
        )
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")

    def training_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        x = batch["image"]
        y = batch["label"]
        y_hat = self(x)
        self.record(y_hat)
        y_hat_hard = torch.sigmoid(y_hat)
        loss: Tensor = self.criterion(y_hat, y.to(torch.float))
        self.log("train_loss", loss)
        self.train_metrics(y_hat_hard, y)
        self.log_dict(self.train_metrics)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x = batch["image"]
        y = batch["label"]
        y_hat = self(x)
        self.record_val(y, y_hat)
        self.log("val_loss", self.criterion(y_hat, y.to(torch.float)))
        self.val_metrics(torch.sigmoid(y_hat), y)
        self.log_dict(self.val_metrics)


class BinaryTask(Recorded):
    """One logit, ``nn.BCEWithLogitsLoss`` on ``logit.view(-1)`` and ``y.float()``, ``BinaryAccuracy``; the labels
    are stored as ``(B,)`` floats (or bools, or int64).

    Idiom: microsoft/torchgeo torchgeo/trainers/classification.py (``loss="bce"``: ``nn.BCEWithLogitsLoss()``) with
    a single-logit head and torchmetrics' ``BinaryAccuracy``.
    """

    def __init__(self, pos_weight: Tensor | None = None) -> None:
        super().__init__()
        self.model = tiny_net(1)
        self.criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        self.train_acc = BinaryAccuracy()
        self.val_acc = BinaryAccuracy()

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logit = self(x).view(-1)
        self.record(logit)
        loss: Tensor = self.criterion(logit, y.float())
        self.train_acc(logit.sigmoid(), y)
        self.log("train_acc", self.train_acc, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logit = self(x).view(-1)
        self.record_val(y, logit)
        self.val_acc(logit.sigmoid(), y)
        self.log("val_acc", self.val_acc)


class SmoothedTop5Module(Recorded):
    """``nn.CrossEntropyLoss(label_smoothing=0.1)`` with top-1 and top-5 accuracy, as the torchvision reference
    classification recipe reports ``acc1``/``acc5``.

    Idiom: pytorch/vision references/classification/train.py (``nn.CrossEntropyLoss(label_smoothing=...)``,
    ``utils.accuracy(output, target, topk=(1, 5))``), in a LightningModule with torchmetrics.
    """

    def __init__(self, label_smoothing: float = 0.1, class_weights: Tensor | None = None) -> None:
        super().__init__()
        self.model = tiny_net()
        self.criterion = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)
        self.acc1 = MulticlassAccuracy(num_classes=10, average="micro")
        self.acc5 = MulticlassAccuracy(num_classes=10, average="micro", top_k=5)
        self.val_acc5 = MulticlassAccuracy(num_classes=10, average="micro", top_k=5)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        image, target = batch
        output = self(image)
        self.record(output)
        loss: Tensor = self.criterion(output, target)
        self.log("train_acc1", self.acc1(output, target))
        self.log("train_acc5", self.acc5(output, target))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        image, target = batch
        output = self(image)
        self.record_val(target, output)
        self.val_acc5(output, target)
        self.log("val_acc5", self.val_acc5)


class AfterTransferModule(TorchmetricsDocsModule):
    """A dict batch turned into an ``(x, y)`` tuple, the input scaled, in ``on_after_batch_transfer``.

    Idiom: the ``on_after_batch_transfer`` hook of Lightning's LightningModule API (device-side transforms that
    rebuild the batch), as torchgeo's trainers use it for their augmentations; the step itself is the torchmetrics
    docs' one.
    """

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch["image"] / 16.0, batch["label"]


class NestedHparamsModule(TorchmetricsDocsModule):
    """``num_classes`` only inside a nested hyperparameter (``model_args``), as terratorch's tasks keep it.

    Idiom: IBM/terratorch terratorch/tasks/classification_tasks.py (``self.hparams["model_args"]["num_classes"]``).
    """

    def __init__(self, model_args: dict[str, Any] | None = None) -> None:
        super().__init__()
        model_args = model_args or {"num_classes": NUM_CLASSES}
        self.save_hyperparameters()
        num_classes = self.hparams["model_args"]["num_classes"]
        self.net = tiny_net(num_classes)
        self.train_acc = Accuracy(task="multiclass", num_classes=num_classes)
        self.valid_acc = Accuracy(task="multiclass", num_classes=num_classes)


class CompiledModule(TorchmetricsDocsModule):
    """The network wrapped in ``torch.compile``; loss and metrics outside the compiled region."""

    def __init__(self, backend: str = "inductor") -> None:
        super().__init__()
        self.net = torch.compile(tiny_net(), backend=backend)  # type: ignore[assignment]


# ------------------------------------------------------------------------------------------ idioms that cannot mix


class RecreatedLabelsModule(TorchmetricsDocsModule):
    """Labels re-created from Python numbers before the loss: no loss can see the mix (the callback warns)."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        y = torch.tensor(y.tolist(), device=x.device)
        preds = self(x)
        self.record(preds)
        return F.cross_entropy(preds, y)


def unregistered_focal_loss(pred: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """A focal loss that one-hot encodes the target (kornia's way), not registered: it reads plain labels."""
    target_one_hot = F.one_hot(target, num_classes=pred.shape[1]).to(pred.dtype)
    p = pred.softmax(dim=1)
    return (-target_one_hot * (1 - p) ** gamma * p.log()).sum(dim=1).mean()


class UnregisteredFocalModule(TorchmetricsDocsModule):
    """Idiom: kornia/losses/focal.py (``one_hot`` of the target inside the loss), used unregistered."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.record(logits)
        return unregistered_focal_loss(logits, y)


class TimmSmoothingModule(TorchmetricsDocsModule):
    """timm's ``LabelSmoothingCrossEntropy`` as the criterion: it gathers the own labels' log-probabilities and has
    no ``reduction`` to register, so it trains on the own labels (the callback warns).

    Idiom: huggingface/pytorch-image-models timm/loss/cross_entropy.py (``LabelSmoothingCrossEntropy``), the
    criterion of timm-based LightningModules.
    """

    def __init__(self) -> None:
        super().__init__()
        from timm.loss import LabelSmoothingCrossEntropy

        self.criterion = LabelSmoothingCrossEntropy(smoothing=0.1)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        preds = self(x)
        self.record(preds)
        loss: Tensor = self.criterion(preds, y)
        return loss


def dense_dice_loss(logits: Tensor, target: Tensor) -> Tensor:
    """A Dice loss written for dense ``(B, C)`` targets, as modules written for soft targets have."""
    if target.shape != logits.shape:
        raise ValueError(f"Expected targets of shape {tuple(logits.shape)}, but got {tuple(target.shape)}.")
    probs = logits.softmax(dim=1)
    return 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)


class DenseDiceModule(TorchmetricsDocsModule):
    """A step that raises on class-index labels: its loss wants dense targets (``targets="soft"`` would fit)."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        return dense_dice_loss(logits, y)
