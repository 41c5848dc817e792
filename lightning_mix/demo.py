"""Ready-made data and model to try the callbacks on: offline handwritten digits and a small CNN.

:class:`DigitsDataModule` serves scikit-learn's 8×8 handwritten digits (1,797 images shipped with
scikit-learn, so nothing is downloaded), optionally upscaled and with noisy training labels.
:class:`CIFAR10DataModule` serves CIFAR-10 from files you already have. :class:`SmallCNN` is an ordinary
LightningModule that knows nothing about mixing: its loss is ``F.cross_entropy``, which accepts the soft
targets the callbacks put in the batch. They are the defaults of the ``lightning-mix`` command and the models
of ``examples/demo.py``.

scikit-learn and torchvision are optional (``pip install "lightning-mix[examples]"``) and imported only when
the data are loaded.

Example:
    >>> data = DigitsDataModule(image_size=8, batch_size=4)
    >>> data.setup("fit")
    >>> x, y = next(iter(data.train_dataloader()))
    >>> x.shape, y.shape, data.num_classes
    (torch.Size([4, 1, 8, 8]), torch.Size([4]), 10)
    >>> SmallCNN(num_classes=10)(x).shape
    torch.Size([4, 10])
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError
from typing_extensions import override

from lightning_mix.functional._checks import check_int, check_probability, expected
from lightning_mix.labels import MixedLabels

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

__all__ = [
    "BatchSnapshot",
    "CIFAR10DataModule",
    "DigitsDataModule",
    "SmallCNN",
    "add_label_noise",
    "occlude",
    "plot_batch",
]

_EXTRA = 'Install the example dependencies: pip install "lightning-mix[examples]".'


def _require(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise ImportError(f"{module.split('.')[0]} is needed for this dataset. {_EXTRA}") from error


def _check_fraction(name: str, value: float) -> float:
    value = check_probability(name, value)
    if value >= 1:
        raise ValueError(expected(name, "in [0, 1)", value))
    return value


def add_label_noise(labels: Tensor, noise: float, num_classes: int, *, generator: torch.Generator) -> Tensor:
    """Replace a fraction of the labels by a different class drawn uniformly (symmetric label noise).

    Each label is corrupted independently with probability ``noise``; a corrupted label is never its own
    class, so about ``noise`` of the labels end up wrong.

    Args:
        labels: ``(N,)`` class indices.
        noise: probability of corrupting each label, in [0, 1].
        num_classes: number of classes, at least 2.
        generator: source of randomness.

    Returns:
        A new ``(N,)`` tensor of labels.

    Raises:
        ValueError: if ``noise`` is outside [0, 1] or ``num_classes`` < 2.

    Example:
        >>> labels = torch.zeros(10_000, dtype=torch.long)
        >>> noisy = add_label_noise(labels, 0.2, 10, generator=torch.Generator().manual_seed(0))
        >>> round((noisy != labels).float().mean().item(), 2)
        0.2
    """
    noise = check_probability("noise", noise)
    check_int("num_classes", num_classes, 2)
    flip = torch.rand(labels.shape, generator=generator) < noise
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return torch.where(flip, (labels + shift) % num_classes, labels)


def occlude(images: Tensor, size: int, *, generator: torch.Generator, value: float = 0.0) -> Tensor:
    """A copy of the images with a ``size``×``size`` square set to ``value`` at a random position in each.

    The occlusion test of the CutMix paper: a model that learned from parts of objects should still recognise
    them with a part hidden. The square lies wholly inside the image, its top-left corner uniform over the
    valid positions, drawn on the CPU from ``generator``, so the same generator state gives the same squares
    whatever the device. The images are not modified.

    Args:
        images: ``(B, C, H, W)`` images.
        size: side of the square, at most ``min(H, W)``.
        generator: source of the positions (a CPU generator).
        value: what the square is filled with; 0 is the training mean of standardised inputs.

    Returns:
        A new ``(B, C, H, W)`` tensor.

    Raises:
        ValueError: if ``images`` is not 4-D or ``size`` is out of range.

    Example:
        >>> images = torch.ones(3, 1, 8, 8)
        >>> hidden = occlude(images, 3, generator=torch.Generator().manual_seed(0))
        >>> (hidden == 0).sum(dim=(1, 2, 3)).tolist(), bool((images == 1).all())
        ([9, 9, 9], True)
    """
    if images.ndim != 4:
        raise ValueError(expected("images", "a (B, C, H, W) tensor", tuple(images.shape)))
    height, width = images.shape[-2:]
    check_int("size", size, 1)
    if size > min(height, width):
        raise ValueError(expected("size", f"at most the image side ({min(height, width)})", size))
    count = images.shape[0]
    top = torch.randint(height - size + 1, (count, 1), generator=generator).to(images.device)
    left = torch.randint(width - size + 1, (count, 1), generator=generator).to(images.device)
    rows = torch.arange(height, device=images.device)
    cols = torch.arange(width, device=images.device)
    in_rows = (rows >= top) & (rows < top + size)  # (B, H)
    in_cols = (cols >= left) & (cols < left + size)  # (B, W)
    square = in_rows[:, None, :, None] & in_cols[:, None, None, :]
    return images.masked_fill(square, value)


class _SplitDataModule(LightningDataModule):
    """Training, validation and test loaders over the datasets ``setup`` builds."""

    def __init__(self, batch_size: int, num_workers: int) -> None:
        super().__init__()
        check_int("batch_size", batch_size, 1)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.train_set: Dataset[Any] | None = None
        self.val_set: Dataset[Any] | None = None
        self.test_set: Dataset[Any] | None = None

    @override
    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training batches; the last one may be smaller."""
        return self._loader(self.train_set, shuffle=True)

    @override
    def val_dataloader(self) -> DataLoader[Any]:
        """Validation batches."""
        return self._loader(self.val_set)

    @override
    def test_dataloader(self) -> DataLoader[Any]:
        """Test batches."""
        return self._loader(self.test_set)

    def _loader(self, dataset: Dataset[Any] | None, shuffle: bool = False) -> DataLoader[Any]:
        if dataset is None:
            raise RuntimeError(expected("setup()", "called before asking for a loader", None))
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )


class DigitsDataModule(_SplitDataModule):
    """scikit-learn's 8×8 handwritten digits as a datamodule: 10 classes, one channel, nothing to download.

    The 1,797 images are split at random (``seed``) into test, validation and training sets, scaled to [0, 1],
    standardised with the training set's mean and standard deviation, and resized to ``image_size`` pixels
    (bilinear) so CutMix boxes are not limited to a few pixels. Only the training labels get ``label_noise``;
    validation and test labels stay clean. Batches are ``[images, labels]`` lists.

    Args:
        batch_size: samples per batch.
        image_size: side of the square images; 8 keeps the originals.
        val_fraction: fraction of the images held out for validation.
        test_fraction: fraction of the images held out for testing.
        label_noise: probability that a training label is replaced by another class.
        seed: seed of the split and of the label noise.
        num_workers: loader worker processes.

    Attributes:
        num_classes: 10, read by the callbacks and by ``lightning-mix`` to build soft targets.
        in_channels: 1.

    Raises:
        ValueError: if an argument is out of range.

    Example:
        >>> data = DigitsDataModule(label_noise=0.2, seed=0)
        >>> data.setup("fit")
        >>> len(data.train_set), len(data.val_set), len(data.test_set), data.train_set.tensors[0].shape[1:]
        (1078, 270, 449, torch.Size([1, 16, 16]))
    """

    num_classes = 10
    in_channels = 1

    def __init__(
        self,
        *,
        batch_size: int = 64,
        image_size: int = 16,
        val_fraction: float = 0.15,
        test_fraction: float = 0.25,
        label_noise: float = 0.0,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        for name, value, low in (("image_size", image_size, 8), ("seed", seed, 0)):
            check_int(name, value, low)
        if _check_fraction("val_fraction", val_fraction) + _check_fraction("test_fraction", test_fraction) >= 1:
            raise ValueError(expected("val_fraction + test_fraction", "< 1", val_fraction + test_fraction))
        self.save_hyperparameters()
        self.image_size, self.seed = image_size, seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.label_noise = check_probability("label_noise", label_noise)

    @override
    def setup(self, stage: str) -> None:
        """Load, split, normalise and resize the digits (once)."""
        if self.train_set is not None:
            return
        digits = _require("sklearn.datasets").load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        labels = torch.as_tensor(digits.target, dtype=torch.long)
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(labels), generator=generator)
        n_test, n_val = round(self.test_fraction * len(order)), round(self.val_fraction * len(order))
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        mean, std = images[train].mean(), images[train].std()
        images = (images - mean) / std
        if self.image_size != images.shape[-1]:
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        train_labels = add_label_noise(labels[train], self.label_noise, self.num_classes, generator=generator)
        self.train_set = TensorDataset(images[train], train_labels)
        self.val_set = TensorDataset(images[val], labels[val])
        self.test_set = TensorDataset(images[test], labels[test])


class CIFAR10DataModule(_SplitDataModule):
    """CIFAR-10 through torchvision, from files already on disk unless ``download=True``.

    Training images get the usual random crop (padding 4) and horizontal flip; all are normalised with the
    CIFAR-10 channel statistics. A random subset of ``val_size`` training images (fixed by ``seed``, without
    augmentation) is held out for validation; the official test set is the test split.

    Args:
        data_dir: the directory that holds (or will hold) ``cifar-10-batches-py``.
        download: download the data when they are missing (about 170 MB). Off by default: nothing is
            downloaded unless asked for.
        batch_size: samples per batch.
        val_size: training images held out for validation.
        seed: seed of the validation split.
        num_workers: loader worker processes.

    Attributes:
        num_classes: 10.
        in_channels: 3.

    Raises:
        ValueError: if ``val_size`` or ``batch_size`` is out of range.

    Example:
        >>> data = CIFAR10DataModule(data_dir="/nonexistent")
        >>> data.prepare_data()
        Traceback (most recent call last):
        ...
        FileNotFoundError: Expected `data_dir` to be a directory holding cifar-10-batches-py, ...
    """

    num_classes = 10
    in_channels = 3
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def __init__(
        self,
        data_dir: str = "data",
        *,
        download: bool = False,
        batch_size: int = 128,
        val_size: int = 5000,
        seed: int = 0,
        num_workers: int = 2,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 < val_size < 50_000:
            raise ValueError(expected("val_size", "an int in [1, 50000)", val_size))
        self.save_hyperparameters()
        self.data_dir, self.download = Path(data_dir), download
        self.val_size, self.seed = val_size, seed

    @override
    def prepare_data(self) -> None:
        """Download the data if asked to; otherwise check they are there."""
        if self.download:
            datasets = _require("torchvision.datasets")
            for train in (True, False):
                datasets.CIFAR10(str(self.data_dir), train=train, download=True)
        elif not (self.data_dir / "cifar-10-batches-py").is_dir():
            hint = "Point `data_dir` at your copy, or pass `download=True` (`--data.download true`, `--download`)."
            where = str(self.data_dir.resolve())
            raise FileNotFoundError(expected("data_dir", "a directory holding cifar-10-batches-py", where, hint))

    @override
    def setup(self, stage: str) -> None:
        """Build the datasets (once)."""
        if self.train_set is not None:
            return
        datasets, transforms = _require("torchvision.datasets"), _require("torchvision.transforms")
        normalize = [transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]
        augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
        plain = transforms.Compose(normalize)
        train_full = datasets.CIFAR10(str(self.data_dir), train=True, transform=transforms.Compose(augment + normalize))
        eval_full = datasets.CIFAR10(str(self.data_dir), train=True, transform=plain)
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(train_full), generator=generator).tolist()
        self.train_set = Subset(train_full, order[self.val_size :])
        self.val_set = Subset(eval_full, order[: self.val_size])
        self.test_set = datasets.CIFAR10(str(self.data_dir), train=False, transform=plain)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class SmallCNN(LightningModule):
    """A small VGG-style CNN for image classification that knows nothing about mixing.

    Four 3×3 convolutions with batch norm (``width``, ``width``, then ``2·width`` twice after a 2×2 max-pool),
    global average pooling and a linear classifier: about 66k parameters at ``width=32``. Any image size
    works. The loss is ``F.cross_entropy(logits, target)``, which takes class indices or the soft ``(B, C)``
    targets a mixing callback puts in the batch. Logs ``train/loss`` and, on clean validation and test
    batches, ``{val,test}/loss``, ``{val,test}/acc`` and ``{val,test}/ece`` (expected calibration error,
    15 bins). AdamW with a cosine learning-rate decay over the whole run.

    Args:
        num_classes: number of classes.
        in_channels: image channels.
        width: channels of the first block.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.

    Example:
        >>> model = SmallCNN(num_classes=10, in_channels=3)
        >>> model(torch.zeros(2, 3, 32, 32)).shape, model.num_classes
        (torch.Size([2, 10]), 10)
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        width: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 5e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.num_classes, self.lr, self.weight_decay = num_classes, lr, weight_decay
        self.net = nn.Sequential(
            _block(in_channels, width),
            _block(width, width),
            nn.MaxPool2d(2),
            _block(width, 2 * width),
            _block(2 * width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, num_classes),
        )
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_ece = MulticlassCalibrationError(num_classes, n_bins=15)
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_ece = MulticlassCalibrationError(num_classes, n_bins=15)

    @override
    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(B, num_classes)``."""
        out: Tensor = self.net(x)
        return out

    @override
    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        """Cross-entropy with the batch's targets, whatever their format."""
        x, target = batch[0], batch[1]
        loss = F.cross_entropy(self(x), target)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    @override
    def validation_step(self, batch: list[Tensor], batch_idx: int) -> None:
        """Loss, accuracy and calibration error on clean labels."""
        self._evaluate(batch, "val", self.val_acc, self.val_ece)

    @override
    def test_step(self, batch: list[Tensor], batch_idx: int) -> None:
        """Loss, accuracy and calibration error on clean labels."""
        self._evaluate(batch, "test", self.test_acc, self.test_ece)

    def _evaluate(self, batch: list[Tensor], stage: str, acc: MulticlassAccuracy, ece: Any) -> None:
        x, y = batch[0], batch[1]
        logits = self(x)
        acc(logits, y)
        ece(logits.softmax(dim=1), y)
        self.log(f"{stage}/loss", F.cross_entropy(logits, y))
        self.log(f"{stage}/acc", acc, prog_bar=True)
        self.log(f"{stage}/ece", ece)

    @override
    def configure_optimizers(self) -> OptimizerLRScheduler:
        """AdamW, with the learning rate decayed to 0 along a cosine over the planned steps."""
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps = self.trainer.estimated_stepping_batches
        total = int(steps) if math.isfinite(steps) else 1_000_000
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class BatchSnapshot(Callback):
    """Keep a CPU copy of the first training batch exactly as ``training_step`` receives it.

    Put it *after* a mixing callback in ``Trainer(callbacks=[...])``: Lightning calls callbacks in order, so it
    sees the mixed input and the mixed target (a :class:`~lightning_mix.MixedLabels`, or soft targets).

    Args:
        input_key: position or key of the input in the batch.
        target_key: position or key of the target in the batch.

    Attributes:
        batch: ``(input, target)`` of the first training batch, or None before training.

    Example:
        >>> snapshot, batch = BatchSnapshot(), [torch.ones(2, 1, 8, 8), torch.arange(2)]
        >>> snapshot.on_train_batch_start(Trainer(logger=False), SmallCNN(), batch, 0)
        >>> snapshot.batch[0].shape, snapshot.batch[1].tolist()
        (torch.Size([2, 1, 8, 8]), [0, 1])
    """

    def __init__(self, input_key: int | str = 0, target_key: int | str = 1) -> None:
        super().__init__()
        self.input_key, self.target_key = input_key, target_key
        self.batch: tuple[Tensor, Tensor] | None = None

    @override
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Copy the first batch to the host."""
        if self.batch is None:
            x, target = batch[self.input_key], batch[self.target_key]
            self.batch = x.detach().cpu().clone(), target.detach().cpu().clone()


def _caption(target: Tensor) -> str:
    if target.ndim == 0:
        return str(int(target))
    weight, label = target.float().topk(min(2, target.shape[0]))
    parts = [f"{int(c)}: {float(w):.2f}" for w, c in zip(weight, label, strict=True) if float(w) >= 0.005]
    return "\n".join(parts)


def plot_batch(
    images: Tensor,
    targets: Tensor,
    *,
    columns: int = 8,
    title: str | None = None,
    figure: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    r"""Draw images with their labels: a class index, or the two heaviest classes of a soft target and weights.

    Args:
        images: ``(B, C, H, W)`` images with 1 or 3 channels, each rescaled to [0, 1] for display.
        targets: ``(B,)`` class indices, :class:`~lightning_mix.MixedLabels` of them, or ``(B, K)`` soft targets.
        columns: images per row.
        title: figure title.
        figure: a matplotlib figure or subfigure to draw into; a new figure when None.

    Returns:
        The figure drawn into (needs matplotlib).

    Example:
        >>> fig = plot_batch(torch.rand(4, 1, 8, 8), torch.tensor([[0.7, 0.3], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
        >>> [ax.get_title() for ax in fig.axes]
        ['0: 0.70\n1: 0.30', '0: 1.00', '1: 1.00', '0: 0.50\n1: 0.50']
        >>> from lightning_mix import MixedLabels
        >>> mixed = MixedLabels(torch.tensor([0, 2]), torch.tensor([2, 0]), torch.tensor([0.75, 1.0]))
        >>> [ax.get_title() for ax in plot_batch(torch.rand(2, 1, 8, 8), mixed).axes]
        ['0: 0.75\n2: 0.25', '2: 1.00']
    """
    if isinstance(targets, MixedLabels) and targets.ndim == 1:  # captions from the two labels and their weights
        own, partner, lam = targets.labels.long(), targets.partner_labels.long(), targets.lam
        classes = int(torch.maximum(own, partner).max()) + 1 if own.numel() else 1  # a host read: plotting only
        targets = lam[:, None] * F.one_hot(own, classes) + (1 - lam[:, None]) * F.one_hot(partner, classes)
    count = images.shape[0]
    cols = max(1, min(columns, count))
    rows = math.ceil(count / cols)
    if figure is None:
        size = (1.3 * cols, 1.55 * rows + (0.3 if title else 0))
        figure = _require("matplotlib.pyplot").figure(figsize=size, layout="tight")
    images = images.detach().float().cpu()
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    shown = (images - low) / (images.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
    for i in range(count):
        ax = figure.add_subplot(rows, cols, i + 1)
        ax.set_axis_off()
        picture = shown[i].permute(1, 2, 0).numpy()
        ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", interpolation="nearest")
        ax.set_title(_caption(targets[i]), fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure
