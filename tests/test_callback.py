import copy
import dataclasses
import functools
import pickle
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning import LightningDataModule, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.tuner import Tuner
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from conftest import requires_cuda
from lightning_mix import CutMixCallback, MixCallback, MixedLabels, MixParams, MixUpCallback
from lightning_mix.functional import mix_, mix_target, mixed_loss, sample_mix_params
from lightning_mix.seeding import step_seed
from tiny_trainer import make_trainer

NUM_CLASSES = 4
SHAPE = (3, 6, 8)  # C, H, W: H != W on purpose

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*resuming from a checkpoint that ended before the epoch ended.*",
    "ignore:.*max_epochs.*was not set.*",
    "ignore:.*The number of training batches.*",
    "ignore:.*`validation_step` but have no `val_dataloader`.*",
    "ignore:.*callbacks used to create the checkpoint need to be provided.*",
    "ignore:.*`dataloader_iter` step flavor.*",
)


def make_data(n: int = 8, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g), torch.randint(NUM_CLASSES, (n,), generator=g)


def list_loader(n: int = 8, batch_size: int = 4, **kwargs: Any) -> DataLoader:
    return DataLoader(TensorDataset(*make_data(n)), batch_size=batch_size, **kwargs)


def first(batch: Any) -> tuple[Tensor, Tensor]:
    return batch[0], batch[1]


class Classifier(LightningModule):
    """A tiny, unchanged classifier: `F.cross_entropy(self(x), y)` whatever `y` is."""

    def __init__(self, unpack: Callable[[Any], tuple[Tensor, Tensor]] = first, num_classes: int | None = NUM_CLASSES):
        super().__init__()
        self.save_hyperparameters(ignore=["unpack"])
        self.unpack = unpack
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(torch.Size(SHAPE).numel(), NUM_CLASSES))
        self.train_seen: list[tuple[Tensor, Tensor, MixParams | None, Tensor | None]] = []
        self.val_seen: list[tuple[Tensor, Tensor]] = []
        self.lr = 0.05
        self.batch_size = 4

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.float())

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = self.unpack(batch)
        mixers = [cb for cb in self.trainer.callbacks if isinstance(cb, MixCallback)]
        params, target = (mixers[0].last_params, mixers[0].last_target) if mixers else (None, None)
        self.train_seen.append((x.detach().clone(), y.clone(), params, target))
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = self.unpack(batch)
        self.val_seen.append((x.clone(), y.clone()))
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def assert_mixed_as_recorded(x0: Tensor, y0: Tensor, x: Tensor, y: Tensor, params: MixParams) -> None:
    """The batch seen by `training_step` is the original batch mixed with the recorded parameters."""
    torch.testing.assert_close(x, mix_(x0.clone(), params), rtol=0, atol=0)
    torch.testing.assert_close(y, mix_target(y0, params, num_classes=NUM_CLASSES), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------- basic behaviour


@pytest.mark.parametrize(
    "callback",
    [
        pytest.param(lambda: CutMixCallback(targets="soft", alpha=1.0, seed=1), id="cutmix"),
        pytest.param(lambda: MixUpCallback(targets="soft", alpha=1.0, seed=1), id="mixup"),
        pytest.param(
            lambda: MixCallback(targets="soft", mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", seed=1), id="both-elem"
        ),
    ],
)
def test_unchanged_classifier_trains_on_mixed_batches_and_validates_on_clean_ones(callback: Callable) -> None:
    cb = callback()
    model = Classifier()
    x_all, y_all = make_data(8)
    val = DataLoader(TensorDataset(x_all, y_all), batch_size=4)
    make_trainer(cb, limit_val_batches=1, num_sanity_val_steps=1).fit(model, list_loader(), val)

    assert len(model.train_seen) == 2
    for i, (x, y, params, target) in enumerate(model.train_seen):
        x0, y0 = x_all[4 * i : 4 * i + 4], y_all[4 * i : 4 * i + 4]
        assert params is not None and bool(params.mixed.all())
        assert torch.equal(target, y0)
        assert y.shape == (4, NUM_CLASSES) and y.dtype == torch.float32
        torch.testing.assert_close(y.sum(1), torch.ones(4))
        assert not torch.equal(x, x0)
        assert_mixed_as_recorded(x0, y0, x, y, params)
    assert len(model.val_seen) == 2  # sanity check + validation: both untouched
    for x, y in model.val_seen:
        assert torch.equal(x, x_all[:4]) and torch.equal(y, y_all[:4])


def test_mixing_reaches_training_step_as_soft_targets_that_cross_entropy_accepts() -> None:
    model = Classifier()
    make_trainer(CutMixCallback(targets="soft", seed=0)).fit(model, list_loader())
    _, y, params, target = model.train_seen[0]
    assert y.ndim == 2  # a silent no-op would leave class indices here
    assert float(F.cross_entropy(torch.zeros(4, NUM_CLASSES), y)) == pytest.approx(float(torch.log(torch.tensor(4.0))))
    assert params is not None and target is not None
    own = y[torch.arange(4), target]
    torch.testing.assert_close(own, torch.where(target == target[params.partner], 1.0, params.lam))
    assert bool(((y > 0).sum(1) <= 2).all())


# --------------------------------------------------------------------------------------------- batch structures


class DictData(Dataset):
    def __init__(self, keys: tuple[str, str] = ("image", "label")) -> None:
        self.x, self.y = make_data(8)
        self.keys = keys

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {self.keys[0]: self.x[i], self.keys[1]: self.y[i], "name": f"sample{i}"}


@dataclass
class Batch:
    input: Tensor
    target: Tensor
    ids: list[int]


class Pair(NamedTuple):
    input: Tensor
    target: Tensor


class Custom:
    """A batch class reached only through methods."""

    def __init__(self, pixels: Tensor, labels: Tensor) -> None:
        self._items = {"pixels": pixels, "labels": labels}

    def read(self, key: str) -> Tensor:
        return self._items[key]

    def write(self, key: str, value: Tensor) -> None:
        self._items[key] = value


def custom_get(batch: Custom, key: Any) -> Tensor:
    return batch.read(key)


def custom_set(batch: Custom, key: Any, value: Tensor) -> None:
    batch.write(key, value)


def tensor_loader(collate: Callable[[list[tuple[Tensor, Tensor]]], Any]) -> DataLoader:
    return DataLoader(TensorDataset(*make_data(8)), batch_size=4, collate_fn=collate)


def stack(samples: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    xs, ys = zip(*samples, strict=True)
    return torch.stack(xs), torch.stack(ys)


@pytest.mark.parametrize(
    ("loader", "unpack", "kwargs"),
    [
        pytest.param(lambda: list_loader(), first, {}, id="list"),
        pytest.param(
            lambda: DataLoader(DictData(), batch_size=4), lambda b: (b["image"], b["label"]), {}, id="dict-auto"
        ),
        pytest.param(
            lambda: DataLoader(DictData(("img", "gt")), batch_size=4),
            lambda b: (b["img"], b["gt"]),
            {"input_key": "img", "target_key": "gt"},
            id="dict-keys",
        ),
        pytest.param(
            lambda: tensor_loader(lambda s: Batch(*stack(s), ids=list(range(len(s))))),
            lambda b: (b.input, b.target),
            {},
            id="dataclass",
        ),
        pytest.param(
            lambda: tensor_loader(lambda s: Custom(*stack(s))),
            lambda b: (b.read("pixels"), b.read("labels")),
            {"getter": custom_get, "setter": custom_set, "input_key": "pixels", "target_key": "labels"},
            id="getter-setter",
        ),
        pytest.param(
            lambda: tensor_loader(lambda s: [stack(s)[1], stack(s)[0]]),
            lambda b: (b[1], b[0]),
            {"input_key": 1, "target_key": 0},
            id="list-positions",
        ),
    ],
)
def test_batch_structures_are_edited_in_place(loader: Callable, unpack: Callable, kwargs: dict[str, Any]) -> None:
    model = Classifier(unpack)
    make_trainer(MixUpCallback(targets="soft", seed=0, **kwargs)).fit(model, loader())
    x_all, y_all = make_data(8)
    for i, (x, y, params, _) in enumerate(model.train_seen):
        assert params is not None
        assert_mixed_as_recorded(x_all[4 * i : 4 * i + 4], y_all[4 * i : 4 * i + 4], x, y, params)


@pytest.mark.parametrize(
    ("collate", "kwargs", "error", "match"),
    [
        pytest.param(
            stack,
            {},
            TypeError,
            r"Expected `batch` to be a mutable container .*, or a tuple of tensors that belong to the step, but got "
            r"'a tuple with targets=\"soft\", which replaces the target by a new tensor'\. Lightning .* collate "
            r"function \(or your `on_after_batch_transfer`",
        ),
        pytest.param(lambda s: Pair(*stack(s)), {}, TypeError, r"but got 'a Pair with targets=\"soft\".*Lightning"),
        pytest.param(lambda s: stack(s)[0], {}, TypeError, r"mutable container .* but got 'Tensor'"),
        pytest.param(lambda s: list(stack(s)), {"input_key": 2}, ValueError, r"`input_key` to be a position in a list"),
        pytest.param(
            lambda s: dict(zip("ab", stack(s), strict=True)), {}, ValueError, r"none of the names.*keys \['a'"
        ),
        pytest.param(lambda s: [stack(s)[0], "labels"], {}, TypeError, r"`batch item 1` to be a torch.Tensor"),
    ],
)
def test_batches_that_cannot_be_edited_fail_on_the_first_step(
    collate: Callable, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make_trainer(MixUpCallback(targets="soft", **kwargs)).fit(Classifier(), tensor_loader(collate))


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_odd_last_batch_and_batch_size_one(mode: str) -> None:
    model = Classifier()
    cb = MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, seed=0)
    make_trainer(cb, limit_train_batches=None, max_epochs=1).fit(model, list_loader(n=9, batch_size=4))
    assert [len(x) for x, *_ in model.train_seen] == [4, 4, 1]
    x_all, y_all = make_data(9)
    x, y, params, _ = model.train_seen[-1]
    assert params is not None and not bool(params.mixed.any())
    assert torch.equal(x, x_all[8:]) and torch.equal(y, F.one_hot(y_all[8:], NUM_CLASSES).float())
    x, y, params, _ = model.train_seen[0]
    assert params is not None and bool(params.mixed.all())  # prob=1: every sample of a batch of 4 mixed


# ------------------------------------------------------------------------------------------- never modify data


class SlicingLoader:
    """A dataset kept in memory and sliced per batch: every input is a view of the dataset's memory."""

    def __init__(self, x: Any, y: Tensor, wrap: Callable[[Any], Tensor], batch_size: int = 4) -> None:
        self.x, self.y, self.wrap, self.batch_size = x, y, wrap, batch_size

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __iter__(self) -> Iterator[list[Tensor]]:
        for i in range(len(self)):
            s = slice(i * self.batch_size, (i + 1) * self.batch_size)
            yield [self.wrap(self.x[s]), self.y[s]]


@pytest.mark.parametrize(
    ("make", "wrap"),
    [
        pytest.param(lambda x: x, lambda v: v, id="float32"),
        pytest.param(lambda x: (x * 255).to(torch.uint8), lambda v: v, id="uint8"),
        pytest.param(lambda x: x.to(torch.bfloat16), lambda v: v, id="bfloat16"),
        pytest.param(lambda x: x.numpy(), torch.from_numpy, id="numpy"),
    ],
)
def test_a_batch_that_views_the_dataset_leaves_the_dataset_bit_identical(make: Callable, wrap: Callable) -> None:
    x, y = make_data(8)
    data = make(x)
    before = copy.deepcopy(data)
    model = Classifier()
    cb = MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", seed=0)
    make_trainer(cb).fit(model, SlicingLoader(data, y, wrap))
    assert bool((data == before).all())
    seen, *_ = model.train_seen[1]
    assert not torch.equal(seen, wrap(before[4:]))  # the copy was mixed and reached training_step


# ----------------------------------------------------------------------------------------- targets and classes


class NoClasses(Classifier):
    def __init__(self) -> None:
        super().__init__(num_classes=None)


class ClassesDataModule(LightningDataModule):
    num_classes = NUM_CLASSES

    def train_dataloader(self) -> DataLoader:
        return list_loader()


def test_num_classes_is_found_on_the_module_its_hparams_or_the_datamodule() -> None:
    model = Classifier()  # hparams.num_classes
    make_trainer(MixUpCallback(targets="soft", seed=0)).fit(model, list_loader())
    assert model.train_seen[0][1].shape == (4, NUM_CLASSES)

    attribute = NoClasses()
    attribute.num_classes = np.int64(NUM_CLASSES)  # e.g. len(np.unique(labels))
    make_trainer(MixUpCallback(targets="soft", seed=0)).fit(attribute, list_loader())
    assert attribute.train_seen[0][1].shape == (4, NUM_CLASSES)

    from_datamodule = NoClasses()
    make_trainer(MixUpCallback(targets="soft", seed=0)).fit(from_datamodule, datamodule=ClassesDataModule())
    assert from_datamodule.train_seen[0][1].shape == (4, NUM_CLASSES)


def test_missing_or_wrong_num_classes_fail_with_where_to_set_it() -> None:
    with pytest.raises(
        ValueError, match=r"Expected `num_classes` to be known for class-index targets.*LightningDataModule"
    ):
        make_trainer(MixUpCallback(targets="soft")).fit(NoClasses(), list_loader())
    model = NoClasses()
    model.num_classes = 0
    with pytest.raises(ValueError, match=r"Expected `pl_module.num_classes` to be an int >= 1, but got 0"):
        make_trainer(MixUpCallback(targets="soft")).fit(model, list_loader())
    with pytest.raises(TypeError, match=r"Expected `pl_module.hparams.num_classes` to be an int, but got 4.0"):
        make_trainer(MixUpCallback(targets="soft")).fit(Classifier(num_classes=4.0), list_loader())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected `target` to be class indices in \[0, 3\)"):
        make_trainer(MixUpCallback(targets="soft", num_classes=3)).fit(Classifier(), list_loader())


@pytest.mark.parametrize("callback", [CutMixCallback, MixUpCallback])
def test_non_finite_inputs_fail_on_the_first_mixed_batch_instead_of_turning_into_nan(callback: Callable) -> None:
    x, y = make_data()
    x[1, 0, 1, 2] = -float("inf")  # e.g. the log of a silent frame; a blend makes NaN of it and of its partner
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    with pytest.raises(ValueError, match=r"Expected `input values` to be finite.*'1 non-finite of 576'.*nan_to_num"):
        make_trainer(callback(seed=0), limit_train_batches=2).fit(Classifier(), loader)
    x[1, 0, 1, 2] = 0.0
    make_trainer(callback(seed=0)).fit(Classifier(), DataLoader(TensorDataset(x, y), batch_size=4))


def one_hot_batches(samples: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
    x, y = stack(samples)
    return [x, F.one_hot(y, NUM_CLASSES).float()]


def test_dense_targets_are_mixed_without_num_classes() -> None:
    model = NoClasses()
    make_trainer(CutMixCallback(targets="soft", seed=0)).fit(model, tensor_loader(one_hot_batches))
    x_all, y_all = make_data(8)
    x, y, params, target = model.train_seen[0]
    assert params is not None and target is not None and target.shape == (4, NUM_CLASSES)
    assert_mixed_as_recorded(x_all[:4], y_all[:4], x, y, params)
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be 0 for dense targets"):
        make_trainer(CutMixCallback(targets="soft", label_smoothing=0.1)).fit(
            NoClasses(), tensor_loader(one_hot_batches)
        )


def test_label_smoothing_is_folded_into_the_targets() -> None:
    model = Classifier()
    make_trainer(MixUpCallback(targets="soft", label_smoothing=0.2, prob=0.0)).fit(model, list_loader())
    _, y, _, target = model.train_seen[0]
    assert target is not None
    expected = F.one_hot(target, NUM_CLASSES).float() * 0.8 + 0.2 / NUM_CLASSES
    torch.testing.assert_close(y, expected)


def test_mixup_of_feature_vectors() -> None:
    class Features(Classifier):
        def forward(self, x: Tensor) -> Tensor:
            return self.net(x.view(len(x), *SHAPE))

    x, y = make_data(8)
    model = Features()
    loader = DataLoader(TensorDataset(x.flatten(1), y), batch_size=4)
    make_trainer(MixUpCallback(targets="soft", seed=0)).fit(model, loader)
    seen, _, params, _ = model.train_seen[0]
    assert params is not None
    lam = params.lam[:, None]
    torch.testing.assert_close(seen, lam * x[:4].flatten(1) + (1 - lam) * x[:4].flatten(1)[params.partner])


# --------------------------------------------------------------------------------- loss interpolation recipe


class InterpolatedLoss(Classifier):
    """The recipe for losses that take no soft targets: the callback leaves `y`, the module mixes the losses."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        p = MixCallback.from_trainer(self.trainer).last_params
        assert p is not None
        logits = self(x)
        loss = mixed_loss(functools.partial(F.cross_entropy, reduction="none"), logits, y, y[p.partner], p.lam)
        soft = F.cross_entropy(logits, mix_target(y, p, num_classes=NUM_CLASSES))
        self.train_seen.append((x.clone(), y.clone(), p, torch.stack((loss, soft)).detach()))
        return loss


def test_loss_interpolation_recipe_with_untouched_targets() -> None:
    model = InterpolatedLoss()
    make_trainer(MixUpCallback(targets="none", seed=0)).fit(model, list_loader())
    x_all, y_all = make_data(8)
    for i, (x, y, params, losses) in enumerate(model.train_seen):
        assert params is not None and losses is not None
        assert torch.equal(y, y_all[4 * i : 4 * i + 4])  # targets untouched
        torch.testing.assert_close(x, mix_(x_all[4 * i : 4 * i + 4].clone(), params))
        torch.testing.assert_close(losses[0], losses[1])  # cross-entropy is linear in the target
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be 0 with targets=\"none\", but got 0.1\.$"):
        MixUpCallback(targets="none", label_smoothing=0.1)


def test_mix_targets_is_a_deprecated_alias_of_targets_none() -> None:
    with pytest.warns(
        DeprecationWarning, match=r"`mix_targets` is deprecated: `mix_targets=False` is `targets=\"none\"`"
    ):
        assert MixUpCallback(mix_targets=False).targets == "none"
    with pytest.warns(DeprecationWarning, match="`mix_targets` is deprecated"):
        assert MixUpCallback(mix_targets=True, targets="soft").targets == "soft"
    with (
        pytest.warns(DeprecationWarning, match="`mix_targets` is deprecated"),
        pytest.raises(
            ValueError, match=r"Expected `mix_targets` to be consistent with targets=\"soft\", but got False\."
        ),
    ):
        MixUpCallback(mix_targets=False, targets="soft")
    with (
        pytest.warns(DeprecationWarning, match="`mix_targets` is deprecated"),
        pytest.raises(
            ValueError, match=r"Expected `mix_targets` to be consistent with targets=\"none\", but got True\."
        ),
    ):
        MixUpCallback(mix_targets=True, targets="none")
    assert not MixUpCallback(targets="none").mix_targets and MixUpCallback().mix_targets


def test_from_trainer_needs_exactly_one_callback() -> None:
    with pytest.raises(
        RuntimeError, match=r"Expected `the number of MixCallbacks in trainer.callbacks` to be 1, but got 0\. Add"
    ):
        MixCallback.from_trainer(make_trainer())
    with pytest.raises(RuntimeError, match=r"to be 1, but got 2\. Pick"):
        MixCallback.from_trainer(
            make_trainer(CutMixCallback(targets="soft"), MixUpCallback(targets="soft", start_epoch=3))
        )
    assert isinstance(
        CutMixCallback.from_trainer(make_trainer(CutMixCallback(targets="soft"), MixUpCallback(targets="soft"))),
        CutMixCallback,
    )


# ------------------------------------------------------------------------------------------------ pairing


def shuffled_loader(n: int = 9, batch_size: int = 3, seed: int = 5, shuffle: bool = True) -> DataLoader:
    """A loader whose order is fixed by its own generator, so a test can rebuild the batches it gave."""
    return list_loader(n, batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("pairing", "shuffle", "adjacent"),
    [
        pytest.param("auto", True, True, id="auto-shuffled"),
        pytest.param("auto", False, False, id="auto-sequential"),
        pytest.param("random", True, False, id="random-shuffled"),
        pytest.param("adjacent", False, True, id="adjacent-sequential"),
    ],
)
def test_pairing_auto_is_adjacent_exactly_when_the_loader_shuffles(pairing: str, shuffle: bool, adjacent: bool) -> None:
    model = Classifier()
    cb = MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", pairing=pairing, seed=0)
    make_trainer(cb).fit(model, shuffled_loader(shuffle=shuffle))
    assert cb.pairing == pairing
    assert cb.last_params is not None and cb.last_params.adjacent is adjacent
    batches = list(shuffled_loader(shuffle=shuffle))  # the same order as the training run's
    assert len(model.train_seen) == 2
    for (x0, y0), (x, y, params, target) in zip(batches, model.train_seen, strict=False):
        assert params is not None and params.adjacent is adjacent and torch.equal(target, y0)
        if adjacent:
            assert params.partner.tolist() == [1, 0, 1]  # an odd batch: the last sample takes the one before
        # the batch is the loader's batch mixed with those partners, as the general path mixes them
        general = dataclasses.replace(params, adjacent=False)
        assert torch.equal(x, mix_(x0.clone(), general))
        assert_mixed_as_recorded(x0, y0, x, y, params)


class FlipData(LightningDataModule):
    """A loader reloaded every epoch that shuffles in the first epoch only."""

    def train_dataloader(self) -> DataLoader:
        return list_loader(8, 4, shuffle=self.trainer.current_epoch == 0)


def test_auto_pairing_is_decided_again_at_every_epoch_start() -> None:
    model = Classifier()
    cb = MixCallback(targets="soft", cutmix_alpha=1.0, seed=0)
    assert cb.pairing == "auto"  # the default
    make_trainer(cb, max_epochs=2, reload_dataloaders_every_n_epochs=1).fit(model, datamodule=FlipData())
    assert [p is not None and p.adjacent for _, _, p, _ in model.train_seen] == [True, True, False, False]


def test_auto_pairing_is_resolved_when_resuming_mid_epoch(tmp_path: Any) -> None:
    cb = MixCallback(targets="soft", cutmix_alpha=1.0, seed=0)
    checkpoints = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=2, save_top_k=-1)
    trainer = make_trainer(cb, checkpoints, limit_train_batches=3, enable_checkpointing=True)
    trainer.fit(Classifier(), shuffled_loader(n=12))
    assert cb.last_params is not None and cb.last_params.adjacent

    resumed, model = MixCallback(targets="soft", cutmix_alpha=1.0, seed=0), Classifier()
    trainer = make_trainer(resumed, limit_train_batches=3)
    trainer.fit(model, shuffled_loader(n=12), ckpt_path=tmp_path / "epoch=0-step=2.ckpt")
    assert len(model.train_seen) == 1  # the third batch of the epoch, after the mid-epoch checkpoint
    assert resumed.last_params is not None and resumed.last_params.adjacent


# ------------------------------------------------------------------------------- seeding, resume, checkpoints


class SameBatches(Dataset):
    """Every batch of 4 holds the same samples, so a restarted loader feeds the same data as a continued one."""

    def __init__(self, batches: int) -> None:
        self.x, self.y = make_data(4)
        self.batches = batches

    def __len__(self) -> int:
        return 4 * self.batches

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i % 4], self.y[i % 4]


def run(*callbacks: Any, **kwargs: Any) -> list[tuple[Tensor, Tensor]]:
    model = Classifier()
    ckpt_path = kwargs.pop("ckpt_path", None)
    trainer = make_trainer(*callbacks, **kwargs)
    trainer.fit(model, DataLoader(SameBatches(3), batch_size=4), ckpt_path=ckpt_path)
    return [(x, y) for x, y, *_ in model.train_seen]


def assert_same_stream(a: list[tuple[Tensor, Tensor]], b: list[tuple[Tensor, Tensor]]) -> None:
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_runs_are_reproducible_from_the_global_seed_or_the_seed_argument() -> None:
    def both() -> MixCallback:
        return MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem")

    seed_everything(3)
    reused = both()
    first_run = run(reused, limit_train_batches=3)
    seed_everything(3)
    assert_same_stream(first_run, run(both(), limit_train_batches=3))
    seed_everything(3)
    assert_same_stream(first_run, run(reused, limit_train_batches=3))  # a new fit starts the stream afresh
    seed_everything(4)
    other = run(both(), limit_train_batches=3)
    assert not torch.equal(first_run[0][0], other[0][0])
    assert not torch.equal(first_run[0][0], first_run[1][0])  # every step draws anew
    seed_everything(5)
    with_seed = run(CutMixCallback(targets="soft", seed=11), limit_train_batches=3)
    seed_everything(6)
    assert_same_stream(with_seed, run(CutMixCallback(targets="soft", seed=11), limit_train_batches=3))


@pytest.mark.parametrize("mode", ["batch", "elem"])  # host draws (batch) and device draws (elem)
def test_resume_from_a_mid_epoch_checkpoint_mixes_as_the_uninterrupted_run(tmp_path: Any, mode: str) -> None:
    def both() -> MixCallback:
        prob = 0.7 if mode == "elem" else 0.9  # seed 7 leaves most batches unmixed at 0.7
        return MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, prob=prob)  # type: ignore[arg-type]

    seed_everything(7)
    cb = both()
    checkpoints = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=2, save_top_k=-1)
    full = run(cb, checkpoints, max_epochs=2, limit_train_batches=3, enable_checkpointing=True)  # 6 steps
    path = tmp_path / "epoch=0-step=2.ckpt"  # written after 2 of the 3 batches of epoch 0
    state = torch.load(path, weights_only=True)["callbacks"][cb.state_key]
    assert state == {"seed": 7, "step": 2, "enabled": True}

    seed_everything(1234)  # a different global seed: the checkpointed one is used
    resumed = run(both(), max_epochs=2, limit_train_batches=3, ckpt_path=path)
    assert_same_stream(full[2:], resumed)
    assert len({tuple(x.flatten().tolist()) for x, _ in full}) > 2  # the steps mixed differently


def test_batch_mode_draws_on_the_host_and_the_stream_is_a_function_of_seed_rank_and_step() -> None:
    cb = MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, seed=5)
    x = torch.rand(6, 3, 8, 8)
    params = [cb._sample(x, (8, 8), 5, rank, step) for rank, step in [(0, 3), (0, 3), (1, 3), (0, 4)]]
    assert all(p.draw is not None and p.shared for p in params)
    assert params[0].draw == params[1].draw
    assert params[0].draw != params[2].draw and params[0].draw != params[3].draw
    rng = random.Random(step_seed(5, 0, 3))
    again = sample_mix_params(6, (8, 8), mixup_alpha=1.0, cutmix_alpha=1.0, pairing="random", generator=rng)
    assert again.draw == params[0].draw


def test_state_dict_round_trip_and_pickling() -> None:
    cb = MixUpCallback(targets="soft", seed=0)
    assert cb.state_dict() == {"seed": None, "step": 0, "enabled": True}
    model = Classifier()
    make_trainer(cb).fit(model, list_loader())
    assert cb.state_dict() == {"seed": 0, "step": 2, "enabled": True}
    clone = pickle.loads(pickle.dumps(cb))
    assert clone.state_dict() == cb.state_dict() and clone.last_params is None
    fresh = MixUpCallback(targets="soft")
    fresh.load_state_dict(copy.deepcopy(cb).state_dict())
    assert fresh.state_dict() == cb.state_dict()
    assert MixUpCallback(targets="soft").state_key != MixUpCallback(targets="soft", stop_epoch=5).state_key


# -------------------------------------------------------------------------------------- schedule and enabled


def mixed_per_step(model: Classifier) -> list[bool]:
    return [bool(p.mixed.any()) for _, _, p, _ in model.train_seen if p is not None]


@pytest.mark.parametrize("stop_epoch", [3, -1])
def test_epoch_schedule_mixes_only_in_start_stop_and_keeps_the_target_format(stop_epoch: int) -> None:
    model = Classifier()
    cb = MixUpCallback(targets="soft", start_epoch=1, stop_epoch=stop_epoch, label_smoothing=0.1, seed=0)
    make_trainer(cb, max_epochs=4, limit_train_batches=1).fit(model, list_loader())
    assert mixed_per_step(model) == [False, True, True, False]
    x_all, y_all = make_data(8)
    x, y, _, _ = model.train_seen[0]
    assert torch.equal(x, x_all[:4])
    torch.testing.assert_close(y, F.one_hot(y_all[:4], NUM_CLASSES) * 0.9 + 0.1 / NUM_CLASSES)


class DisablesAfterFirstEpoch(Classifier):
    def on_train_epoch_end(self) -> None:
        MixCallback.from_trainer(self.trainer).enabled = False


def test_enabled_can_be_switched_off_at_runtime_and_is_checkpointed() -> None:
    model = DisablesAfterFirstEpoch()
    cb = CutMixCallback(targets="soft", seed=0)
    make_trainer(cb, max_epochs=2, limit_train_batches=1).fit(model, list_loader())
    assert mixed_per_step(model) == [True, False]
    assert cb.state_dict()["enabled"] is False


class PausesAfterFirstStep(Classifier):
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        MixCallback.from_trainer(self.trainer).enabled = False


def test_a_paused_callback_stays_paused_after_resume(tmp_path: Any) -> None:
    cb, model = CutMixCallback(seed=0), PausesAfterFirstStep()
    checkpoints = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=2, save_top_k=-1)
    make_trainer(cb, checkpoints, max_epochs=2, limit_train_batches=2, enable_checkpointing=True).fit(
        model, list_loader()
    )
    assert mixed_per_step(model) == [True, False, False, False]
    path = tmp_path / "epoch=0-step=2.ckpt"
    assert torch.load(path, weights_only=True)["callbacks"][cb.state_key]["enabled"] is False

    resumed, model = CutMixCallback(seed=0), Classifier()
    assert resumed.enabled  # the default, which the checkpoint overrides
    make_trainer(resumed, max_epochs=2, limit_train_batches=2).fit(model, list_loader(), ckpt_path=path)
    assert not resumed.enabled and mixed_per_step(model) == [False, False]
    x_all, _ = make_data(8)
    assert torch.equal(model.train_seen[0][0], x_all[:4]) and torch.equal(model.train_seen[1][0], x_all[4:])


def test_negative_stop_epoch_needs_max_epochs_and_an_empty_window_warns() -> None:
    with pytest.raises(RuntimeError, match=r"Expected `Trainer\(max_epochs=...\)` to be set when `stop_epoch` < 0"):
        make_trainer(MixUpCallback(targets="soft", stop_epoch=-1), max_epochs=-1, max_steps=2).fit(
            Classifier(), list_loader()
        )
    with pytest.warns(UserWarning, match=r"MixUpCallback will not mix: its epochs \[0, 0\) are empty"):
        make_trainer(MixUpCallback(targets="soft", stop_epoch=-1)).fit(Classifier(), list_loader())


# ------------------------------------------------------------------------------- trainer features and tuners


def test_bf16_mixed_precision() -> None:
    model = Classifier()
    make_trainer(MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, seed=0), precision="bf16-mixed").fit(
        model, list_loader()
    )
    x_all, y_all = make_data(8)
    for i, (x, y, params, _) in enumerate(model.train_seen):
        assert params is not None and x.dtype == torch.float32 and y.dtype == torch.float32
        assert_mixed_as_recorded(x_all[4 * i : 4 * i + 4], y_all[4 * i : 4 * i + 4], x, y, params)


def test_bf16_inputs_are_mixed_in_their_dtype_with_float32_targets() -> None:
    x, y = make_data(8)
    model = Classifier()
    make_trainer(MixUpCallback(targets="soft", seed=0)).fit(
        model, DataLoader(TensorDataset(x.bfloat16(), y), batch_size=4)
    )
    seen, soft, params, _ = model.train_seen[0]
    assert params is not None and seen.dtype == torch.bfloat16 and soft.dtype == torch.float32
    assert torch.equal(seen, mix_(x[:4].bfloat16(), params))


def test_gradient_accumulation_mixes_every_micro_batch() -> None:
    model, cb = Classifier(), MixUpCallback(targets="soft", seed=0)
    trainer = make_trainer(cb, accumulate_grad_batches=2, limit_train_batches=4)
    trainer.fit(model, list_loader(n=16))
    assert trainer.global_step == 2 and cb.state_dict()["step"] == 4
    lams = [p.lam for _, _, p, _ in model.train_seen if p is not None]
    assert len(lams) == 4 and len({float(lam[0]) for lam in lams}) == 4


def test_fast_dev_run() -> None:
    model = Classifier()
    x_all, y_all = make_data(8)
    val = DataLoader(TensorDataset(x_all, y_all), batch_size=4)
    make_trainer(CutMixCallback(targets="soft", seed=0), fast_dev_run=True).fit(model, list_loader(), val)
    assert len(model.train_seen) == 1 and model.train_seen[0][1].ndim == 2
    assert len(model.val_seen) == 1 and torch.equal(model.val_seen[0][1], y_all[:4])


class Tunable(Classifier):
    def train_dataloader(self) -> DataLoader:
        return list_loader(n=32, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return list_loader(n=8, batch_size=self.batch_size)


@pytest.mark.filterwarnings("ignore:.*(lr|learning rate|Skipping).*")
def test_tuners_neither_crash_nor_advance_the_stream() -> None:
    reference = Tunable()
    make_trainer(MixUpCallback(targets="soft", seed=0), limit_val_batches=0).fit(reference)

    model, cb = Tunable(), MixUpCallback(targets="soft", seed=0)
    trainer = make_trainer(cb, limit_train_batches=8, limit_val_batches=1, max_epochs=2)
    tuner = Tuner(trainer)
    tuner.lr_find(model, min_lr=1e-3, max_lr=1e-1, num_training=8, early_stop_threshold=None)
    tuner.scale_batch_size(model, mode="power", steps_per_trial=1, max_trials=2, init_val=4)
    # Lightning runs both searches with `trainer.callbacks` swapped for its own, so they see clean batches
    assert len(model.train_seen) > 3 and all(p is None and y.ndim == 1 for _, y, p, _ in model.train_seen)
    assert cb.state_dict() == {"seed": None, "step": 0, "enabled": True}

    model.train_seen.clear()
    model.batch_size = 4
    make_trainer(cb, limit_val_batches=0).fit(model)
    assert_same_stream([s[:2] for s in reference.train_seen], [s[:2] for s in model.train_seen])


class IterStep(Classifier):
    def training_step(self, dataloader_iter: Iterator[Any]) -> Tensor:  # type: ignore[override]
        x, y = next(dataloader_iter)[0]
        return F.cross_entropy(self(x), y)


def test_dataloader_iter_steps_are_refused() -> None:
    with pytest.raises(RuntimeError, match=r"Expected `training_step` to be a method that receives the batch"):
        make_trainer(MixUpCallback(targets="soft")).fit(IterStep(), list_loader())


# -------------------------------------------------------------------------------------------- logging


class RecordingLogger(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[int | None, dict[str, float]]] = []
        self.images: list[tuple[str, Tensor, int]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    @property
    def experiment(self) -> "RecordingLogger":
        return self

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append((step, dict(metrics)))

    def add_image(self, tag: str, image: Tensor, global_step: int) -> None:
        self.images.append((tag, image, global_step))


def test_stats_are_logged_per_step_and_per_epoch() -> None:
    logger, model = RecordingLogger(), Classifier()
    cb = MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", prob=0.5, seed=0)
    make_trainer(cb, logger=logger, log_every_n_steps=1, limit_train_batches=3).fit(model, list_loader(n=12))
    steps = [m for _, m in logger.metrics if "mix/lam_step" in m]
    assert len(steps) == 3
    for metrics, (_, _, p, _) in zip(steps, model.train_seen, strict=True):
        assert p is not None
        assert metrics["mix/lam_step"] == pytest.approx(float(p.lam.mean()))
        assert metrics["mix/cutmix_fraction_step"] == pytest.approx(float((p.mixed & p.cutmix).float().mean()))
        assert metrics["mix/mixup_fraction_step"] == pytest.approx(float((p.mixed & ~p.cutmix).float().mean()))
    epoch = next(m for _, m in logger.metrics if "mix/lam_epoch" in m)
    lams = torch.cat([p.lam for _, _, p, _ in model.train_seen if p is not None])
    assert epoch["mix/lam_epoch"] == pytest.approx(float(lams.mean()))


def test_image_grids_every_n_epochs() -> None:
    logger = RecordingLogger()
    cb = CutMixCallback(targets="soft", seed=0, log_images_every_n_epochs=2)
    make_trainer(cb, logger=logger, max_epochs=3, limit_train_batches=2).fit(Classifier(), list_loader())
    assert [(tag, step) for tag, _, step in logger.images] == [("mix/images", 0), ("mix/images", 4)]
    image = logger.images[0][1]
    assert image.shape == (3, 2 * (SHAPE[1] + 2) + 2, 2 * (SHAPE[2] + 2) + 2)
    assert float(image.min()) >= 0 and float(image.max()) <= 1


def test_image_grids_reach_tensorboard(tmp_path: Any) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="", version="")
    cb = CutMixCallback(targets="soft", seed=0, log_images_every_n_epochs=1)
    make_trainer(cb, logger=logger, log_every_n_steps=1).fit(Classifier(), list_loader())
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    assert "mix/images" in events.Tags()["images"]
    assert "mix/lam_step" in events.Tags()["scalars"]


class Signals(Classifier):
    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(len(x), -1))


def test_one_dimensional_signals_are_cut_along_time_and_warn_about_images() -> None:
    x, y = make_data(8)
    signals = x.reshape(8, SHAPE[0], -1)
    model, logger = Signals(), RecordingLogger()
    cb = CutMixCallback(targets="soft", seed=0, log_images_every_n_epochs=1)
    with pytest.warns(UserWarning, match=r"logs no images of an input of shape \(4, 3, 48\)"):
        make_trainer(cb, logger=logger).fit(model, DataLoader(TensorDataset(signals, y), batch_size=4))
    seen, soft, params, _ = model.train_seen[0]
    assert params is not None and params.box.shape == (4, 1, 2) and not logger.images
    assert_mixed_as_recorded(signals[:4], y[:4], seen, soft, params)


# ------------------------------------------------------------------------------------------- host syncs


class CudaSyncChecked(MixCallback):
    """Turns CUDA's sync debug mode to errors around the hook on every step but the first of a fit."""

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        first = trainer.global_step == 0 and trainer.current_epoch == 0 and batch_idx == 0
        torch.cuda.set_sync_debug_mode(0 if first else "error")
        try:
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        finally:
            torch.cuda.set_sync_debug_mode(0)


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("targets", ["soft", "labels"])
def test_on_cuda_the_generator_lives_on_the_device_and_the_hook_never_syncs(targets: str) -> None:
    cb = CudaSyncChecked(
        mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", label_smoothing=0.1, stop_epoch=1, seed=0, targets=targets
    )
    model = Classifier()
    trainer = make_trainer(
        cb, accelerator="gpu", devices=1, logger=RecordingLogger(), max_epochs=2, limit_train_batches=3
    )
    trainer.fit(model, list_loader(n=12))
    assert cb._generator is not None and cb._generator.device.type == "cuda"
    x, y, params, _ = model.train_seen[1]
    assert params is not None and params.lam.is_cuda and x.is_cuda and y.is_cuda
    x_all, y_all = make_data(12)
    if targets == "soft":
        assert_mixed_as_recorded(x_all[4:8].cuda(), y_all[4:8].cuda(), x, y, params)
    else:
        assert isinstance(y, MixedLabels) and y.lam.is_cuda and y.partner_labels.is_cuda
        assert torch.equal(y.labels, y_all[4:8].cuda()) and torch.equal(y.partner_labels, y.labels[params.partner])


# ----------------------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, r"Expected `mixup_alpha or cutmix_alpha` to be > 0, but got \(0.0, 0.0\)\. Enable one"),
        ({"mixup_alpha": -1.0}, ValueError, r"Expected `mixup_alpha` to be a finite float >= 0"),
        ({"cutmix_alpha": "1"}, TypeError, r"Expected `cutmix_alpha` to be a real number"),
        ({"mixup_alpha": 1.0, "prob": 1.5}, ValueError, r"Expected `prob` to be a float in \[0, 1\]"),
        ({"mixup_alpha": 1.0, "switch_prob": -0.1}, ValueError, r"Expected `switch_prob` to be a float in \[0, 1\]"),
        ({"mixup_alpha": 1.0, "mode": "pair"}, ValueError, r"Expected `mode` to be one of 'batch', 'elem'"),
        ({"mixup_alpha": 1.0, "correct_lam": 1}, TypeError, r"Expected `correct_lam` to be a bool, but got 1"),
        ({"cutmix_minmax": (0.5, 0.2)}, ValueError, r"Expected `cutmix_minmax` to be a pair \(lo, hi\)"),
        ({"mixup_alpha": 1.0, "label_smoothing": 2}, ValueError, r"Expected `label_smoothing` to be a float in"),
        ({"mixup_alpha": 1.0, "num_classes": 0}, ValueError, r"Expected `num_classes` to be an int >= 1, but got 0"),
        ({"mixup_alpha": 1.0, "num_classes": 2.0}, TypeError, r"Expected `num_classes` to be an int or None"),
        ({"mixup_alpha": 1.0, "input_key": 1.5}, TypeError, r"Expected `input_key` to be None, an int position or"),
        ({"mixup_alpha": 1.0, "target_key": True}, TypeError, r"Expected `target_key` to be None, an int position"),
        ({"mixup_alpha": 1.0, "getter": custom_get}, TypeError, r"Expected `getter and setter` to be both given"),
        ({"mixup_alpha": 1.0, "getter": 1, "setter": 2}, TypeError, r"Expected `getter` to be a callable"),
        ({"mixup_alpha": 1.0, "cut_dims": (-1, 2)}, ValueError, r"Expected `cut_dims` to be distinct negative dims"),
        ({"mixup_alpha": 1.0, "cut_dims": -1}, TypeError, r"Expected `cut_dims` to be None or a sequence"),
        ({"mixup_alpha": 1.0, "start_epoch": -1}, ValueError, r"Expected `start_epoch` to be an int >= 0"),
        ({"mixup_alpha": 1.0, "start_epoch": 2, "stop_epoch": 2}, ValueError, r"`stop_epoch` to be None, > start"),
        ({"mixup_alpha": 1.0, "stop_epoch": 1.0}, TypeError, r"Expected `stop_epoch` to be an int or None"),
        ({"mixup_alpha": 1.0, "seed": "0"}, TypeError, r"Expected `seed` to be an int or None"),
        ({"mixup_alpha": 1.0, "log_stats": None}, TypeError, r"Expected `log_stats` to be a bool"),
        ({"mixup_alpha": 1.0, "log_images_every_n_epochs": -1}, ValueError, r"`log_images_every_n_epochs` to be an"),
        ({"mixup_alpha": 1.0, "mix_targets": "no"}, TypeError, r"Expected `mix_targets` to be a bool"),
        (
            {"mixup_alpha": 1.0, "pairing": "pairs"},
            ValueError,
            r"^Expected `pairing` to be one of 'auto', 'random', 'adjacent', but got 'pairs'\.$",
        ),
        (
            {"mixup_alpha": 1.0, "pairing": None},
            ValueError,
            r"^Expected `pairing` to be one of 'auto', 'random', 'adjacent', but got None\.$",
        ),
    ],
)
def test_arguments_are_checked_at_construction(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        MixCallback(targets="soft", **kwargs)


def test_presets() -> None:
    assert (CutMixCallback(targets="soft").cutmix_alpha, CutMixCallback(targets="soft").mixup_alpha) == (1.0, 0.0)
    assert (
        CutMixCallback(targets="soft", pairing="adjacent").pairing,
        MixUpCallback(targets="soft", pairing="random").pairing,
    ) == (
        "adjacent",
        "random",
    )
    assert (MixUpCallback(0.4, targets="soft").mixup_alpha, MixUpCallback(targets="soft").has_cutmix) == (0.4, False)
    assert CutMixCallback(targets="soft", alpha=0.0, cutmix_minmax=(0.2, 0.8)).has_cutmix
    with pytest.raises(TypeError, match=r"`the arguments of CutMixCallback` to be free of mixup_alpha.*MixCallback"):
        CutMixCallback(targets="soft", mixup_alpha=1.0)
    with pytest.raises(TypeError, match=r"`the arguments of MixUpCallback` to be free of .*cutmix_minmax"):
        MixUpCallback(targets="soft", cutmix_minmax=(0.2, 0.8))
    with pytest.raises(ValueError, match=r"Expected `alpha` to be a float > 0, but got 0"):
        MixUpCallback(targets="soft", alpha=0)
    with pytest.raises(ValueError, match=r"Expected `alpha` to be a float > 0, but got 0.0"):
        CutMixCallback(targets="soft", alpha=0.0)
    with pytest.raises(ValueError, match=r"Expected `alpha` to be a finite float >= 0"):
        CutMixCallback(targets="soft", alpha=-1.0)
