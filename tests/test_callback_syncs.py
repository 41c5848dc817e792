"""The whole ``on_train_batch_start`` hook, through a real Trainer, reads no tensor data on the host after step 1.

The first step of a fit does documented one-time checks (label range, finite input) that read values; every later
step must not: on an accelerator each read is a host-device sync that stalls the training loop.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from lightning import LightningModule
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lightning_mix import MixCallback
from sync_guard import first_step_of_fit, guard_calls
from test_callback import RecordingLogger
from tiny_trainer import make_trainer

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*`validation_step` but have no `val_dataloader`.*",
    "ignore:.*no loss read the mixed labels.*",  # the model trains on the input alone
)

CLASSES = 3
METHODS: dict[str, dict[str, Any]] = {
    "mixup": {"mixup_alpha": 0.4},
    "cutmix": {"cutmix_alpha": 1.0},
    "minmax": {"cutmix_minmax": (0.2, 0.8)},
    "both": {"mixup_alpha": 1.0, "cutmix_alpha": 1.0},
}


class Pairs(Dataset):
    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i], self.y[i]


class Model(LightningModule):
    """Trains on the mixed input alone, so any target type passes through; counts the steps it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.num_classes = CLASSES
        self.targets: list[Tensor] = []

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        self.targets.append(y)
        return (self.weight * x.float()).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def data(target: str, shape: tuple[int, ...] = (3, 6, 8), n: int = 12) -> Pairs:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, *shape, generator=g)
    if target == "labels":
        y = torch.randint(CLASSES, (n,), generator=g)
    elif target == "mask":
        y = torch.randint(CLASSES, (n, *shape[1:]), generator=g)
        y[:, 0] = 255  # ignored pixels
    else:  # dense rows
        y = torch.rand(n, CLASSES, generator=g).softmax(1)
    return Pairs(x, y)


def fit_guarded(callback: MixCallback, dataset: Dataset, *, shuffle: bool = True, **trainer: Any) -> int:
    """Fit 2 epochs of 3 batches with the hook guarded after the first step; return the number of steps checked."""
    log = guard_calls(callback, "on_train_batch_start", skip=first_step_of_fit)
    loader = DataLoader(dataset, batch_size=4, shuffle=shuffle, generator=torch.Generator().manual_seed(1))
    options: dict[str, Any] = {"max_epochs": 2, "limit_train_batches": 3, "log_every_n_steps": 1}
    options["logger"] = RecordingLogger()  # the hook logs its stats through `pl_module.log`
    make_trainer(callback, **{**options, **trainer}).fit(Model(), loader)
    assert log.skipped == 1 and log.ops  # the guarded steps did run tensor work
    return log.checked


@pytest.mark.parametrize(("pairing", "targets"), [("random", "labels"), ("adjacent", "labels"), ("random", "soft")])
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_the_hook_reads_nothing_on_the_host_after_the_first_step(
    mode: str, method: str, pairing: str, targets: str
) -> None:
    callback = MixCallback(
        mode=mode, pairing=pairing, targets=targets, prob=0.8, label_smoothing=0.1, seed=0, **METHODS[method]
    )
    assert fit_guarded(callback, data("labels")) == 5
    assert callback.last_params is not None and callback.last_params.adjacent == (pairing == "adjacent")


@pytest.mark.parametrize("pairing", ["random", "adjacent"])
@pytest.mark.parametrize("method", ["cutmix", "both"])
@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_masks_are_mixed_without_host_reads(mode: str, method: str, pairing: str) -> None:
    targets = "soft" if pairing == "random" else "labels"  # per-pixel soft targets, or labels that carry the mix
    callback = MixCallback(mode=mode, pairing=pairing, targets=targets, ignore_index=255, seed=0, **METHODS[method])
    assert fit_guarded(callback, data("mask")) == 5


@pytest.mark.parametrize(
    ("kwargs", "target", "shape"),
    [
        pytest.param(
            {"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "mode": "elem", "targets": "soft"}, "dense", (3, 6, 8), id="dense"
        ),
        pytest.param({"cutmix_alpha": 1.0, "mode": "elem", "correct_lam": False}, "labels", (2, 40), id="signal"),
        pytest.param({"cutmix_alpha": 1.0, "cut_dims": (-3, -2, -1)}, "labels", (2, 3, 5, 6), id="video-cuboid"),
        pytest.param({"mixup_alpha": 1.0, "stop_epoch": 1}, "labels", (3, 6, 8), id="schedule-unmixed-steps"),
        pytest.param({"mixup_alpha": 1.0, "targets": "none"}, "labels", (3, 6, 8), id="targets-none"),
        pytest.param({"cutmix_alpha": 1.0, "log_images_every_n_epochs": 0}, "labels", (3, 6, 8), id="no-logger"),
    ],
)
def test_other_configurations_read_nothing_on_the_host(kwargs: dict[str, Any], target: str, shape: tuple) -> None:
    logger = {"logger": False} if "log_images_every_n_epochs" in kwargs else {}
    assert fit_guarded(MixCallback(seed=0, **kwargs), data(target, shape), **logger) == 5


def test_a_view_of_a_dataset_kept_in_memory_is_mixed_without_host_reads() -> None:
    """Batches that share memory with the user's data take the copy path, which must not read values either."""
    dataset = data("labels")

    class Slices:
        def __len__(self) -> int:
            return 3

        def __iter__(self) -> Any:
            for i in range(3):
                yield [dataset.x[4 * i : 4 * i + 4], dataset.y[4 * i : 4 * i + 4]]

    callback = MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", seed=0)
    log = guard_calls(callback, "on_train_batch_start", skip=first_step_of_fit)
    make_trainer(callback, max_epochs=2, limit_train_batches=3).fit(Model(), Slices())
    assert log.checked == 5
