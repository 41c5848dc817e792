"""The ready-made data and model (`lightning_mix.demo`) and the `make demo` script, at a tiny size."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from PIL import Image

from lightning_mix.demo import CIFAR10DataModule, DigitsDataModule, SmallCNN, add_label_noise, plot_batch

pytestmark = pytest.mark.filterwarnings("ignore:.*does not have many workers.*")

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lightning_mix_demo_script", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread() -> Any:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the demo sets its own


def test_digits_split_noise_and_clean_evaluation_labels() -> None:
    clean, noisy = DigitsDataModule(seed=1), DigitsDataModule(seed=1, label_noise=0.3)
    for data in (clean, noisy):
        data.setup("fit")
    assert clean.train_set is not None and noisy.train_set is not None
    assert clean.val_set is not None and noisy.val_set is not None and noisy.test_set is not None
    assert sum(len(s) for s in (noisy.train_set, noisy.val_set, noisy.test_set)) == 1797
    torch.testing.assert_close(clean.train_set.tensors[0], noisy.train_set.tensors[0])  # same split and images
    wrong = (clean.train_set.tensors[1] != noisy.train_set.tensors[1]).float().mean().item()
    assert 0.25 < wrong < 0.35
    assert torch.equal(clean.val_set.tensors[1], noisy.val_set.tensors[1])  # evaluation labels stay clean
    assert torch.equal(clean.test_set.tensors[1], noisy.test_set.tensors[1])
    x = clean.train_set.tensors[0]
    assert x.shape[1:] == (1, 16, 16) and abs(x.mean().item()) < 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"Expected `batch_size` to be an int >= 1, but got 0"),
        ({"image_size": 4}, r"Expected `image_size` to be an int >= 8, but got 4"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, r"Expected `val_fraction \+ test_fraction` to be < 1"),
        ({"label_noise": 1.5}, r"Expected `label_noise` to be"),
    ],
)
def test_digits_arguments_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DigitsDataModule(**kwargs)


def test_digits_loader_before_setup() -> None:
    with pytest.raises(RuntimeError, match=r"Expected `setup\(\)` to be called before asking for a loader"):
        DigitsDataModule().train_dataloader()


def test_label_noise_never_keeps_a_corrupted_label() -> None:
    labels = torch.arange(10).repeat(100)
    noisy = add_label_noise(labels, 1.0, 10, generator=torch.Generator().manual_seed(0))
    assert bool((noisy != labels).all()) and set(noisy.tolist()) == set(range(10))
    with pytest.raises(ValueError, match=r"Expected `num_classes` to be an int >= 2, but got 1"):
        add_label_noise(labels, 0.1, 1, generator=torch.Generator())


class FakeCIFAR10(torch.utils.data.Dataset[Any]):
    """Stands in for torchvision's CIFAR10: PIL images, as the transforms expect."""

    def __init__(self, root: str, train: bool = True, transform: Any = None, download: bool = False) -> None:
        self.transform, self.size = transform, 60 if train else 20

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image = Image.fromarray(torch.randint(256, (32, 32, 3), dtype=torch.uint8).numpy())
        return self.transform(image), i % 10


def test_cifar10_needs_the_files_or_an_explicit_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"pass `download=True`"):
        CIFAR10DataModule(str(tmp_path)).prepare_data()
    with pytest.raises(ValueError, match=r"Expected `val_size` to be an int in \[1, 50000\)"):
        CIFAR10DataModule(str(tmp_path), val_size=0)


def test_cifar10_datasets_and_loaders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torchvision")
    monkeypatch.setattr("torchvision.datasets.CIFAR10", FakeCIFAR10)
    (tmp_path / "cifar-10-batches-py").mkdir()
    data = CIFAR10DataModule(str(tmp_path), batch_size=8, val_size=10, num_workers=0)
    data.prepare_data()
    data.setup("fit")
    assert (len(data.train_set), len(data.val_set), len(data.test_set)) == (50, 10, 20)  # type: ignore[arg-type]
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,)
    assert SmallCNN(in_channels=3, width=4)(x).shape == (8, 10)


def test_plot_batch_rgb_and_soft_targets() -> None:
    soft = torch.tensor([[0.6, 0.4, 0.0], [0.0, 0.0, 1.0]])
    figure = plot_batch(torch.rand(2, 3, 8, 8, dtype=torch.float16), soft, columns=1, title="t")
    assert [ax.get_title() for ax in figure.axes] == ["0: 0.60\n1: 0.40", "2: 1.00"]


def test_demo_script_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: Any) -> None:
    monkeypatch.setenv("LIGHTNING_MIX_SMALL", "1")
    demo = load_demo()
    table = demo.main(["--methods", "none", "cutmix", "elem", "--out", str(tmp_path), "--image-size", "8"])
    assert "| no mixing |" in table and "| CutMix (α=1) |" in table and "| CutMix or MixUp per sample |" in table
    assert (tmp_path / "results.md").read_text().strip() == table
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 4  # header + 3 runs
    with Image.open(tmp_path / "mixed_batch.png") as picture:
        assert picture.size[0] > 400 and picture.size[1] > 200  # two rows: CutMix and per-sample


def test_demo_script_refuses_to_download_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = load_demo()
    monkeypatch.setattr(sys, "argv", ["demo.py"])
    with pytest.raises(SystemExit, match=r"cifar-10-batches-py"):
        demo.main(["--dataset", "cifar10", "--data-dir", str(tmp_path), "--out", str(tmp_path)])
