"""LightningCLI round trips: callback flags and YAML in any LightningCLI app, and the ready `lightning-mix` command."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import yaml
from lightning import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from lightning_mix import CutMixCallback, MixCallback, MixUpCallback
from lightning_mix.cli import MixCLI, link_num_classes, main
from lightning_mix.demo import BatchSnapshot

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*args parameter is intended to run from within Python.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*JsonargparseDeprecationWarning.*"),
]

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"
QUIET = ["--seed_everything=0", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]


class TinyData(LightningDataModule):
    def __init__(self, num_classes: int = 4, batch_size: int = 6) -> None:
        super().__init__()
        self.num_classes, self.batch_size = num_classes, batch_size

    def train_dataloader(self) -> DataLoader[Any]:
        g = torch.Generator().manual_seed(0)
        data = TensorDataset(torch.randn(18, 1, 8, 8, generator=g), torch.randint(self.num_classes, (18,), generator=g))
        return DataLoader(data, batch_size=self.batch_size)


class NoClassesData(TinyData):
    """A datamodule without a ``num_classes`` attribute."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__(classes)
        del self.num_classes

    def train_dataloader(self) -> DataLoader[Any]:
        data = TensorDataset(torch.randn(12, 1, 8, 8), torch.randint(4, (12,)))
        return DataLoader(data, batch_size=6)


class TinyModel(LightningModule):
    """Plain cross-entropy; deliberately no ``num_classes`` attribute, so only a link can tell the callback."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(64, classes)
        self.targets: list[Tensor] = []

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        self.targets.append(y.detach().clone())
        return F.cross_entropy(self.layer(x.flatten(1)), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def mixers(trainer: Any) -> list[MixCallback]:
    return [cb for cb in trainer.callbacks if isinstance(cb, MixCallback)]


# ---------------------------------------------------------------------------------------------------------------
# Any LightningCLI app: the callbacks through --trainer.callbacks and YAML


CALLBACK_FLAGS = [
    "--trainer.callbacks+=lightning_mix.CutMixCallback",
    "--trainer.callbacks.alpha=0.5",
    "--trainer.callbacks.prob=0.75",
    "--trainer.callbacks.mode=elem",
    "--trainer.callbacks.targets=soft",
    "--trainer.callbacks.label_smoothing=0.1",
    "--trainer.callbacks.num_classes=4",
    "--trainer.callbacks.seed=3",
]


def test_callback_flags_with_several_init_args() -> None:
    more = ["--trainer.callbacks+=lightning_mix.MixUpCallback", "--trainer.callbacks.alpha=0.2"]
    cli = LightningCLI(TinyModel, TinyData, run=False, args=[*QUIET, *CALLBACK_FLAGS, *more])
    cutmix, mixup = mixers(cli.trainer)
    assert type(cutmix) is CutMixCallback and type(mixup) is MixUpCallback
    assert (cutmix.cutmix_alpha, cutmix.mixup_alpha, cutmix.prob, cutmix.mode) == (0.5, 0.0, 0.75, "elem")
    assert (cutmix.label_smoothing, cutmix.num_classes, cutmix.seed) == (0.1, 4, 3)
    assert (mixup.mixup_alpha, mixup.has_cutmix, mixup.mode) == (0.2, False, "batch")


def test_callback_flags_reach_training_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli = LightningCLI(TinyModel, TinyData, args=["fit", *QUIET, *CALLBACK_FLAGS, "--trainer.fast_dev_run=true"])
    (target,) = cli.model.targets
    assert target.shape == (6, 4) and target.dtype == torch.float32
    torch.testing.assert_close(target.sum(1), torch.ones(6))
    assert bool((target.amin(1) >= 0.1 / 4 - 1e-6).all())  # label smoothing folded in by the callback


def test_callback_flags_are_validated_while_parsing() -> None:
    with pytest.raises(ValueError, match=r"Expected `prob` to be a float in \[0, 1\], but got 1.5"):
        LightningCLI(TinyModel, TinyData, run=False, args=[*QUIET, *CALLBACK_FLAGS[:2], "--trainer.callbacks.prob=1.5"])


def test_yaml_class_path_and_init_args(tmp_path: Path) -> None:
    config = {
        "trainer": {
            "callbacks": [
                {
                    "class_path": "lightning_mix.MixCallback",
                    "init_args": {
                        "mixup_alpha": 0.8,
                        "cutmix_alpha": 1.0,
                        "switch_prob": 0.25,
                        "mode": "elem",
                        "pairing": "adjacent",
                    },
                }
            ]
        }
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = LightningCLI(TinyModel, TinyData, run=False, args=[*QUIET, "--config", str(path)])
    (mix,) = mixers(cli.trainer)
    assert (mix.mixup_alpha, mix.cutmix_alpha, mix.switch_prob, mix.mode) == (0.8, 1.0, 0.25, "elem")
    assert mix.pairing == "adjacent"


@pytest.mark.parametrize("pairing", ["auto", "random", "adjacent"])
def test_pairing_flag(pairing: str) -> None:
    cli = LightningCLI(
        TinyModel, TinyData, run=False, args=[*QUIET, *CALLBACK_FLAGS, f"--trainer.callbacks.pairing={pairing}"]
    )
    (mix,) = mixers(cli.trainer)
    assert mix.pairing == pairing
    mixcli = MixCLI(TinyModel, TinyData, run=False, args=[*QUIET, "--mix.cutmix_alpha=1.0", f"--mix.pairing={pairing}"])
    assert MixCallback.from_trainer(mixcli.trainer).pairing == pairing


def test_an_unknown_pairing_is_refused_while_parsing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        MixCLI(TinyModel, TinyData, run=False, args=[*QUIET, "--mix.cutmix_alpha=1.0", "--mix.pairing=pairs"])
    assert stop.value.code != 0
    assert "mix.pairing" in capsys.readouterr().err


def test_example_trainer_callbacks_config() -> None:
    path = CONFIGS / "trainer_callbacks.yaml"
    cli = LightningCLI(TinyModel, TinyData, run=False, args=[*QUIET, "--config", str(path)])
    (mix,) = mixers(cli.trainer)
    (entry,) = yaml.safe_load(path.read_text())["trainer"]["callbacks"]
    assert type(mix) is CutMixCallback
    assert {name: getattr(mix, name) for name in ("prob", "mode", "num_classes", "seed")} == {
        name: entry["init_args"][name] for name in ("prob", "mode", "num_classes", "seed")
    }


def test_print_config_lists_the_callback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        LightningCLI(TinyModel, TinyData, run=False, args=[*QUIET, *CALLBACK_FLAGS, "--print_config"])
    assert stop.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    (entry,) = printed["trainer"]["callbacks"]
    assert entry["class_path"].endswith("CutMixCallback")
    assert {k: entry["init_args"][k] for k in ("alpha", "prob", "mode", "num_classes")} == {
        "alpha": 0.5,
        "prob": 0.75,
        "mode": "elem",
        "num_classes": 4,
    }


# ---------------------------------------------------------------------------------------------------------------
# The ready command: MixCLI and `lightning-mix`


def test_mixcli_fit_end_to_end_links_num_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        *QUIET,
        "--mix.cutmix_alpha",
        "1.0",
        "--mix.mode",
        "elem",
        "--mix.seed",
        "0",
        "--mix.targets",
        "soft",
    ]
    args += ["--data.num_classes", "5", "--model.classes", "5", "--trainer.fast_dev_run=true"]
    args += ["--trainer.callbacks+=lightning_mix.demo.BatchSnapshot"]
    cli = MixCLI(TinyModel, TinyData, args=args)
    mix = cli.trainer.callbacks[0]
    assert isinstance(mix, MixCallback) and mixers(cli.trainer) == [mix]  # first, so everyone sees the mixed batch
    assert (mix.cutmix_alpha, mix.mode, mix.num_classes) == (1.0, "elem", 5)  # linked from --data.num_classes
    (snapshot,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, BatchSnapshot)]
    assert snapshot.batch is not None and snapshot.batch[1].shape == (6, 5)
    assert cli.model.targets[0].shape == (6, 5)
    assert mix.last_params is not None and bool((mix.last_params.lam < 1).any())


def test_mixcli_keeps_an_explicit_num_classes_and_rejects_a_contradiction() -> None:
    base = [*QUIET, "--mix.cutmix_alpha=1.0"]
    cli = MixCLI(TinyModel, NoClassesData, run=False, args=[*base, "--mix.num_classes=7"])
    assert MixCallback.from_trainer(cli.trainer).num_classes == 7
    cli = MixCLI(TinyModel, NoClassesData, run=False, args=base)
    assert MixCallback.from_trainer(cli.trainer).num_classes is None  # found on the model at the first batch
    with pytest.raises(ValueError, match=r"Expected `mix.num_classes` to be the datamodule's num_classes \(4\), but"):
        MixCLI(TinyModel, TinyData, run=False, args=[*base, "--mix.num_classes=3"])


def test_link_num_classes() -> None:
    callback = MixCallback(mixup_alpha=1.0)
    link_num_classes(callback, None)
    assert callback.num_classes is None
    link_num_classes(callback, TinyData(num_classes=3))
    assert callback.num_classes == 3
    link_num_classes(callback, TinyData(num_classes=3))
    with pytest.raises(ValueError, match=r"Leave `mix\.num_classes` unset"):
        link_num_classes(callback, TinyData(num_classes=2))


def test_mixcli_defaults_and_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--mix.mode=elem", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["mix"]["cutmix_alpha"] == 1.0 and printed["mix"]["mode"] == "elem"
    assert printed["mix"]["num_classes"] is None  # taken from the datamodule at instantiation
    assert printed["model"]["class_path"] == "lightning_mix.demo.SmallCNN"
    assert printed["data"]["class_path"] == "lightning_mix.demo.DigitsDataModule"
    assert printed["trainer"]["max_epochs"] == 20


@pytest.mark.parametrize("name", ["cutmix", "mixup", "elem"])
def test_example_configs(name: str) -> None:
    path = CONFIGS / f"{name}.yaml"
    cli = MixCLI(run=False, args=["--config", str(path), "--trainer.enable_progress_bar=false"])
    mix = MixCallback.from_trainer(cli.trainer)
    written = yaml.safe_load(path.read_text())
    assert {key: getattr(mix, key) for key in written["mix"]} == written["mix"]
    assert mix.num_classes == cli.datamodule.num_classes == 10
    assert type(cli.model).__name__ == "SmallCNN" and type(cli.datamodule).__name__ == "DigitsDataModule"


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("lightning-mix")
    if not script.exists():
        pytest.skip("the console script is not installed (pip install -e .)")
    args = ["fit", "--mix.cutmix_alpha", "1.0", "--mix.mode", "elem", "--mix.mixup_alpha", "0.2"]
    args += ["--data.image_size=8", "--model.width=4", "--trainer.max_steps=2", "--trainer.limit_val_batches=1"]
    args += ["--trainer.enable_progress_bar=false", "--seed_everything=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model, and pytest-xdist keeps every core busy
    done = subprocess.run([str(script), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "`Trainer.fit` stopped: `max_steps=2` reached" in done.stdout + done.stderr
    saved = yaml.safe_load(next(tmp_path.glob("lightning_logs/version_0/config.yaml")).read_text())
    assert saved["mix"]["mode"] == "elem" and saved["mix"]["mixup_alpha"] == 0.2
