"""Segmentation masks, multi-label targets, video and 1-D signals through the callback with unchanged modules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lightning import Callback, LightningModule
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_mix import MixCallback, SoftTargetBCELoss, SoftTargetLoss
from lightning_mix import functional as LF
from tiny_trainer import make_trainer

IGNORE = 255


class PairDataset(Dataset):
    """(input, target) samples, collated by the default collate into a list batch."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int):
        return self.inputs[i], self.targets[i]


class Recorder(LightningModule):
    """An unchanged module with a user loss; records what `training_step` sees."""

    def __init__(self, net: nn.Module, loss, num_classes: int | None = None) -> None:
        super().__init__()
        self.net, self.loss = net, loss
        self.num_classes = num_classes
        self.seen: list[tuple[torch.Tensor, torch.Tensor, LF.MixParams]] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        callback = MixCallback.from_trainer(self.trainer)
        self.seen.append((x.detach().clone(), y.detach().clone(), callback.last_params))
        return self.loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class Snapshot(Callback):
    """Runs before the mixing callback and keeps copies of the batch as the loader gave it."""

    def __init__(self) -> None:
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((batch[0].clone(), batch[1].clone()))


def _fit(module: LightningModule, callback: MixCallback, dataset: Dataset, batch_size: int = 4) -> Snapshot:
    trainer = make_trainer(snapshot := Snapshot(), callback)
    trainer.fit(module, DataLoader(dataset, batch_size=batch_size, shuffle=True))
    return snapshot


def _segmentation_data(n: int = 8, classes: int = 3, size: tuple[int, int] = (6, 10)) -> PairDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, *size, generator=g)
    masks = torch.randint(classes, (n, *size), generator=g)
    masks[:, 0, :] = IGNORE  # an ignored row in every mask
    return PairDataset(images, masks)


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_cutmix_pastes_the_same_box_into_image_and_integer_mask(mode):
    data = _segmentation_data()
    module = Recorder(nn.Conv2d(3, 3, 1), lambda logits, mask: F.cross_entropy(logits, mask, ignore_index=IGNORE))
    snapshot = _fit(module, MixCallback(targets="soft", cutmix_alpha=1.0, mode=mode, seed=0), data)
    assert len(module.seen) == 2
    for (x0, mask0), (x, mask, params) in zip(snapshot.batches, module.seen, strict=True):
        assert mask.dtype == torch.long
        box = LF.box_mask(params, mask.shape, (-2, -1))
        assert torch.equal(mask, torch.where(box, mask0[params.partner], mask0))  # ignore labels copied as they are
        assert torch.equal(x, torch.where(box.unsqueeze(1), x0[params.partner], x0))  # the same box in the image
        pasted = box.flatten(1).float().mean(1)
        torch.testing.assert_close(pasted[params.mixed], 1 - params.lam[params.mixed])


def test_mixup_on_masks_gives_per_pixel_soft_targets_that_ignore_pixels():
    data = _segmentation_data()
    loss = SoftTargetLoss()
    module = Recorder(nn.Conv2d(3, 3, 1), loss, num_classes=3)
    _fit(
        module,
        MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", seed=1, ignore_index=IGNORE),
        data,
    )
    for _, soft, params in module.seen:
        assert soft.shape == (4, 3, 6, 10)
        assert soft.dtype == torch.float32
        assert bool((soft[:, :, 0, :] == 0).all())  # ignored in both partners: no weight
        mass = soft.sum(1)[:, 1:]
        torch.testing.assert_close(mass, torch.ones_like(mass))
        assert params is not None


def test_mask_mixup_error_refuses_soft_masks():
    data = _segmentation_data()
    module = Recorder(nn.Conv2d(3, 3, 1), SoftTargetLoss(), num_classes=3)
    with pytest.raises(ValueError, match=r'Expected `mask_mixup` to be "soft" when MixUp mixes segmentation masks'):
        _fit(module, MixCallback(targets="soft", mixup_alpha=1.0, mask_mixup="error", seed=0), data)


def test_mask_of_another_size_is_a_clear_error():
    data = PairDataset(torch.rand(8, 3, 6, 10), torch.randint(3, (8, 6, 9)))
    module = Recorder(nn.Conv2d(3, 3, 1), SoftTargetLoss(), num_classes=3)
    with pytest.raises(
        ValueError, match=r"Expected `mask.shape` to be \(B, \*spatial\) matching the input's \(4, 6, 10\)"
    ):
        _fit(module, MixCallback(targets="soft", cutmix_alpha=1.0, seed=0), data)


def test_multi_hot_targets_train_with_the_binary_loss():
    g = torch.Generator().manual_seed(2)
    data = PairDataset(torch.rand(8, 3, 8, 8, generator=g), (torch.rand(8, 5, generator=g) < 0.4).float())
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 5))
    module = Recorder(net, SoftTargetBCELoss())
    _fit(module, MixCallback(targets="soft", mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", seed=0), data)
    for _, target, params in module.seen:
        assert target.shape == (4, 5)
        assert bool(((target >= 0) & (target <= 1)).all())
        assert params.mixed.any()


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize(
    ("shape", "cut_dims"),
    [
        ((3, 4, 8, 10), None),  # video (B, C, T, H, W): a spatial box through every frame
        ((3, 4, 8, 10), (-3, -2, -1)),  # video with a spatio-temporal cuboid
        ((2, 50), None),  # 1-D signal (B, C, L): a segment in time
    ],
)
def test_pasted_fraction_equals_one_minus_lambda_for_every_shape(mode, shape, cut_dims):
    g = torch.Generator().manual_seed(3)
    inputs = torch.arange(1.0, 9.0).view(8, *[1] * len(shape)).expand(8, *shape).contiguous()  # one value a sample
    data = PairDataset(inputs, torch.randint(4, (8,), generator=g))
    module = Recorder(nn.Sequential(nn.Flatten(), nn.Linear(inputs[0].numel(), 4)), F.cross_entropy, num_classes=4)
    snapshot = _fit(module, MixCallback(targets="soft", cutmix_alpha=1.0, mode=mode, seed=4, cut_dims=cut_dims), data)
    dims = cut_dims or LF.default_cut_dims(inputs.ndim)
    for (x0, _), (x, target, params) in zip(snapshot.batches, module.seen, strict=True):
        changed = (x != x0).flatten(1).float().mean(1)  # partners always differ: every pasted value changes
        torch.testing.assert_close(changed, 1 - params.lam)
        box = LF.box_mask(params, x.shape, dims)
        assert torch.equal(x, torch.where(box, x0[params.partner], x0))
        if cut_dims is None and len(shape) == 4:
            assert bool((box == box[:, :, :1]).all())  # the same spatial box in every frame
        torch.testing.assert_close(target.sum(1), torch.ones(x.shape[0]))
        assert bool((target.amax(1) >= 0.5).all())  # two labels at most, the larger weight first
