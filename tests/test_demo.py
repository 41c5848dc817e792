"""The ready-made data and model (`lightning_mix.demo`) and the `make demo` script, at a tiny size."""

import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from PIL import Image

from lightning_mix.demo import CIFAR10DataModule, DigitsDataModule, SmallCNN, add_label_noise, occlude, plot_batch

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


def test_occlude_hides_one_square_per_image_and_copies() -> None:
    images = torch.randn(64, 3, 12, 10) + 5  # no pixel is 0 before occlusion
    hidden = occlude(images, 4, generator=torch.Generator().manual_seed(0), value=0.0)
    assert hidden.shape == images.shape and bool((images > 0).all())  # the input is untouched
    zero = hidden == 0
    assert bool((zero.sum(dim=(1, 2, 3)) == 3 * 16).all())
    rows, cols = zero.any(dim=(1, 3)), zero.any(dim=(1, 2))  # (B, H), (B, W): one contiguous run of 4 each
    assert bool((rows.sum(dim=1) == 4).all()) and bool((cols.sum(dim=1) == 4).all())
    torch.testing.assert_close(hidden[~zero], images[~zero])
    again = occlude(images, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, hidden)  # the positions depend on the generator only


def test_occlude_positions_are_uniform() -> None:
    """Every top-left corner of a 3×3 square in a 6×6 image (16 of them) is drawn about equally often."""
    hidden = occlude(torch.ones(16_000, 1, 6, 6), 3, generator=torch.Generator().manual_seed(1))
    zero = hidden[:, 0] == 0
    top = zero.any(dim=2).float().argmax(dim=1)
    left = zero.any(dim=1).float().argmax(dim=1)
    counts = torch.bincount(4 * top + left, minlength=16).float()
    assert counts.numel() == 16
    chi2 = ((counts - 1000) ** 2 / 1000).sum().item()
    assert chi2 < 37.7  # the 0.999 quantile of chi-square with 15 degrees of freedom


@pytest.mark.parametrize(
    ("shape", "size", "error", "message"),
    [
        ((2, 1, 8, 8), 9, ValueError, r"Expected `size` to be at most the image side \(8\), but got 9"),
        ((2, 1, 8, 8), 0, ValueError, r"Expected `size` to be an int >= 1, but got 0"),
        ((2, 1, 8, 8), 2.0, TypeError, r"Expected `size` to be an int, but got 2.0"),
        ((8, 8), 2, ValueError, r"Expected `images` to be a \(B, C, H, W\) tensor, but got \(8, 8\)"),
    ],
)
def test_occlude_arguments_are_checked(shape: tuple[int, ...], size: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        occlude(torch.ones(shape), size, generator=torch.Generator())


SMALL = ["--methods", "none", "cutmix", "elem", "--image-size", "8", "--occlusion", "3"]


def test_demo_script_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: Any, one_thread: Any
) -> None:
    """One progress display, no Lightning chatter, then the tables and where the files went."""
    monkeypatch.setenv("LIGHTNING_MIX_SMALL", "1")
    demo = load_demo()
    monkeypatch.setattr(demo, "RESULTS", tmp_path / "committed" / "demo.md")
    caplog.set_level(logging.INFO)
    text = demo.main([*SMALL, "--out", str(tmp_path)])
    out, err = capfd.readouterr()
    lightning = [record.getMessage() for record in caplog.records if record.name.startswith("lightning")]
    assert lightning == []  # "GPU available: ...", "`Trainer.fit` stopped: ..." are silenced
    for chatter in ("GPU available", "TPU available", "LOCAL_RANK", "Epoch 0", "Trainer.fit", "┏", "Tip:"):
        assert chatter not in out + err, chatter
    bars = [line for line in err.split("\n") if "6 runs × 1 epochs" in line]
    assert len(bars) == 1 and "100%" in bars[0] and "[6/6] CutMix or MixUp per sample, seed 0, noise 20%" in bars[0]
    assert text in out and f"Wrote {demo._shown(tmp_path / 'mixed_batch.png')}" in out  # relative under the cwd
    tables = text.split("**digits 8×8")
    assert len(tables) == 3 and "clean labels" in tables[1] and "20% noisy training labels" in tables[2]
    assert "| method | test accuracy (%) | occluded 3×3 (%) | test ECE (%) |" in text
    assert "| no mixing |" in text and "| CutMix (α=1) |" in text and "| CutMix or MixUp per sample |" in text
    assert (tmp_path / "results.md").read_text().strip() == text
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert len(rows) == 7 and "occluded_3_acc" in rows[0]  # header + 2 noise levels × 3 methods
    assert not (tmp_path / "committed").exists()  # not the documented configuration: the committed file stays
    with Image.open(tmp_path / "mixed_batch.png") as picture:
        assert picture.size[0] > 400 and picture.size[1] > 200  # two rows: CutMix and per-sample


def test_demo_script_verbose_brings_lightning_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: Any, one_thread: Any
) -> None:
    monkeypatch.setenv("LIGHTNING_MIX_SMALL", "1")
    demo = load_demo()
    caplog.set_level(logging.INFO)
    args = ["--methods", "none", "--label-noise", "0", "--image-size", "8", "--occlusion", "--verbose"]
    demo.main([*args, "--out", str(tmp_path)])
    out, err = capfd.readouterr()
    lightning = " ".join(record.getMessage() for record in caplog.records if record.name.startswith("lightning"))
    assert "[1/1] no mixing, seed 0" in out
    # Lightning's own model summary or progress bar is back; its start-up lines too, though the capture misses
    # them (and, on lightning 2.5, the summary) once another test has built a pytorch_lightning Trainer
    assert any(mark in out + err for mark in ("| Name", "┃ Name", "Training:", "Epoch 0:"))
    assert "GPU available" in lightning + out + err or "pytorch_lightning" in sys.modules
    assert "1 runs × 1 epochs" not in err  # Lightning's bars instead of the demo's
    assert logging.getLogger("lightning.pytorch").level == logging.INFO  # put back after a quiet run too


def test_committed_results_are_embedded_unchanged() -> None:
    """The README and the docs show the committed tables exactly (regenerate with `make demo`)."""
    demo = load_demo()
    committed = demo.RESULTS.read_text(encoding="utf-8").strip()
    for document in demo.EMBEDDED_IN:
        assert demo.embedded(document.read_text(encoding="utf-8")) == committed, document.name


def test_committed_results_come_from_the_current_configuration() -> None:
    """Changing what determines the runs without running `make demo` again fails here."""
    demo = load_demo()
    record = json.loads(demo.RESULTS.with_suffix(".json").read_text(encoding="utf-8"))
    current = json.loads(json.dumps(demo.documented_configuration()))  # tuples as JSON lists, like the record
    assert record["config"] == current, "the demo's configuration changed: run `make demo` and commit docs/results"
    assert record["config_hash"] == demo.configuration_hash(demo.documented_configuration())
    assert f"Configuration hash `{record['config_hash']}`" in demo.RESULTS.read_text(encoding="utf-8")
    assert len(record["runs"]) == len(current["label_noise"]) * len(current["seeds"]) * len(current["methods"])


def test_configuration_hash_sees_defaults_and_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    demo = load_demo()
    monkeypatch.delenv("LIGHTNING_MIX_SMALL", raising=False)
    base = demo.configuration_hash(demo.configuration(demo.parse_args([])))
    assert base == demo.configuration_hash(demo.documented_configuration())
    for argv in (["--epochs", "21"], ["--label-noise", "0.2"], ["--occlusion", "6"], ["--batch-size", "32"]):
        assert demo.configuration_hash(demo.configuration(demo.parse_args(argv))) != base, argv
    assert demo.configuration_hash(demo.configuration(demo.parse_args(["--out", "elsewhere", "--verbose"]))) == base
    monkeypatch.setattr(demo, "make_callback", lambda method, seed: demo.MixCallback(mixup_alpha=1.0, prob=0.5))
    assert demo.configuration_hash(demo.configuration(demo.parse_args([]))) != base  # a callback argument


def test_write_results_updates_the_marked_documents(tmp_path: Path) -> None:
    demo = load_demo()
    marked, plain = tmp_path / "README.md", tmp_path / "other.md"
    marked.write_text(f"# Title\n\n{demo.START}\nold table\n{demo.END}\n\nAfter.\n")
    plain.write_text("no markers\n")
    results = tmp_path / "results" / "demo.md"
    demo.write_results("| new | table |\n", {"config_hash": "abc"}, results, (marked, plain, tmp_path / "missing.md"))
    assert results.read_text() == "| new | table |\n"
    assert json.loads(results.with_suffix(".json").read_text()) == {"config_hash": "abc"}
    assert marked.read_text() == f"# Title\n\n{demo.START}\n| new | table |\n{demo.END}\n\nAfter.\n"
    assert demo.embedded(marked.read_text()) == "| new | table |" and plain.read_text() == "no markers\n"
    with pytest.raises(ValueError, match=r"Expected the document to hold <!-- demo-results:start -->"):
        demo.embed("x", "no markers")


def test_demo_arguments_are_checked(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    demo = load_demo()
    for argv, message in (
        (["--occlusion", "17"], "--occlusion sizes must be in [1, 16]"),
        (["--label-noise", "0", "1"], "--label-noise must be in [0, 1)"),
        (["--dataset", "cifar10", "--label-noise", "0.1"], "--label-noise is only implemented for digits"),
    ):
        with pytest.raises(SystemExit):
            demo.parse_args(argv)
        assert message in capsys.readouterr().err


def test_demo_script_refuses_to_download_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = load_demo()
    monkeypatch.setattr(sys, "argv", ["demo.py"])
    with pytest.raises(SystemExit, match=r"cifar-10-batches-py"):
        demo.main(["--dataset", "cifar10", "--data-dir", str(tmp_path), "--out", str(tmp_path)])
