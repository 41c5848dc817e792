"""Public LightningModule idioms trained with only a mixing callback added, in its default ``targets="labels"``.

The modules live in ``tests/idioms`` (each names the public file whose idiom it follows). Every test runs a real
tiny ``Trainer`` with each of the three callbacks of issue 12 and checks, at every training step:

- the loss ``training_step`` returned equals λ·L(x, y) + (1 − λ)·L(x, y_partner), reduced as the loss reduces,
  computed here independently from the step's logits, ``last_params`` and ``last_target``, and differs from the
  loss of the unmixed labels (so the check can tell the two apart);
- the training metrics equal the metric of that step's predictions against the samples' own labels;
- validation saw plain ``torch.Tensor`` labels, and its metrics are those of its predictions.

None of these modules trains on ``main`` before the mixed labels land (soft ``(B, C)`` targets break them).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from lightning import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from sklearn.datasets import load_digits
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multiclass_jaccard_index,
    multilabel_accuracy,
    multilabel_fbeta_score,
)

from idioms import classification as cls
from idioms import hf
from idioms.base import NUM_CLASSES, confident_
from idioms.segmentation import IGNORE, SEG_CLASSES, SemanticSegmentationTask
from lightning_mix import CutMixCallback, MixCallback, MixParams, MixUpCallback
from tiny_trainer import make_trainer

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*The number of training batches.*",
    "ignore:.*`validation_step` but have no `val_dataloader`.*",
    "ignore:.*resuming from a checkpoint that ended before the epoch ended.*",
    "ignore:.*You called `self.log.*",
)

UNREAD = "no loss read the mixed labels"
MIXED_NOTE = "the targets of this training step were mixed"

CALLBACKS = [
    pytest.param(lambda **kw: CutMixCallback(alpha=1.0, seed=7, **kw), id="cutmix"),
    pytest.param(lambda **kw: MixUpCallback(alpha=1.0, seed=7, **kw), id="mixup"),
    pytest.param(lambda **kw: MixCallback(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", seed=7, **kw), id="elem"),
]
parametrize_callbacks = pytest.mark.parametrize("make_callback", CALLBACKS)


# ---------------------------------------------------------------------------------------------------------- data


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)  # the networks' initial weights


@functools.cache
def digits() -> tuple[Tensor, Tensor]:
    """sklearn's 8×8 digits as ``(N, 1, 8, 8)`` float32 in [0, 1] and int64 class indices."""
    data = load_digits()
    return torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16, torch.tensor(data.target)


def train_val(n_train: int = 16, n_val: int = 8) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    x, y = digits()
    return (x[:n_train], y[:n_train]), (x[n_train : n_train + n_val], y[n_train : n_train + n_val])


def loaders(
    labels: Callable[[Tensor], Tensor] = lambda y: y, batch_size: int = 8, steps: int = 2
) -> tuple[DataLoader, DataLoader]:
    (x, y), (xv, yv) = train_val(steps * batch_size, batch_size)
    return (
        DataLoader(TensorDataset(x, labels(y)), batch_size=batch_size),
        DataLoader(TensorDataset(xv, labels(yv)), batch_size=batch_size),
    )


class DictData(Dataset):
    """Samples as dicts, as torchgeo and HuggingFace datasets give them."""

    def __init__(self, x: Tensor, y: Tensor, keys: tuple[str, str] = ("image", "label"), scale: float = 1.0) -> None:
        self.x, self.y, self.keys, self.scale = x * scale, y, keys, scale

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {self.keys[0]: self.x[i], self.keys[1]: self.y[i]}


def dict_loaders(
    keys: tuple[str, str] = ("image", "label"), labels: Callable[[Tensor], Tensor] = lambda y: y, scale: float = 1.0
) -> tuple[DataLoader, DataLoader]:
    (x, y), (xv, yv) = train_val()
    return (
        DataLoader(DictData(x, labels(y), keys, scale), batch_size=8),
        DataLoader(DictData(xv, labels(yv), keys, scale), batch_size=8),
    )


def multi_hot(y: Tensor) -> Tensor:
    """int64 ``(B, C)`` multi-hot rows: the digit, and the digit plus one when it is even."""
    rows = F.one_hot(y, NUM_CLASSES)
    rows[:, 1:] |= rows[:, :-1] * (y % 2 == 0).long().unsqueeze(1)
    return rows


# ------------------------------------------------------------------------------------------------ the recording


@dataclass
class Step:
    loss: Tensor
    logits: Tensor
    params: MixParams
    target: Tensor
    metrics: dict[str, Tensor]


class Recorder(Callback):
    """Keeps, per training step, the returned loss, the logits, the mixing parameters and the logged metrics."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        mixer = MixCallback.from_trainer(trainer)
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        assert mixer.last_params is not None and mixer.last_target is not None
        assert type(mixer.last_target) is torch.Tensor
        self.steps.append(
            Step(
                loss=loss.detach().clone(),
                logits=pl_module.seen["logits"],
                params=mixer.last_params,
                target=mixer.last_target.clone(),
                metrics={k: v.detach().clone() for k, v in trainer.callback_metrics.items()},
            )
        )


@dataclass
class Run:
    steps: list[Step]
    trainer: Trainer
    warnings: list[str]


def fit(
    module: LightningModule,
    callback: MixCallback,
    train: DataLoader,
    val: DataLoader | None,
    ckpt_path: str | None = None,
    extra: tuple[Callback, ...] = (),
    **kw: Any,
) -> Run:
    recorder = Recorder()
    trainer = make_trainer(callback, recorder, *extra, limit_val_batches=1 if val is not None else 0, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, train, val, ckpt_path=ckpt_path)
    return Run(recorder.steps, trainer, [str(w.message) for w in caught])


# ------------------------------------------------------------------------------------- the independent references


def lam_like(params: MixParams, loss: Tensor) -> Tensor:
    """Each sample's λ, broadcast over the elements of its unreduced loss."""
    return params.lam.view(-1, *[1] * (loss.ndim - 1))


def mixed_mean(unreduced: Callable[[Tensor], Tensor], step: Step, lam: Tensor | None = None) -> Tensor:
    """mean of λ·L(y) + (1 − λ)·L(y_partner) over the samples (and elements) of the unreduced loss."""
    own, other = unreduced(step.target), unreduced(step.target[step.params.partner])
    lam = lam_like(step.params, own) if lam is None else lam
    return (lam * own + (1 - lam) * other).mean()


def mixed_weighted_mean(
    unreduced: Callable[[Tensor], Tensor], weight: Callable[[Tensor], Tensor], step: Step, lam: Tensor | None = None
) -> Tensor:
    """Σ[λ·w_a·l_a + (1 − λ)·w_b·l_b] / Σ[λ·w_a + (1 − λ)·w_b]: ``unreduced`` already weighs (torch's "none")."""
    own_target, other_target = step.target, step.target[step.params.partner]
    own, other = unreduced(own_target), unreduced(other_target)
    lam = lam_like(step.params, own) if lam is None else lam
    numerator = (lam * own + (1 - lam) * other).sum()
    return numerator / (lam * weight(own_target) + (1 - lam) * weight(other_target)).sum()


def check_losses(
    run: Run, expected: Callable[[Step], Tensor], plain: Callable[[Step], Tensor] | None, tol: float = 1e-5
) -> None:
    """Every step returned the λ-interpolated loss, and no warning that the mix went unread. ``plain``, the loss
    of the unmixed labels, must differ clearly, so that a step trained on its own labels fails; None skips that
    (a network whose logits hardly depend on the input has the same mean loss over a permutation of the labels)."""
    assert len(run.steps) == 2
    assert not [w for w in run.warnings if UNREAD in w]
    for step in run.steps:
        assert bool(step.params.mixed.all())
        want = expected(step)
        torch.testing.assert_close(step.loss.float(), want.float(), rtol=tol, atol=tol)
        if plain is not None:
            gap = (plain(step).float() - want.float()).abs()
            assert gap > 10 * tol * max(1.0, float(want.abs())), "the mix must show"


def check_validation(module: Any, run: Run, name: str, metric: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Validation saw plain tensors, and its logged metric is the metric of its logits against its labels."""
    assert module.val_seen
    assert all(kind is torch.Tensor for kind, _, _ in module.val_seen)
    _, logits, y = module.val_seen[-1]
    torch.testing.assert_close(run.trainer.callback_metrics[name], metric(logits, y).float(), rtol=1e-6, atol=1e-6)


def ce(step: Step, **kwargs: Any) -> Callable[[Tensor], Tensor]:
    return lambda y: F.cross_entropy(step.logits, y, reduction="none", **kwargs)


def plain_ce(step: Step) -> Tensor:
    return F.cross_entropy(step.logits, step.target)


def acc(logits: Tensor, y: Tensor) -> Tensor:
    return (logits.argmax(-1) == y).float().mean()


# -------------------------------------------------------------------------------------------------- the corpus


@parametrize_callbacks
def test_torchmetrics_accuracy_in_training_step(make_callback: Callable) -> None:
    module = cls.TorchmetricsDocsModule()
    run = fit(module, make_callback(), *loaders())
    check_losses(run, lambda s: mixed_mean(ce(s), s), plain_ce)
    for step in run.steps:
        torch.testing.assert_close(step.metrics["train_acc"], acc(step.logits, step.target))
    check_validation(module, run, "valid_acc", acc)


@parametrize_callbacks
def test_hydra_template_model_step_mean_metric_and_epoch_accuracy(make_callback: Callable) -> None:
    module = cls.HydraMNISTLitModule()
    run = fit(module, make_callback(), *loaders())
    check_losses(run, lambda s: mixed_mean(ce(s), s), plain_ce)
    metrics = run.trainer.callback_metrics  # epoch values: the two steps together
    torch.testing.assert_close(metrics["train/loss"], torch.stack([s.loss for s in run.steps]).mean())
    preds = torch.cat([s.logits for s in run.steps])
    torch.testing.assert_close(metrics["train/acc"], acc(preds, torch.cat([s.target for s in run.steps])))
    check_validation(module, run, "val/acc", acc)
    torch.testing.assert_close(metrics["val/acc_best"], metrics["val/acc"])


@parametrize_callbacks
def test_log_softmax_forward_with_nll_loss_and_functional_accuracy(make_callback: Callable) -> None:
    module = cls.LitResnet()
    run = fit(module, make_callback(), *loaders())
    nll = lambda s: lambda y: F.nll_loss(s.logits, y, reduction="none")  # noqa: E731
    check_losses(run, lambda s: mixed_mean(nll(s), s), lambda s: F.nll_loss(s.logits, s.target))
    for step in run.steps:
        torch.testing.assert_close(step.metrics["train_acc"], acc(step.logits, step.target))
    check_validation(module, run, "val_acc", acc)


@parametrize_callbacks
@pytest.mark.parametrize("batch_size", [8, NUM_CLASSES], ids=["batch8", "batch-equals-classes"])
def test_hand_written_argmax_accuracy(make_callback: Callable, batch_size: int) -> None:
    # With the batch size equal to the class count, `(B,) == (B, C)` would broadcast silently to (B, B).
    module = cls.LitMNIST()
    run = fit(module, make_callback(), *loaders(batch_size=batch_size))
    check_losses(run, lambda s: mixed_mean(ce(s), s), plain_ce)
    for step in run.steps:
        assert step.logits.shape == (batch_size, NUM_CLASSES)
        torch.testing.assert_close(step.metrics["train_accuracy"], acc(step.logits, step.target))
    check_validation(module, run, "val_accuracy", acc)


def weighted(class_weights: Tensor, ignore_index: int | None = None) -> Callable[[Tensor], Tensor]:
    """The weight each target element carries in a weighted mean: its class weight, 0 where ignored."""

    def weight(y: Tensor) -> Tensor:
        keep = torch.ones_like(y, dtype=torch.bool) if ignore_index is None else y != ignore_index
        return torch.where(keep, class_weights[torch.where(keep, y, 0)], 0.0)

    return weight


@parametrize_callbacks
@pytest.mark.parametrize("class_weights", [None, torch.linspace(0.5, 2.0, NUM_CLASSES)], ids=["unweighted", "weighted"])
def test_torchgeo_classification_task_dict_batch_metric_collection(
    make_callback: Callable, class_weights: Tensor | None
) -> None:
    module = cls.ClassificationTask(class_weights=class_weights)
    run = fit(module, make_callback(), *dict_loaders())
    if class_weights is None:
        check_losses(run, lambda s: mixed_mean(ce(s), s), plain_ce)
    else:
        check_losses(
            run,
            lambda s: mixed_weighted_mean(ce(s, weight=class_weights), weighted(class_weights), s),
            lambda s: F.cross_entropy(s.logits, s.target, weight=class_weights),
        )
    for step in run.steps:
        preds, y = step.logits, step.target
        expected = {
            "train_OverallAccuracy": acc(preds, y),
            "train_AverageAccuracy": multiclass_accuracy(preds, y, NUM_CLASSES, average="macro"),
            "train_JaccardIndex": multiclass_jaccard_index(preds, y, NUM_CLASSES),
            "train_F1Score": multiclass_f1_score(preds, y, NUM_CLASSES, average="micro"),
        }
        for name, value in expected.items():
            torch.testing.assert_close(step.metrics[name], value, msg=name)
    check_validation(module, run, "val_OverallAccuracy", acc)


@parametrize_callbacks
def test_torchgeo_multilabel_int_multi_hot_bce_on_float_and_multilabel_metrics(make_callback: Callable) -> None:
    module = cls.MultiLabelClassificationTask()
    run = fit(module, make_callback(), *dict_loaders(labels=multi_hot))
    bce = lambda s: lambda y: F.binary_cross_entropy_with_logits(s.logits, y.float(), reduction="none")  # noqa: E731
    check_losses(
        run, lambda s: mixed_mean(bce(s), s), lambda s: F.binary_cross_entropy_with_logits(s.logits, s.target.float())
    )
    for step in run.steps:
        assert step.target.dtype == torch.int64 and step.target.shape == (8, NUM_CLASSES)
        probs, y = step.logits.sigmoid(), step.target
        expected = {
            "train_OverallAccuracy": multilabel_accuracy(probs, y, num_labels=NUM_CLASSES, average="micro"),
            "train_AverageAccuracy": multilabel_accuracy(probs, y, num_labels=NUM_CLASSES, average="macro"),
            "train_F1Score": multilabel_fbeta_score(probs, y, beta=1.0, num_labels=NUM_CLASSES, average="micro"),
        }
        for name, value in expected.items():
            torch.testing.assert_close(step.metrics[name], value, msg=name)
    check_validation(
        module,
        run,
        "val_OverallAccuracy",
        lambda z, y: multilabel_accuracy(z.sigmoid(), y, num_labels=NUM_CLASSES, average="micro"),
    )


@parametrize_callbacks
@pytest.mark.parametrize("dtype", [torch.float32, torch.bool, torch.int64], ids=["float", "bool", "int64"])
@pytest.mark.parametrize("pos_weight", [None, torch.tensor(3.0)], ids=["plain", "pos_weight"])
def test_binary_one_logit_bce_with_logits_and_binary_accuracy(
    make_callback: Callable, dtype: torch.dtype, pos_weight: Tensor | None
) -> None:
    module = cls.BinaryTask(pos_weight)
    run = fit(module, make_callback(), *loaders(labels=lambda y: (y >= 5).to(dtype)))

    def bce(step: Step, reduction: str = "none") -> Callable[[Tensor], Tensor]:
        return lambda y: F.binary_cross_entropy_with_logits(
            step.logits, y.float(), pos_weight=pos_weight, reduction=reduction
        )

    check_losses(run, lambda s: mixed_mean(bce(s), s), lambda s: bce(s, "mean")(s.target))
    binary_acc = lambda z, y: ((z > 0) == y.bool()).float().mean()  # noqa: E731
    for step in run.steps:
        assert step.target.dtype == dtype and step.target.shape == (8,)
        torch.testing.assert_close(step.metrics["train_acc"], binary_acc(step.logits, step.target))
    check_validation(module, run, "val_acc", binary_acc)


@parametrize_callbacks
@pytest.mark.parametrize("class_weights", [None, torch.linspace(0.5, 2.0, NUM_CLASSES)], ids=["unweighted", "weighted"])
def test_label_smoothing_in_the_loss_and_top5_accuracy(make_callback: Callable, class_weights: Tensor | None) -> None:
    module = cls.SmoothedTop5Module(label_smoothing=0.1, class_weights=class_weights)
    run = fit(module, make_callback(), *loaders())
    weights = torch.ones(NUM_CLASSES) if class_weights is None else class_weights
    check_losses(
        run,
        lambda s: mixed_weighted_mean(ce(s, weight=class_weights, label_smoothing=0.1), weighted(weights), s),
        lambda s: F.cross_entropy(s.logits, s.target, weight=class_weights, label_smoothing=0.1),
    )
    top5 = lambda z, y: (z.topk(5, dim=-1).indices == y.unsqueeze(-1)).any(-1).float().mean()  # noqa: E731
    for step in run.steps:
        torch.testing.assert_close(step.metrics["train_acc1"], acc(step.logits, step.target))
        torch.testing.assert_close(step.metrics["train_acc5"], top5(step.logits, step.target))
    check_validation(module, run, "val_acc5", top5)


@parametrize_callbacks
def test_tuple_batch_rebuilt_in_on_after_batch_transfer(make_callback: Callable) -> None:
    module = cls.AfterTransferModule()
    run = fit(module, make_callback(), *dict_loaders(scale=16.0))
    check_losses(run, lambda s: mixed_mean(ce(s), s), plain_ce)
    for step in run.steps:
        torch.testing.assert_close(step.metrics["train_acc"], acc(step.logits, step.target))
    check_validation(module, run, "valid_acc", acc)


@parametrize_callbacks
def test_num_classes_only_in_a_nested_hyperparameter(make_callback: Callable) -> None:
    module = cls.NestedHparamsModule()
    assert "num_classes" not in module.hparams and not hasattr(module, "num_classes")
    run = fit(module, make_callback(), *loaders())
    check_losses(run, lambda s: mixed_mean(ce(s), s), plain_ce)
    check_validation(module, run, "valid_acc", acc)


@parametrize_callbacks
@pytest.mark.parametrize("form", ["function", "module-class"])
def test_registered_custom_focal_loss(make_callback: Callable, form: str) -> None:
    from idioms.focal import FocalModule, FocalModuleClass, focal_loss, focal_terms

    module = FocalModule() if form == "function" else FocalModuleClass()
    run = fit(module, make_callback(), *loaders())
    focal = lambda s: lambda y: focal_terms(s.logits, y)  # noqa: E731
    check_losses(run, lambda s: mixed_mean(focal(s), s), lambda s: focal(s)(s.target).mean())
    _, logits, y = module.val_seen[-1]
    torch.testing.assert_close(run.trainer.callback_metrics["val_loss"], focal_loss(logits, y))


@parametrize_callbacks
def test_registered_torchvision_sigmoid_focal_loss_on_multi_hot_rows_summed(make_callback: Callable) -> None:
    from torchvision.ops import sigmoid_focal_loss

    from idioms.focal import SigmoidFocalMultiLabelTask

    run = fit(SigmoidFocalMultiLabelTask(), make_callback(), *loaders(labels=multi_hot))
    focal = lambda s: lambda y: sigmoid_focal_loss(s.logits, y.float(), alpha=0.25, gamma=2.0)  # noqa: E731
    check_losses(
        run,
        lambda s: mixed_mean(focal(s), s) * NUM_CLASSES,  # summed over the classes, averaged over the batch
        lambda s: focal(s)(s.target).sum() / 8,
    )


# --------------------------------------------------------------------------------------- a HuggingFace-style model


@parametrize_callbacks
def test_model_computing_its_own_single_label_loss_from_labels(make_callback: Callable) -> None:
    module = hf.HFImageClassifier()
    run = fit(module, make_callback(), *dict_loaders(keys=("pixel_values", "labels")))
    check_losses(run, lambda s: mixed_mean(ce(s), s), plain_ce)
    for step in run.steps:
        torch.testing.assert_close(step.metrics["train_acc"], acc(step.logits, step.target))
    # The problem type is read from the mixed labels' dtype and kept for validation, which stays cross-entropy.
    assert module.model.config.problem_type == "single_label_classification"
    check_validation(module, run, "val_acc", acc)
    _, logits, y = module.val_seen[-1]
    torch.testing.assert_close(run.trainer.callback_metrics["val_loss"], F.cross_entropy(logits, y))


@parametrize_callbacks
def test_model_computing_its_own_multi_label_loss_from_float_labels(make_callback: Callable) -> None:
    module = hf.HFImageClassifier(multi_label=True)
    as_float = lambda y: multi_hot(y).float()  # noqa: E731
    run = fit(module, make_callback(), *dict_loaders(keys=("pixel_values", "labels"), labels=as_float))
    bce = lambda s: lambda y: F.binary_cross_entropy_with_logits(s.logits, y, reduction="none")  # noqa: E731
    check_losses(run, lambda s: mixed_mean(bce(s), s), lambda s: F.binary_cross_entropy_with_logits(s.logits, s.target))
    for step in run.steps:
        want = multilabel_accuracy(step.logits.sigmoid(), step.target.int(), NUM_CLASSES)
        torch.testing.assert_close(step.metrics["train_acc"], want)
    assert module.model.config.problem_type == "multi_label_classification"
    check_validation(module, run, "val_acc", lambda z, y: multilabel_accuracy(z.sigmoid(), y.int(), NUM_CLASSES))


@parametrize_callbacks
def test_transformers_vit_with_a_tiny_random_config(make_callback: Callable) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=8,
        patch_size=4,
        num_channels=1,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=8,
        num_labels=NUM_CLASSES,
    )
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config)
    confident_(model.classifier)
    module = hf.HFImageClassifier(model)
    run = fit(module, make_callback(), *dict_loaders(keys=("pixel_values", "labels")))
    check_losses(run, lambda s: mixed_mean(ce(s), s), None)  # a 1-layer ViT's logits hardly depend on the input
    for step in run.steps:
        torch.testing.assert_close(step.metrics["train_acc"], acc(step.logits, step.target))
    assert module.model.config.problem_type == "single_label_classification"
    check_validation(module, run, "val_acc", acc)


# ----------------------------------------------------------------------------------------------- segmentation


def segmentation_loaders() -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(24, 3, 8, 8, generator=g)
    masks = torch.randint(SEG_CLASSES, (24, 8, 8), generator=g)
    masks[torch.rand(24, 8, 8, generator=g) < 0.1] = IGNORE
    return (
        DataLoader(DictData(images[:16], masks[:16], ("image", "mask")), batch_size=8),
        DataLoader(DictData(images[16:], masks[16:], ("image", "mask")), batch_size=8),
    )


def pixel_lam(params: MixParams, mask: Tensor) -> Tensor:
    """Each pixel's λ: 0 inside a CutMix box (the partner's pixel), 1 outside; the sample's λ for MixUp."""
    h = torch.arange(mask.shape[-2]).view(1, -1, 1)
    w = torch.arange(mask.shape[-1]).view(1, 1, -1)
    if params.box.shape[1] == 0:  # MixUp only: no box
        inside = torch.zeros(mask.shape, dtype=torch.bool)
    else:
        box = params.box.view(-1, 2, 2, 1, 1)
        inside = (h >= box[:, 0, 0]) & (h < box[:, 0, 1]) & (w >= box[:, 1, 0]) & (w < box[:, 1, 1])
    cut = (params.mixed & params.cutmix).view(-1, 1, 1)
    return torch.where(cut, (~inside).float(), params.lam.view(-1, 1, 1).expand(mask.shape))


def pasted(step: Step) -> Tensor:
    """The mask of the mixed image, as CutMix pastes the box: for MixUp samples, the own mask."""
    return torch.where(pixel_lam(step.params, step.target) == 0, step.target[step.params.partner], step.target)


@parametrize_callbacks
@pytest.mark.parametrize("class_weights", [None, torch.tensor([0.5, 1.0, 1.5, 2.0])], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss", ["ce", "soft"], ids=["CrossEntropyLoss", "SoftTargetLoss"])
def test_torchgeo_segmentation_int_mask_with_ignore_index(
    make_callback: Callable, class_weights: Tensor | None, loss: str
) -> None:
    module = SemanticSegmentationTask(class_weights=class_weights, loss=loss)
    run = fit(module, make_callback(target_key="mask"), *segmentation_loaders())
    weights = torch.ones(SEG_CLASSES) if class_weights is None else class_weights

    def expected(step: Step) -> Tensor:
        unreduced = ce(step, weight=class_weights, ignore_index=IGNORE)
        return mixed_weighted_mean(unreduced, weighted(weights, IGNORE), step, pixel_lam(step.params, step.target))

    def plain(step: Step) -> Tensor:
        return F.cross_entropy(step.logits, step.target, weight=class_weights, ignore_index=IGNORE)

    check_losses(run, expected, plain)
    for step in run.steps:
        preds, y = step.logits, pasted(step)
        overall = multiclass_accuracy(preds, y, SEG_CLASSES, average="micro", ignore_index=IGNORE)
        jaccard = multiclass_jaccard_index(preds, y, SEG_CLASSES, average="micro", ignore_index=IGNORE)
        torch.testing.assert_close(step.metrics["train_OverallAccuracy"], overall)
        torch.testing.assert_close(step.metrics["train_JaccardIndex"], jaccard)
    check_validation(
        module,
        run,
        "val_OverallAccuracy",
        lambda z, y: multiclass_accuracy(z, y, SEG_CLASSES, average="micro", ignore_index=IGNORE),
    )


# ------------------------------------------------------------------------------------ idioms that cannot mix


@parametrize_callbacks
@pytest.mark.parametrize(
    "module_class",
    [cls.RecreatedLabelsModule, cls.UnregisteredFocalModule, cls.TimmSmoothingModule],
    ids=["torch.tensor", "unregistered", "timm"],
)
def test_a_loss_that_never_reads_the_mixed_labels_warns_once(make_callback: Callable, module_class: type) -> None:
    run = fit(module_class(), make_callback(), *loaders())
    assert len(run.steps) == 2
    unread = [w for w in run.warnings if UNREAD in w]
    assert len(unread) == 1, run.warnings


@parametrize_callbacks
def test_a_step_that_raises_on_mixed_labels_gets_a_note(make_callback: Callable) -> None:
    with pytest.raises(ValueError, match=r"Expected targets of shape \(8, 10\), but got \(8,\)") as error:
        fit(cls.DenseDiceModule(), make_callback(), *loaders())
    notes = getattr(error.value, "__notes__", [])
    assert any(MIXED_NOTE in note for note in notes), notes


# ------------------------------------------------------------------------------ compile, bf16, resume, DDP


@parametrize_callbacks
@pytest.mark.parametrize(
    "backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)], ids=["aot_eager", "inductor"]
)
def test_network_wrapped_in_torch_compile(make_callback: Callable, backend: str) -> None:
    torch._dynamo.reset()
    module = cls.CompiledModule(backend=backend)
    run = fit(module, make_callback(), *loaders())
    check_losses(run, lambda s: mixed_mean(ce(s), s), plain_ce)
    for step in run.steps:
        torch.testing.assert_close(step.metrics["train_acc"], acc(step.logits, step.target))
    check_validation(module, run, "valid_acc", acc)


@parametrize_callbacks
def test_bf16_mixed_precision_on_cpu(make_callback: Callable) -> None:
    module = cls.TorchmetricsDocsModule()
    run = fit(module, make_callback(), *loaders(), precision="bf16-mixed")
    assert run.steps[0].logits.dtype == torch.bfloat16

    def expected(step: Step) -> Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the loss as the step computed it
            return mixed_mean(ce(step), step)

    check_losses(run, expected, plain_ce)
    for step in run.steps:
        torch.testing.assert_close(step.metrics["train_acc"], acc(step.logits, step.target))
    check_validation(module, run, "valid_acc", acc)


@pytest.mark.parametrize("make_callback", CALLBACKS[2:])
def test_resumed_run_mixes_and_interpolates_as_the_uninterrupted_run(make_callback: Callable, tmp_path: Path) -> None:
    train, _ = loaders(batch_size=4, steps=4)

    def run(ckpt: str | None = None, **kw: Any) -> Run:
        seed_everything(3)
        return fit(
            cls.TorchmetricsDocsModule(), make_callback(), train, None, limit_train_batches=4, ckpt_path=ckpt, **kw
        )

    saver = ModelCheckpoint(dirpath=tmp_path, filename="{step}", every_n_train_steps=2, save_top_k=-1)
    whole = run(extra=(saver,), enable_checkpointing=True)
    rest = run(str(tmp_path / "step=2.ckpt"))
    assert len(whole.steps) == 4 and len(rest.steps) == 2
    for a, b in zip(whole.steps[2:], rest.steps, strict=True):
        # A plain DataLoader restarts its epoch on resume, so the data may differ; the mixing may not.
        assert torch.equal(a.params.lam, b.params.lam) and torch.equal(a.params.partner, b.params.partner)
        torch.testing.assert_close(b.loss, mixed_mean(ce(b), b))


class RankRecorder(cls.TorchmetricsDocsModule):
    """Saves every rank's steps to a file, since a spawned process shares nothing with the test."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.records: list[dict[str, Tensor]] = []

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        mixer = MixCallback.from_trainer(self.trainer)
        assert mixer.last_params is not None and mixer.last_target is not None
        self.records.append(
            {
                "loss": outputs["loss"].detach().clone(),
                "logits": self.seen["logits"],
                "lam": mixer.last_params.lam,
                "partner": mixer.last_params.partner,
                "mixed": mixer.last_params.mixed,
                "target": mixer.last_target.clone(),
                "acc": self.trainer.callback_metrics["train_acc"].clone(),
            }
        )

    def on_train_end(self) -> None:
        torch.save(self.records, Path(self.out) / f"rank{self.global_rank}.pt")


@pytest.mark.slow
@pytest.mark.parametrize("make_callback", CALLBACKS[2:])
def test_two_process_ddp_each_rank_interpolates_its_own_mix(make_callback: Callable, tmp_path: Path) -> None:
    seed_everything(5)
    trainer = Trainer(
        callbacks=[make_callback()],
        max_epochs=1,
        limit_train_batches=2,
        accelerator="cpu",
        strategy="ddp_spawn",
        devices=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(RankRecorder(str(tmp_path)), loaders(steps=4)[0])  # the distributed sampler halves the batches
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for records in ranks:
        assert len(records) == 2
        for r in records:
            params = dataclasses.replace(MixParams.identity(8), lam=r["lam"], partner=r["partner"])
            step = Step(r["loss"], r["logits"], params, r["target"], {})
            assert bool(r["mixed"].all())
            torch.testing.assert_close(r["loss"], mixed_mean(ce(step), step), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(r["acc"], acc(r["logits"], r["target"]))
    assert not torch.equal(ranks[0][0]["lam"], ranks[1][0]["lam"])  # each rank draws its own mix
