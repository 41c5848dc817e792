"""MixedAccuracy and mixed_accuracy: hand-computed credit, parity with MulticlassAccuracy, properties, label
smoothing, dense prediction, a real Trainer run, and every error message."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from lightning_mix import MixedAccuracy, SoftTargetLoss
from lightning_mix import functional as LF
from sync_guard import forbid_syncs
from tiny_trainer import make_trainer

acc = LF.mixed_accuracy


def _close(a, b):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=torch.float32), rtol=1e-6, atol=1e-6)


# --- hand-computed values -------------------------------------------------------------------------------------


def test_hand_computed_credit():
    preds = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]])
    target = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.6, 0.4], [0.2, 0.0, 0.8], [0.5, 0.0, 0.5]])
    # top-1 classes 0, 2, 1, 0 (first among ties): credits 0.7, 0.4, 0.0, 0.5
    _close(acc(preds, target), (0.7 + 0.4 + 0.0 + 0.5) / 4)
    # top-2 classes {0, 1}, {2, 1}, {1, 2}, {0, 1}: credits 1.0, 1.0, 0.8, 0.5
    _close(acc(preds, target, top_k=2), (1.0 + 1.0 + 0.8 + 0.5) / 4)
    # argmax of the targets 0, 1, 2, 0 (first among ties): hits 1, 0, 0, 1
    _close(acc(preds, target, mode="argmax"), 0.5)
    _close(acc(preds, target, mode="argmax", top_k=2), 1.0)
    _close(acc(preds, target, top_k=3), 1.0)


def test_lambda_weighted_two_label_accuracy():
    g = torch.Generator().manual_seed(0)
    y, preds = torch.randint(4, (64,), generator=g), torch.randn(64, 4, generator=g)
    params = LF.sample_mix_params(64, (), mixup_alpha=0.4, mode="elem", generator=g)
    y_b, pred = y[params.partner], preds.argmax(1)
    expected = params.lam * (pred == y) + (1 - params.lam) * (pred == y_b)
    _close(acc(preds, LF.mix_target(y, params, num_classes=4)), expected.mean())


def test_unnormalised_rows_and_bool_targets():
    preds = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    _close(acc(preds, torch.tensor([[0.0, 2.0, 2.0], [0.0, 0.0, 3.0]])), 0.25)
    _close(acc(preds, torch.tensor([[False, True, False], [False, False, True]])), 0.5)


@pytest.mark.parametrize("label_smoothing", [0.1, 0.5, 0.9])
def test_label_smoothing_is_undone(label_smoothing):
    g = torch.Generator().manual_seed(1)
    y, preds = torch.randint(5, (32,), generator=g), torch.randn(32, 5, generator=g)
    params = LF.sample_mix_params(32, (), mixup_alpha=1.0, mode="elem", generator=g)
    clean = LF.mix_target(y, params, num_classes=5)
    smoothed = LF.mix_target(y, params, num_classes=5, label_smoothing=label_smoothing)
    for mode in ("credit", "argmax"):
        expected = acc(preds, clean, mode=mode)
        _close(acc(preds, smoothed, mode=mode, label_smoothing=label_smoothing), expected)
    # without undoing, a perfect prediction of a smoothed hard target earns only 1 − ε + ε/C
    one_hot = LF.one_hot(y, 5, label_smoothing=label_smoothing)
    _close(acc(one_hot, one_hot), 1 - label_smoothing + label_smoothing / 5)
    _close(acc(one_hot, one_hot, label_smoothing=label_smoothing), 1.0)
    # class indices are never smoothed, so the argument leaves them alone
    _close(acc(preds, y, label_smoothing=label_smoothing), acc(preds, y))


def test_dense_prediction_with_ignored_positions():
    preds = torch.zeros(2, 3, 2, 2)
    preds[:, 1] = 1.0  # class 1 everywhere
    target = torch.zeros(2, 3, 2, 2)
    target[0, 1] = 1.0  # sample 0: all four pixels class 1
    target[1, 0, 0, 0] = target[1, 1, 0, 0] = 0.5  # sample 1: one half-and-half pixel, three ignored pixels
    _close(acc(preds, target), (4 * 1.0 + 0.5) / 5)
    index = torch.tensor([[[1, 1], [1, 1]], [[0, -1], [-1, -1]]])
    _close(acc(preds, index, ignore_index=-1), 0.8)
    _close(acc(preds, index.clamp_min(0)), 4 / 8)


def test_nothing_counted_gives_zero():
    _close(acc(torch.randn(2, 3), torch.zeros(2, 3)), 0.0)
    _close(acc(torch.randn(2, 3), torch.full((2,), 7), ignore_index=7), 0.0)
    metric = MixedAccuracy()
    metric.update(torch.randn(2, 3, 4), torch.zeros(2, 3, 4))
    _close(metric.compute(), 0.0)


# --- parity with torchmetrics --------------------------------------------------------------------------------


@pytest.mark.parametrize("top_k", [1, 2, 4])
@pytest.mark.parametrize("shape", [(50, 6), (8, 6, 3, 5)])
@pytest.mark.parametrize("ignore_index", [None, 2])
def test_class_indices_match_multiclass_accuracy(top_k, shape, ignore_index):
    g = torch.Generator().manual_seed(top_k)
    kwargs = {"top_k": top_k, "ignore_index": ignore_index}
    reference = MulticlassAccuracy(num_classes=6, average="micro", **kwargs)
    metrics = [MixedAccuracy(num_classes=6, **kwargs), MixedAccuracy(mode="argmax", **kwargs)]
    for _ in range(3):
        preds = torch.randn(shape, generator=g)
        target = torch.randint(6, (shape[0], *shape[2:]), generator=g)
        expected = MulticlassAccuracy(num_classes=6, average="micro", **kwargs)(preds, target)
        _close(acc(preds, target, **kwargs), expected)
        _close(acc(preds.softmax(1), target, mode="argmax", **kwargs), expected)
        reference.update(preds, target)
        for metric in metrics:
            metric.update(preds, target)
    for metric in metrics:
        _close(metric.compute(), reference.compute())


# --- properties ----------------------------------------------------------------------------------------------


@st.composite
def batches(draw):
    batch, classes = draw(st.integers(1, 8)), draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    preds = torch.randn(batch, classes, generator=g)
    sharpness = draw(st.sampled_from([0.3, 3.0, 30.0]))  # from flat to nearly one-hot rows
    target = torch.softmax(torch.randn(batch, classes, generator=g) * sharpness, dim=1)
    target = torch.where(torch.rand(batch, 1, generator=g) < 0.2, torch.zeros_like(target), target)
    return preds, target, draw(st.integers(1, classes))


@given(batches(), st.sampled_from(["credit", "argmax"]))
def test_property_credit_in_unit_interval(data, mode):
    preds, target, top_k = data
    per_sample = torch.stack(
        [acc(p[None], t[None], top_k=top_k, mode=mode) for p, t in zip(preds, target, strict=True)]
    )
    assert torch.all((per_sample >= 0) & (per_sample <= 1))
    value = acc(preds, target, top_k=top_k, mode=mode)
    assert 0.0 <= value.item() <= 1.0
    assert value.dtype == torch.float32


@given(batches(), st.sampled_from(["credit", "argmax"]))
def test_property_one_hot_targets_give_plain_accuracy(data, mode):
    preds, target, top_k = data
    classes = preds.shape[1]
    labels = target.argmax(1)
    one_hot = torch.nn.functional.one_hot(labels, classes).float()
    in_top_k = (preds.topk(top_k, 1).indices == labels[:, None]).any(1).float().mean()
    _close(acc(preds, one_hot, top_k=top_k, mode=mode), in_top_k)
    _close(acc(preds, labels, top_k=top_k, mode=mode), in_top_k)


@given(batches())
def test_property_logits_and_probabilities_agree(data):
    preds, target, top_k = data
    _close(acc(preds.softmax(1), target, top_k=top_k), acc(preds, target, top_k=top_k))
    low = preds.to(torch.bfloat16)
    _close(acc(low, target, top_k=top_k), acc(low.float(), target, top_k=top_k))


# --- the metric class -------------------------------------------------------------------------------------------


def test_metric_states_flags_and_reset():
    metric = MixedAccuracy(num_classes=3, top_k=2)
    assert not MixedAccuracy.is_differentiable
    assert MixedAccuracy.higher_is_better
    assert not MixedAccuracy.full_state_update
    metric.update(torch.tensor([[0.2, 0.5, 0.3]]), torch.tensor([[0.6, 0.0, 0.4]]))
    assert metric.correct.dtype == torch.float32
    assert metric.total.dtype == torch.int64
    _close(metric.compute(), 0.4)
    metric.reset()
    assert metric.total.item() == 0
    assert metric.correct.item() == 0.0


def test_metric_update_does_not_sync_without_validation():
    preds, target = torch.randn(4, 5, 3), torch.softmax(torch.randn(4, 5, 3), 1)
    metric = MixedAccuracy(validate_args=False, label_smoothing=0.1)
    index_metric = MixedAccuracy(validate_args=False, top_k=2, ignore_index=0)
    with forbid_syncs():
        metric.update(preds, target)
        metric.update(preds, target.argmax(1))
        index_metric.update(preds, target.argmax(1))
        acc(preds, target, mode="argmax", validate_args=False)


class _TinyClassifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 3)
        self.criterion = SoftTargetLoss()
        self.train_acc = MixedAccuracy(num_classes=3)
        self.val_acc = MixedAccuracy(num_classes=3)
        self.seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"train": [], "val": []}

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.layer(x)
        self.train_acc(logits, y)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        self.seen["train"].append((logits.detach(), y))
        return self.criterion(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.layer(x)
        self.val_acc(logits, y)
        self.log("val_acc", self.val_acc)
        self.seen["val"].append((logits, y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def test_logged_from_a_lightning_module_over_an_epoch():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=g), torch.randint(3, (16,), generator=g)
    params = LF.sample_mix_params(16, (), mixup_alpha=1.0, mode="elem", generator=g)
    train = DataLoader(TensorDataset(x, LF.mix_target(y, params, num_classes=3)), batch_size=5)
    val = DataLoader(TensorDataset(x, y), batch_size=6)
    model = _TinyClassifier()
    trainer = make_trainer(limit_val_batches=2)
    trainer.fit(model, train, val)
    for stage in ("train", "val"):
        assert len(model.seen[stage]) == 2
        preds, target = (torch.cat(parts) for parts in zip(*model.seen[stage], strict=True))
        _close(trainer.callback_metrics[f"{stage}_acc"], acc(preds, target))
    preds, target = (torch.cat(parts) for parts in zip(*model.seen["val"], strict=True))
    _close(trainer.callback_metrics["val_acc"], MulticlassAccuracy(3, average="micro")(preds, target))


# --- errors ---------------------------------------------------------------------------------------------------


def test_argument_errors():
    with pytest.raises(ValueError, match=r"Expected `top_k` to be an int >= 1, but got 0\."):
        MixedAccuracy(top_k=0)
    with pytest.raises(ValueError, match=r"Expected `mode` to be one of 'credit', 'argmax', but got 'soft'\."):
        MixedAccuracy(mode="soft")
    with pytest.raises(TypeError, match=r"Expected `num_classes` to be None or an int, but got 3.0\."):
        MixedAccuracy(num_classes=3.0)
    with pytest.raises(ValueError, match=r"Expected `num_classes` to be None or an int >= 1, but got 0\."):
        MixedAccuracy(num_classes=0)
    with pytest.raises(ValueError, match=r"Expected `top_k` to be at most num_classes \(3\), but got 5\."):
        MixedAccuracy(num_classes=3, top_k=5)
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be a float in \[0, 1\), but got 1.0\."):
        MixedAccuracy(label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be a float in \[0, 1\], but got -0.5\."):
        acc(torch.randn(2, 3), torch.tensor([0, 1]), label_smoothing=-0.5)
    with pytest.raises(TypeError, match=r"Expected `ignore_index` to be None or an int, but got '-1'\."):
        MixedAccuracy(ignore_index="-1")


def test_tensor_errors():
    preds = torch.randn(4, 3)
    metric = MixedAccuracy(num_classes=3)
    with pytest.raises(TypeError, match=r"Expected `preds` to be a floating tensor .*, but got torch.int64\. Pass"):
        metric.update(torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(TypeError, match=r"Expected `target` to be a torch.Tensor, but got 'list'\."):
        metric.update(preds, [0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"Expected `preds` to be a tensor of shape \(B, C, \*d\), but got \(3,\)\."):
        metric.update(preds[0], torch.tensor(1))
    with pytest.raises(ValueError, match=r"Expected `preds.shape\[1\]` to be num_classes \(3\), but got 4\."):
        metric.update(torch.randn(4, 4), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"Expected `top_k` to be at most the number of classes \(3\), but got 4\."):
        acc(preds, torch.tensor([0, 1, 2, 0]), top_k=4)
    with pytest.raises(ValueError, match=r"Expected `target` to be dense targets of the preds' shape \(4, 3\), but"):
        metric.update(preds, torch.rand(4, 4))
    with pytest.raises(ValueError, match=r"Expected `target` to be class indices of shape \(4,\) or dense targets"):
        metric.update(preds, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match=r"but got \(4, 3\)\. Cast one-hot integer targets to float\."):
        metric.update(preds, torch.eye(3, dtype=torch.long)[[0, 1, 2, 0]])
    with pytest.raises(
        ValueError, match=r"Expected `target` to be class indices in \[0, 3\), but got 'values such as \[3, -1\]'"
    ):
        metric.update(preds, torch.tensor([0, 3, -1, 0]))
    with pytest.raises(
        ValueError, match=r"Expected `target` to be finite and non-negative, but got 'negative or non-finite"
    ):
        metric.update(preds, torch.tensor([[1.0, -0.5, 0.5]]).expand(4, 3))
    with pytest.raises(ValueError, match=r"finite and non-negative"):
        acc(preds, torch.tensor([[1.0, float("nan"), 0.5]]).expand(4, 3))
    # the value checks can be turned off, the ignore_index is exempt from the range check
    acc(preds, torch.tensor([0, 3, -1, 0]), validate_args=False)
    acc(preds, torch.tensor([0, 2, -1, 0]), ignore_index=-1)
