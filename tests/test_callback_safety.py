"""What the callback promises about user data and unusual batches, checked through a real ``Trainer``.

The callback never writes into memory that anything but the batch can see: every way a loader can hand over
memory its owner still holds runs for two epochs, and the owner's tensor must come back bit for bit. Fresh
batches (collated, from worker processes, pinned) are still mixed in their own memory: the input reaching
``training_step`` is the very tensor the hook received. Masks, empty batches, dense float targets and frozen
dataclass batches follow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset, default_collate

from conftest import requires_cuda
from lightning_mix import CutMixCallback, MixCallback, MixUpCallback
from lightning_mix.batch import owns_memory
from tiny_trainer import make_trainer

NUM_CLASSES = 3
SHAPE = (2, 8, 8)

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*The number of training batches.*",
    "ignore:.*does not have many workers.*",
    "ignore:.*pin_memory.*",
)


def make_data(n: int = 8) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, *SHAPE, generator=g), torch.arange(n) % NUM_CLASSES


class Model(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.num_classes = NUM_CLASSES
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(torch.Size(SHAPE).numel(), NUM_CLASSES))
        self.seen: list[Tensor] = []
        self.ptrs: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch[0], batch[1]
        self.seen.append(x.detach().clone())
        self.ptrs.append(x.data_ptr())
        return F.cross_entropy(self.net(x.float()), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class Holder:
    """A loader over tensors its owner keeps: ``serve(self)`` returns each step's batch."""

    def __init__(self, serve: Callable[[Holder], list[Any]], device: str = "cpu", steps: int = 2) -> None:
        self.x, self.y = (t.to(device) for t in make_data())
        self.serve, self.steps = serve, steps
        self.cache: list[Any] | None = None

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[Any]]:
        for _ in range(self.steps):
            yield self.serve(self)


def _cached(h: Holder) -> list[Any]:
    if h.cache is None:
        h.cache = [h.x, h.y]
    return h.cache


def _numpy(h: Holder) -> list[Any]:
    if not hasattr(h, "array"):
        h.array = h.x.numpy()
        h.x = torch.from_numpy(h.array)  # the owner's view of its array, compared afterwards
    return [torch.from_numpy(h.array), h.y]


def _file(h: Holder) -> list[Any]:
    return [h.file_tensor, h.y]  # type: ignore[attr-defined]


SERVES: dict[str, Callable[[Holder], list[Any]]] = {
    "whole": lambda h: [h.x, h.y],
    "detach": lambda h: [h.x.detach(), h.y],
    "view": lambda h: [h.x.view(h.x.shape), h.y],
    "reshape": lambda h: [h.x.reshape(-1).view(h.x.shape), h.y],
    "full-slice": lambda h: [h.x[:], h.y],
    "slice": lambda h: [h.x[:4], h.y[:4]],
    "as_strided": lambda h: [h.x.as_strided(h.x.shape, h.x.stride()), h.y],
    "numpy": _numpy,
    "shared-memory": lambda h: [h.x.share_memory_(), h.y],
    "cached-list": _cached,
    "dict": lambda h: {"x": h.x, "y": h.y},
}


class DictModel(Model):
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        if isinstance(batch, dict):
            batch = [batch["x"], batch["y"]]
        elif isinstance(batch, Fields):
            batch = [batch.x, batch.y]
        return super().training_step(batch, batch_idx)


CALLBACKS: dict[str, Callable[[], MixCallback]] = {
    "cutmix": lambda: CutMixCallback(alpha=1.0, seed=0),
    "mixup": lambda: MixUpCallback(alpha=1.0, seed=0),
    "both-elem": lambda: MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", seed=0),
}


def _fit_two_epochs(holder: Holder, callback: MixCallback, **kwargs: Any) -> DictModel:
    model = DictModel()
    make_trainer(callback, max_epochs=2, **kwargs).fit(model, holder)
    return model


@pytest.mark.parametrize("method", list(CALLBACKS))
@pytest.mark.parametrize("serve", list(SERVES))
def test_memory_the_loader_still_holds_is_never_written(serve: str, method: str) -> None:
    holder = Holder(SERVES[serve])
    before_x, before_y = holder.x.clone(), holder.y.clone()
    model = _fit_two_epochs(holder, CALLBACKS[method]())
    assert torch.equal(holder.x, before_x), f"{(holder.x != before_x).float().mean():.0%} of the input changed"
    assert torch.equal(holder.y, before_y)
    if holder.cache is not None:  # the cached container still holds the user's tensors
        assert holder.cache[0] is holder.x and holder.cache[1] is holder.y
    assert len(model.seen) == 4 and not torch.equal(model.seen[0], before_x[: len(model.seen[0])])  # mixed


def test_a_memory_mapped_file_is_never_written(tmp_path: Path) -> None:
    x, _ = make_data()
    path = tmp_path / "x.bin"
    x.numpy().tofile(path)
    holder = Holder(_file)
    holder.file_tensor = torch.from_file(str(path), shared=True, size=x.numel()).view(x.shape)  # type: ignore[attr-defined]
    _fit_two_epochs(holder, CutMixCallback(alpha=1.0, seed=0))
    assert torch.equal(torch.from_numpy(np.fromfile(path, dtype=np.float32)).view(x.shape), x)


def test_the_mixed_batch_is_what_training_step_sees_when_the_input_is_copied() -> None:
    holder = Holder(SERVES["detach"])
    model = _fit_two_epochs(holder, CutMixCallback(alpha=1.0, seed=0))
    assert all(p != holder.x.data_ptr() for p in model.ptrs)  # each step got its own mixed copy


@requires_cuda
@pytest.mark.parametrize("serve", ["whole", "detach", "slice", "cached-list"])
def test_a_dataset_kept_on_the_device_is_never_written(serve: str) -> None:
    holder = Holder(SERVES[serve], device="cuda")
    before = holder.x.clone()
    _fit_two_epochs(holder, CutMixCallback(alpha=1.0, seed=0), accelerator="gpu", devices=1)
    assert torch.equal(holder.x, before)


@requires_cuda
def test_a_pinned_tensor_the_loader_holds_is_never_written() -> None:
    holder = Holder(SERVES["whole"])
    holder.x = holder.x.pin_memory()
    before = holder.x.clone()
    _fit_two_epochs(holder, MixUpCallback(alpha=1.0, seed=0))
    assert torch.equal(holder.x, before)


# ---------------------------------------------------------------------------------- fresh batches stay in place


class Pointer(Callback):
    """Records the data pointer of the input as the mixing callback (next in the list) receives it."""

    def __init__(self) -> None:
        self.ptrs: list[int] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self.ptrs.append(batch[0].data_ptr())


def _loader(**kwargs: Any) -> DataLoader:
    return DataLoader(TensorDataset(*make_data(16)), batch_size=4, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="main-process"),
        pytest.param({"num_workers": 2}, id="workers"),
        pytest.param({"num_workers": 1, "persistent_workers": True}, id="persistent-workers"),
    ],
)
@pytest.mark.parametrize("method", list(CALLBACKS))
def test_fresh_batches_are_mixed_in_their_own_memory(kwargs: dict[str, Any], method: str) -> None:
    pointer, model = Pointer(), Model()
    make_trainer(pointer, CALLBACKS[method](), limit_train_batches=3).fit(model, _loader(**kwargs))
    assert len(model.ptrs) == 3 and model.ptrs == pointer.ptrs


@dataclasses.dataclass
class Fields:
    x: Tensor
    y: Tensor

    def __getitem__(self, i: int) -> Tensor:
        return (self.x, self.y)[i]


def _to_fields(samples: list[Any]) -> Fields:
    return Fields(*default_collate(samples))


def _to_dict(samples: list[Any]) -> dict[str, Tensor]:
    x, y = default_collate(samples)
    return {"x": x, "y": y}


class FieldsPointer(Pointer):
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self.ptrs.append((batch.x if isinstance(batch, Fields) else batch["x"]).data_ptr())


@pytest.mark.parametrize("collate", [_to_fields, _to_dict], ids=["dataclass", "dict"])
def test_fresh_dataclass_and_dict_batches_are_mixed_in_their_own_memory(collate: Callable) -> None:
    pointer, model = FieldsPointer(), DictModel()
    loader = DataLoader(TensorDataset(*make_data(8)), batch_size=4, collate_fn=collate)
    make_trainer(pointer, CutMixCallback(alpha=1.0, seed=0)).fit(model, loader)
    assert len(model.ptrs) == 2 and model.ptrs == pointer.ptrs


@requires_cuda
@pytest.mark.parametrize("kwargs", [{"pin_memory": True}, {"pin_memory": True, "num_workers": 2}])
def test_fresh_pinned_batches_are_mixed_in_their_own_memory(kwargs: dict[str, Any]) -> None:
    for accelerator in ("cpu", "gpu"):
        pointer, model = Pointer(), Model()
        trainer = make_trainer(pointer, CutMixCallback(alpha=1.0, seed=0), accelerator=accelerator, devices=1)
        trainer.fit(model, _loader(**kwargs))
        assert model.ptrs == pointer.ptrs


# ----------------------------------------------------------------------------------------------- owns_memory


def test_owns_memory_counts_the_references_the_caller_accounts_for() -> None:
    x = torch.zeros(4, 3)
    assert owns_memory(x)  # this frame's local only
    box = [x]
    assert not owns_memory(x) and owns_memory(x, references=2)
    del box
    assert owns_memory(x)
    d = x.detach()
    assert not owns_memory(x, references=5) and not owns_memory(d, references=5)  # another tensor, same storage
    del d
    assert owns_memory(x) and owns_memory(torch.zeros(2))


# ------------------------------------------------------------------------------------------- masks and targets


class Before(Callback):
    """Records a clone of the batch's target as the mixing callback (next in the list) receives it."""

    def __init__(self) -> None:
        self.targets: list[Tensor] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self.targets.append(batch[1].clone())


class MaskModel(Model):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Conv2d(SHAPE[0], NUM_CLASSES, 1)
        self.last_targets: list[Tensor] = []
        self.masks: list[Tensor] = []

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        callback = MixCallback.from_trainer(self.trainer)
        assert callback.last_target is not None
        self.last_targets.append(callback.last_target.clone())
        self.masks.append(batch[1].clone())
        return F.cross_entropy(self.net(batch[0]), batch[1])


def _masks(n: int = 8) -> Tensor:
    return torch.arange(n * SHAPE[1] * SHAPE[2]).view(n, *SHAPE[1:]) % NUM_CLASSES


@pytest.mark.parametrize("held", [False, True], ids=["fresh", "held"])
def test_cutmix_pastes_a_mask_into_a_copy_and_last_target_is_the_mask_before_mixing(held: bool) -> None:
    x, _ = make_data()
    mask = _masks()
    before = mask.clone()
    loader: Any = Holder(lambda h: [h.x.clone(), mask]) if held else DataLoader(TensorDataset(x, mask), batch_size=4)
    recorder, model = Before(), MaskModel()
    make_trainer(recorder, CutMixCallback(alpha=1.0, seed=0), max_epochs=2).fit(model, loader)
    assert torch.equal(mask, before)  # the mask the loader holds is unchanged
    assert len(model.last_targets) == 4
    for original, last, mixed in zip(recorder.targets, model.last_targets, model.masks, strict=True):
        assert torch.equal(last, original)  # "the target before mixing"
        assert mixed.dtype == original.dtype
    assert any(not torch.equal(m, o) for m, o in zip(model.masks, recorder.targets, strict=True))  # boxes pasted


# ------------------------------------------------------------------------------------------- empty batches


class Batches:
    """A loader of the given batches (lists), yielded fresh every epoch."""

    def __init__(self, *batches: tuple[Tensor, Tensor]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[Tensor]]:
        for x, y in self.batches:
            yield [x.clone(), y.clone()]


class Recorder(Model):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[Tensor, Tensor]] = []
        self.params: list[Any] = []

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        self.batches.append((batch[0].clone(), batch[1].clone()))
        self.params.append(MixCallback.from_trainer(self.trainer).last_params)
        if batch[0].shape[0] == 0:
            return self.net(batch[0]).sum()  # an empty batch: a zero loss
        return super().training_step(batch, batch_idx)


@pytest.mark.parametrize("method", list(CALLBACKS))
def test_an_empty_batch_passes_through_untouched_and_counts_as_a_step(method: str) -> None:
    x, y = make_data(12)
    b0, b1, b2 = (x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])
    empty = (x[:0], y[:0])
    with_empty, full = Recorder(), Recorder()
    callback = CALLBACKS[method]()
    make_trainer(callback, limit_train_batches=3, log_every_n_steps=1).fit(with_empty, Batches(b0, empty, b2))
    make_trainer(CALLBACKS[method](), limit_train_batches=3).fit(full, Batches(b0, b1, b2))
    x_seen, y_seen = with_empty.batches[1]
    assert x_seen.shape == (0, *SHAPE) and torch.equal(y_seen, y[:0]) and y_seen.dtype == y.dtype  # untouched
    params = with_empty.params[1]
    assert params is not None and params.batch_size == 0
    assert callback.state_dict()["step"] == 3  # the empty batch is a step
    for step in (0, 2):  # the stream of every other step is that of a run without the empty batch
        a, b = with_empty.params[step], full.params[step]
        assert torch.equal(a.lam, b.lam) and torch.equal(a.partner, b.partner) and torch.equal(a.box, b.box)
        torch.testing.assert_close(with_empty.batches[step][0], full.batches[step][0], rtol=0, atol=0)


# ------------------------------------------------------------------------------------------- dense float targets


def _dense_batches(target: Tensor) -> Batches:
    x, _ = make_data(8)
    return Batches((x[:4], target[:4]), (x[4:], target[4:]))


class DenseModel(Model):
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        self.seen.append(batch[1].clone())
        return self.net(batch[0]).sum()


REFUSED = r"Expected `target` to be class targets with values in \[0, 1\].*but got 'values from {}.*targets=\"none\""


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        pytest.param(torch.linspace(0.5, 4.0, 8).view(8, 1), "0.5 to 2'", id="regression-(B,1)"),
        pytest.param(torch.linspace(-2.0, 2.0, 24).view(8, 3), "-2 to -0.08", id="regression-(B,K)"),
        pytest.param(torch.randn(8, NUM_CLASSES, generator=torch.Generator().manual_seed(0)), "-", id="logits"),
    ],
)
def test_dense_float_targets_outside_the_unit_interval_are_refused_on_the_first_batch(
    target: Tensor, shown: str
) -> None:
    callback = MixUpCallback(alpha=1.0, seed=0, targets="soft")
    with pytest.raises(ValueError, match=REFUSED.format(shown)):
        make_trainer(callback).fit(DenseModel(), _dense_batches(target))
    # the input alone can still be mixed, the target interpolated by the user
    model = DenseModel()
    make_trainer(MixUpCallback(alpha=1.0, seed=0, targets="none")).fit(model, _dense_batches(target))
    assert torch.equal(model.seen[0], target[:4])


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(torch.rand(8, NUM_CLASSES).softmax(1), id="probabilities"),
        pytest.param((torch.rand(8, NUM_CLASSES) < 0.5).float(), id="multi-hot"),
        pytest.param(torch.rand(8, 1), id="(B,1)-in-unit-interval"),
    ],
)
def test_dense_float_targets_in_the_unit_interval_are_mixed_linearly(target: Tensor) -> None:
    model = DenseModel()
    callback = MixUpCallback(alpha=1.0, seed=0, targets="soft")
    make_trainer(callback).fit(model, _dense_batches(target))
    params = callback.last_params
    assert params is not None
    lam = params.lam[:, None]
    t = target[4:]
    torch.testing.assert_close(model.seen[1], lam * t + (1 - lam) * t[params.partner])


# ------------------------------------------------------------------------------------------- frozen dataclasses


@dataclasses.dataclass(frozen=True)
class Frozen:
    image: Tensor
    label: Tensor


class FrozenLoader:
    def __len__(self) -> int:
        return 2

    def __iter__(self) -> Iterator[Frozen]:
        x, y = make_data(8)
        yield from (Frozen(x[:4], y[:4]), Frozen(x[4:], y[4:]))


class FrozenModel(Model):
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return super().training_step([batch.image, batch.label], batch_idx)


class FrozenModelOnItsOwnTransfer(FrozenModel):
    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return batch  # already on the CPU: Lightning's own transfer is skipped


def test_a_frozen_dataclass_batch_is_refused_by_lightning_before_the_callback_runs() -> None:
    callback = CutMixCallback(alpha=1.0, seed=0)
    with pytest.raises(ValueError, match=r"A frozen dataclass was passed to `apply_to_collection`"):
        make_trainer(callback).fit(FrozenModel(), FrozenLoader())
    assert callback.last_params is None  # the hook never ran
    # with a `transfer_batch_to_device` of its own, the batch reaches the callback, which says how to fix it
    with pytest.raises(TypeError, match=r"Expected `batch` to be an object whose attributes can be set.*getter"):
        make_trainer(CutMixCallback(alpha=1.0, seed=0)).fit(FrozenModelOnItsOwnTransfer(), FrozenLoader())
