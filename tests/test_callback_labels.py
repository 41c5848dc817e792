"""The callback's target forms: mixed labels by default, tuple batches, token ids, the warning and the note."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from lightning_mix import CutMixCallback, MixCallback, MixedLabels, MixParams, MixUpCallback
from lightning_mix.functional import mix_
from sync_guard import forbid_syncs
from tiny_trainer import make_trainer

NUM_CLASSES = 4
SHAPE = (3, 6, 8)
UNREAD = "no loss read the mixed labels"
NOTE = "the targets of this training step were mixed"

CALLBACKS = [
    pytest.param(lambda **kw: CutMixCallback(alpha=1.0, seed=1, **kw), id="cutmix"),
    pytest.param(lambda **kw: MixUpCallback(alpha=1.0, seed=1, **kw), id="mixup"),
    pytest.param(lambda **kw: MixCallback(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", seed=1, **kw), id="both"),
]


def make_data(
    n: int = 8, seed: int = 0, target: Callable[[torch.Generator, int], Tensor] | None = None
) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *SHAPE, generator=g)
    y = torch.randint(NUM_CLASSES, (n,), generator=g) if target is None else target(g, n)
    return [x, y]


def loader(data: list[Tensor], **kwargs: Any) -> DataLoader:
    return DataLoader(TensorDataset(*data), batch_size=4, **kwargs)


class Module(LightningModule):
    """Cross-entropy on class indices, a torchmetrics accuracy logged in `training_step`, plain validation."""

    def __init__(self, loss: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, out: int = NUM_CLASSES) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(torch.Size(SHAPE).numel(), out))
        self.loss = loss
        self.train_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.seen: list[dict[str, Any]] = []
        self.val_types: list[type] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.float())

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = self.loss(logits, y)
        mixer = MixCallback.from_trainer(self.trainer)
        self.seen.append(
            {"x": x.clone(), "y": y, "logits": logits.detach(), "loss": loss.detach(), "params": mixer.last_params}
        )
        self.seen[-1]["target"] = mixer.last_target
        if y.dtype == torch.long and y.ndim == 1:
            self.train_acc(logits, y)
            self.log("train_acc", self.train_acc, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.val_types.append(type(batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def interpolated(loss: Callable[..., Tensor], logits: Tensor, a: Tensor, b: Tensor, lam: Tensor) -> Tensor:
    la, lb = loss(logits, a, reduction="none"), loss(logits, b, reduction="none")
    w = lam.view(-1, *([1] * (la.ndim - 1)))
    return (w * la + (1 - w) * lb).mean()


@pytest.mark.parametrize("make", CALLBACKS)
def test_by_default_the_loss_gets_the_mix_and_metrics_get_labels(make: Callable) -> None:
    data = make_data()
    module = Module()
    trainer = make_trainer(make(), limit_val_batches=1, num_sanity_val_steps=1)
    trainer.fit(module, loader(data), loader(data))
    assert len(module.seen) == 2
    for i, step in enumerate(module.seen):
        y0, params = data[1][4 * i : 4 * i + 4], step["params"]
        y = step["y"]
        assert isinstance(y, MixedLabels) and y.dtype == torch.long and y.shape == (4,)
        assert torch.equal(y.labels, y0) and torch.equal(step["target"], y0) and type(step["target"]) is Tensor
        assert torch.equal(y.partner_labels, y0[params.partner]) and torch.equal(y.lam, params.lam)
        assert bool(params.mixed.all()) and bool((params.lam < 1).any())
        torch.testing.assert_close(step["x"], mix_(data[0][4 * i : 4 * i + 4].clone(), params))
        expected = interpolated(F.cross_entropy, step["logits"], y0, y0[params.partner], params.lam)
        torch.testing.assert_close(step["loss"], expected)
    last = module.seen[-1]
    accuracy = (last["logits"].argmax(-1) == data[1][4:]).float().mean()
    torch.testing.assert_close(trainer.callback_metrics["train_acc"], accuracy)  # accuracy on the own labels
    assert module.val_types == [Tensor, Tensor]  # sanity check and validation: plain labels


@pytest.mark.parametrize(
    ("target", "loss", "out"),
    [
        pytest.param(lambda g, n: torch.randint(2, (n,), generator=g).float(), "bce-float", 1, id="float-B"),
        pytest.param(lambda g, n: torch.randint(2, (n,), generator=g).bool(), "bce-float", 1, id="bool-B"),
        pytest.param(lambda g, n: torch.randint(2, (n, 1), generator=g).float(), "bce", 1, id="float-B1"),
        pytest.param(lambda g, n: torch.randint(2, (n, NUM_CLASSES), generator=g), "bce-float", 4, id="multi-hot"),
    ],
)
def test_binary_and_multi_hot_labels_are_labels_too(target: Callable, loss: str, out: int) -> None:
    def bce(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        logits = logits.view(-1) if y.ndim == 1 else logits
        return F.binary_cross_entropy_with_logits(logits, y.float(), reduction=reduction)

    data = make_data(target=target)
    module = Module(loss=bce, out=out)
    make_trainer(MixUpCallback(seed=0)).fit(module, loader(data))
    for i, step in enumerate(module.seen):
        y0, params = data[1][4 * i : 4 * i + 4], step["params"]
        assert isinstance(step["y"], MixedLabels) and step["y"].dtype == y0.dtype
        a, b = y0.float(), y0[params.partner].float()
        torch.testing.assert_close(step["loss"], interpolated(bce, step["logits"], a, b, params.lam))


class Segmenter(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Conv2d(SHAPE[0], NUM_CLASSES, 1)
        self.seen: list[dict[str, Any]] = []

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, mask = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, mask, ignore_index=255)
        mixer = MixCallback.from_trainer(self.trainer)
        self.seen.append({"mask": mask, "logits": logits.detach(), "loss": loss.detach(), "params": mixer.last_params})
        self.seen[-1]["target"] = mixer.last_target
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_masks_cutmix_pastes_into_a_copy_and_mixup_mixes_through_the_loss() -> None:
    def masks(g: torch.Generator, n: int) -> Tensor:
        m = torch.randint(NUM_CLASSES, (n, *SHAPE[1:]), generator=g)
        return m.masked_fill(torch.rand(m.shape, generator=g) < 0.2, 255)

    data = make_data(target=masks)
    held = data[1].clone()
    module = Segmenter()
    make_trainer(MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", seed=2)).fit(module, loader(data))
    assert torch.equal(data[1], held)  # the user's masks are untouched
    for i, step in enumerate(module.seen):
        m0, params, mask = held[4 * i : 4 * i + 4], step["params"], step["mask"]
        assert isinstance(mask, MixedLabels) and mask.dtype == torch.long and torch.equal(step["target"], m0)
        cut = params.cutmix & params.mixed
        pasted = mix_(m0.clone(), MixParams(**{**params.__dict__, "has_mixup": False, "mixed": cut}), cut_dims=(-2, -1))
        assert torch.equal(mask.labels, pasted) and torch.equal(mask.partner_labels, m0[params.partner])
        lam = torch.where(cut, 1.0, params.lam)
        assert torch.equal(mask.lam, lam[:, None, None].expand(mask.shape))
        keep_a, keep_b = (pasted != 255).float(), (m0[params.partner] != 255).float()
        w = lam[:, None, None]
        la = F.cross_entropy(step["logits"], pasted, ignore_index=255, reduction="none")
        lb = F.cross_entropy(step["logits"], m0[params.partner], ignore_index=255, reduction="none")
        expected = (w * la + (1 - w) * lb).sum() / (w * keep_a + (1 - w) * keep_b).sum()
        torch.testing.assert_close(step["loss"], expected)
    assert any(bool((s["params"].cutmix & s["params"].mixed).any()) for s in module.seen)
    assert any(bool((~s["params"].cutmix & s["params"].mixed).any()) for s in module.seen)


# -------------------------------------------------------------------------------------------------- tuple batches


class TupleAfterTransfer(Module):
    """Rebuilds the batch as a tuple in `on_after_batch_transfer`, as many public modules do."""

    def __init__(self, copy: bool = True) -> None:
        super().__init__()
        self.copy = copy

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, y = batch
        return (x * 1.0, y + 0) if self.copy else (x, y)


def test_tuple_batches_of_the_steps_own_tensors_are_mixed_in_place() -> None:
    data = make_data()
    module = TupleAfterTransfer()
    make_trainer(MixUpCallback(seed=0)).fit(module, loader(data))
    for i, step in enumerate(module.seen):
        y0, params = data[1][4 * i : 4 * i + 4], step["params"]
        assert isinstance(step["y"], MixedLabels) and torch.equal(step["y"].labels, y0)
        assert type(step["target"]) is Tensor and torch.equal(step["target"], y0)
        torch.testing.assert_close(step["x"], mix_(data[0][4 * i : 4 * i + 4].clone(), params))
        expected = interpolated(F.cross_entropy, step["logits"], y0, y0[params.partner], params.lam)
        torch.testing.assert_close(step["loss"], expected)


def test_tuple_masks_are_pasted_into_the_target_object() -> None:
    class TupleSegmenter(Segmenter):
        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return batch[0] * 1.0, batch[1] + 0

    data = make_data(target=lambda g, n: torch.randint(NUM_CLASSES, (n, *SHAPE[1:]), generator=g))
    module = TupleSegmenter()
    make_trainer(CutMixCallback(seed=0)).fit(module, loader(data))
    for i, step in enumerate(module.seen):
        m0, params = data[1][4 * i : 4 * i + 4], step["params"]
        assert torch.equal(step["target"], m0)
        assert torch.equal(step["mask"].labels, mix_(m0.clone(), params, cut_dims=(-2, -1))) and bool(
            (step["mask"].lam == 1).all()
        )


def test_tuple_batches_that_share_user_memory_are_refused_naming_both_fixes() -> None:
    class Sliced(Module):
        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return batch[0][:, :], batch[1]  # a view: not the step's own memory

    match = r"but got 'a tuple with tensors that share memory.*collate function \(or your `on_after_batch_transfer`"
    with pytest.raises(TypeError, match=match):
        make_trainer(MixUpCallback(seed=0)).fit(Sliced(), loader(make_data()))


def test_tuple_batches_with_untouched_targets_mix_the_input_only() -> None:
    module = TupleAfterTransfer()
    make_trainer(CutMixCallback(seed=0, targets="none")).fit(module, loader(make_data()))
    assert all(type(step["y"]) is Tensor and step["target"] is None for step in module.seen)


# ------------------------------------------------------------------------------------------------ index inputs


class Tokens(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(50, NUM_CLASSES)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0]
        return F.cross_entropy(self.emb(x.reshape(len(x), -1).long()), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_mixup_of_token_ids_is_refused_pointing_to_embeddings(dtype: torch.dtype) -> None:
    data = [torch.randint(50, (8, 7), dtype=dtype), torch.randint(NUM_CLASSES, (8,))]
    match = (
        r"Expected `the input` to be values MixUp can blend, not indices \(int32/int64 inputs of shape \(B, L\) "
        r"are taken as token ids\), but got 'torch.int\d\d of shape \(4, 7\)'\. .*mix the embeddings inside your "
        r"module instead, with `lightning_mix.functional`"
    )
    with pytest.raises(ValueError, match=match):
        make_trainer(MixUpCallback(seed=0)).fit(Tokens(), loader(data))


@pytest.mark.parametrize(
    "x", [torch.randint(50, (8, 7), dtype=torch.int16), torch.randint(50, (8, 1, 7), dtype=torch.uint8)]
)
def test_int16_audio_and_uint8_images_still_mix(x: Tensor) -> None:
    held = x.clone()
    mixer = MixUpCallback(seed=0)
    make_trainer(mixer).fit(Tokens(), loader([x, torch.randint(NUM_CLASSES, (8,))]))
    assert mixer.last_params is not None and bool((mixer.last_params.lam < 1).all())
    assert torch.equal(x, held)


# ------------------------------------------------------------------------------------------- never silent


def test_a_loss_that_never_reads_the_mix_warns_once_naming_causes_and_fixes() -> None:
    def recreated(logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, torch.tensor(y.tolist()))

    with pytest.warns(UserWarning, match=UNREAD) as record:
        make_trainer(CutMixCallback(seed=0), max_epochs=2).fit(Module(loss=recreated), loader(make_data()))
    (message,) = [str(w.message) for w in record if UNREAD in str(w.message)]  # once for four steps
    assert "torch.tensor" in message and "register_loss" in message and 'targets="soft"' in message


def test_no_warning_when_the_loss_reads_the_mix_or_the_step_is_not_mixed() -> None:
    def recreated(logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, torch.tensor(y.tolist()))

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=f".*{UNREAD}.*")
        make_trainer(CutMixCallback(seed=0)).fit(Module(), loader(make_data()))
        make_trainer(CutMixCallback(seed=0, start_epoch=1), max_epochs=1).fit(
            Module(loss=recreated), loader(make_data())
        )
        make_trainer(CutMixCallback(seed=0, targets="soft", num_classes=NUM_CLASSES)).fit(
            Module(loss=recreated), loader(make_data())
        )


@pytest.mark.parametrize("targets", ["labels", "soft"])
def test_an_error_in_a_mixed_training_step_gets_a_note_saying_so(targets: str) -> None:
    def fails(logits: Tensor, y: Tensor) -> Tensor:
        raise RuntimeError("a loss that does not take these targets")

    with pytest.raises(RuntimeError, match="a loss that does not take") as info:
        make_trainer(MixUpCallback(seed=0, targets=targets, num_classes=5)).fit(
            Module(loss=fails, out=5), loader(make_data())
        )
    (note,) = info.value.__notes__
    assert NOTE in note and f'targets="{targets}"'.replace('"', "'") in note
    assert ("MixedLabels" in note and "register_loss" in note) if targets == "labels" else "soft targets" in note


def test_errors_outside_mixed_steps_get_no_note() -> None:
    class Fails(Module):
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as info:
        make_trainer(MixUpCallback(seed=0), limit_val_batches=1).fit(Fails(), loader(make_data()), loader(make_data()))
    assert not getattr(info.value, "__notes__", None)


# ------------------------------------------------------------------------------------- options and num_classes


def test_targets_option_is_checked_and_label_smoothing_reaches_the_loss() -> None:
    with pytest.raises(ValueError, match=r"Expected `targets` to be one of 'labels', 'soft', 'none', but got 'dense'"):
        MixUpCallback(targets="dense")  # type: ignore[arg-type]
    data = make_data()
    module = Module()
    make_trainer(MixUpCallback(seed=0, label_smoothing=0.1)).fit(module, loader(data))
    step = module.seen[0]
    y0, params = data[1][:4], step["params"]
    smoothed = lambda z, t, reduction: F.cross_entropy(z, t, reduction=reduction, label_smoothing=0.1)  # noqa: E731
    assert step["y"].label_smoothing == 0.1
    torch.testing.assert_close(step["loss"], interpolated(smoothed, step["logits"], y0, y0[params.partner], params.lam))


class HFStyle(Module):
    def __init__(self, where: str) -> None:
        super().__init__()
        config = SimpleNamespace(num_labels=NUM_CLASSES)
        if where == "config":
            self.config = config
        elif where == "model.config":
            self.model = SimpleNamespace(config=config)
        elif where == "nested":
            self.save_hyperparameters({"model": {"head": {"num_classes": NUM_CLASSES}}, "lr": 0.1})
        else:
            self.save_hyperparameters({"backbone": SimpleNamespace(num_labels=NUM_CLASSES)})


@pytest.mark.parametrize("where", ["config", "model.config", "nested", "config-object"])
def test_num_classes_for_soft_targets_is_found_in_config_num_labels_and_nested_hparams(where: str) -> None:
    module = HFStyle(where)
    make_trainer(MixUpCallback(seed=0, targets="soft")).fit(module, loader(make_data()))
    assert module.seen[0]["y"].shape == (4, NUM_CLASSES)


def test_ambiguous_nested_num_classes_is_an_error() -> None:
    module = Module()
    module.save_hyperparameters({"a": {"num_classes": 3}, "b": {"num_labels": 5}})
    with pytest.raises(ValueError, match=r"Expected `num_classes` to be unambiguous, but got \{.*a.num_classes': 3"):
        make_trainer(MixUpCallback(seed=0, targets="soft")).fit(module, loader(make_data()))


# ------------------------------------------------------------------------------------------------------ cheap


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_sampling_arguments_changed_between_steps_are_used_and_checked(mode: str) -> None:
    from lightning import Trainer

    mixer = MixCallback(mixup_alpha=1.0, mode=mode, seed=0)
    trainer = Trainer(callbacks=[mixer], logger=False, enable_progress_bar=False, enable_checkpointing=False)
    trainer.training = True
    module = LightningModule()
    x, y = make_data()
    for step in range(2):
        mixer.on_train_batch_start(trainer, module, [x.clone(), y.clone()], step)
    assert mixer.last_params is not None and not mixer.last_params.has_cutmix
    mixer.cutmix_alpha, mixer.switch_prob = 1.0, 1.0  # e.g. a schedule switching to CutMix
    mixer.on_train_batch_start(trainer, module, [x.clone(), y.clone()], 2)
    assert mixer.last_params.has_cutmix and bool(mixer.last_params.cutmix.all())
    mixer.prob = 1.5
    with pytest.raises(ValueError, match=r"Expected `prob` to be a float in \[0, 1\], but got 1.5"):
        mixer.on_train_batch_start(trainer, module, [x.clone(), y.clone()], 3)


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_the_labels_hook_and_the_loss_do_not_sync(mode: str) -> None:
    from lightning import Trainer

    mixer = MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, seed=0)
    trainer = Trainer(callbacks=[mixer], logger=False, enable_progress_bar=False, enable_checkpointing=False)
    trainer.training = True
    module = LightningModule()
    x, y = make_data()
    mixer.on_train_batch_start(trainer, module, [x.clone(), y.clone()], 0)  # the first step checks the input
    for step in range(3):
        batch = [x.clone(), y.clone()]
        with forbid_syncs():
            mixer.on_train_batch_start(trainer, module, batch, step)
            loss = F.cross_entropy(torch.randn(8, NUM_CLASSES), batch[1].view(-1))
            mixer.on_train_batch_end(trainer, module, loss, batch, step)
        assert isinstance(batch[1], MixedLabels) and batch[1].read


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("batch_size", [4, 5])
def test_per_batch_labels_carry_the_host_lambda_and_the_loss_still_equals_the_interpolation(
    mode: str, batch_size: int
) -> None:
    """A per-batch draw hands λ to the loss as a host value (a swap pairing for an even batch only)."""
    from lightning import Trainer

    mixer = MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, seed=3)
    trainer = Trainer(callbacks=[mixer], logger=False, enable_progress_bar=False, enable_checkpointing=False)
    trainer.training = True
    x, y = make_data(n=batch_size)
    y[-1] = 255  # an ignored label: the two sides' masses differ when the batch is odd
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0])
    logits = torch.randn(batch_size, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    for step in range(6):
        batch = [x.clone(), y.clone()]
        mixer.on_train_batch_start(trainer, LightningModule(), batch, step)
        labels, params = batch[1], mixer.last_params
        assert isinstance(labels, MixedLabels)
        draw = params.draw
        assert labels._mix.uniform == (None if mode == "elem" else draw.lam)  # type: ignore[union-attr]
        assert labels._mix.balanced == (batch_size % 2 == 0)
        for reduction in ("mean", "sum"):
            got = F.cross_entropy(logits, labels, weight=weight, ignore_index=255, reduction=reduction)
            a = F.cross_entropy(logits, y, weight=weight, ignore_index=255, reduction="none")
            b = F.cross_entropy(logits, y[params.partner], weight=weight, ignore_index=255, reduction="none")
            lam = params.lam
            total = (lam * a + (1 - lam) * b).sum()
            if reduction == "mean":
                mass = weight[y.clamp(max=3)] * (y != 255)
                total = total / (lam * mass + (1 - lam) * mass[params.partner]).sum()
            torch.testing.assert_close(got, total)


def test_bf16_mixed_training_reads_the_mix_under_autocast() -> None:
    data = make_data()
    module = Module()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=f".*{UNREAD}.*")
        make_trainer(MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, seed=0), precision="bf16-mixed").fit(
            module, loader(data)
        )
    for i, step in enumerate(module.seen):
        y0, params = data[1][4 * i : 4 * i + 4], step["params"]
        assert isinstance(step["y"], MixedLabels) and step["loss"].dtype == torch.float32
        logits = step["logits"].float()  # cross-entropy runs in float32 under autocast
        torch.testing.assert_close(
            step["loss"], interpolated(F.cross_entropy, logits, y0, y0[params.partner], params.lam)
        )
