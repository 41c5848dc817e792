"""The callbacks with the standalone ``pytorch_lightning`` package and built from Hydra configs."""

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_mix import MixCallback

pl = pytest.importorskip("pytorch_lightning")
from lightning_mix.pl import CutMixCallback, MixUpCallback  # noqa: E402  (needs pytorch_lightning)

PL_VERSION = tuple(int(part) for part in pl.__version__.split(".")[:2])

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers.*", "ignore:.*LeafSpec.*is deprecated.*", "ignore:.*GPU available.*"
)


class PLClassifier(pl.LightningModule):  # type: ignore[misc]
    """A linear classifier written against ``pytorch_lightning``, not ``lightning``."""

    def __init__(self) -> None:
        super().__init__()
        self.num_classes = 4
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
        self.targets: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.targets.append(batch[1].clone())
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loaders() -> tuple[DataLoader[Any], DataLoader[Any]]:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, 1, 8, 8, generator=generator), torch.randint(4, (32,), generator=generator))
    return DataLoader(data, batch_size=8, shuffle=True), DataLoader(data, batch_size=8)


def pl_trainer(callback: Any, tmp_path: Path, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "max_epochs": 1,
        "limit_train_batches": 2,
        "limit_val_batches": 1,
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "default_root_dir": tmp_path,
    }
    options.update(kwargs)
    return pl.Trainer(callbacks=[callback], **options)


@pytest.mark.parametrize("factory", [CutMixCallback, MixUpCallback])
def test_pytorch_lightning_trainer_fits_with_the_callback(factory: Any, tmp_path: Path) -> None:
    model, callback = PLClassifier(), factory(alpha=1.0, seed=0, targets="soft")
    trainer = pl_trainer(callback, tmp_path, enable_checkpointing=False)
    trainer.fit(model, *loaders())
    assert [tuple(t.shape) for t in model.targets] == [(8, 4), (8, 4)]  # soft rows, num_classes from the module
    for target in model.targets:
        torch.testing.assert_close(target.sum(dim=1), torch.ones(8))
        assert bool(((target > 0).sum(dim=1) <= 2).all())
    assert MixCallback.from_trainer(trainer) is callback
    assert callback.last_params is not None and trainer.global_step == 2


def test_pytorch_lightning_default_mixed_labels_reach_the_loss(tmp_path: Path, recwarn: Any) -> None:
    """With the default ``targets="labels"``, F.cross_entropy in a pytorch_lightning module reads the mix."""
    model, callback = PLClassifier(), CutMixCallback(alpha=1.0, seed=0)
    pl_trainer(callback, tmp_path, enable_checkpointing=False).fit(model, *loaders())
    assert [tuple(t.shape) for t in model.targets] == [(8,), (8,)] and callback.last_params is not None
    assert not [w for w in recwarn if "no loss read the mixed labels" in str(w.message)]


def test_pytorch_lightning_checkpoint_resumes_the_mixing_stream(tmp_path: Path) -> None:
    """Two epochs in one go draw the same last mixing parameters as one epoch, a checkpoint and a resume."""
    straight = CutMixCallback(seed=3)
    pl_trainer(straight, tmp_path / "a", max_epochs=2, enable_checkpointing=False).fit(PLClassifier(), *loaders())

    trainer = pl_trainer(CutMixCallback(seed=3), tmp_path / "b", max_epochs=1, enable_checkpointing=False)
    trainer.fit(PLClassifier(), *loaders())
    checkpoint = tmp_path / "one_epoch.ckpt"
    trainer.save_checkpoint(checkpoint)
    resumed = CutMixCallback(seed=3)
    pl_trainer(resumed, tmp_path / "c", max_epochs=2, enable_checkpointing=False).fit(
        PLClassifier(), *loaders(), ckpt_path=checkpoint
    )

    assert resumed.state_dict() == straight.state_dict() == {"seed": 3, "step": 4, "enabled": True}
    assert straight.last_params is not None and resumed.last_params is not None
    for field in ("lam", "partner", "box", "mixed"):
        assert torch.equal(getattr(resumed.last_params, field), getattr(straight.last_params, field)), field


def test_pytorch_lightning_variants_are_the_same_callbacks() -> None:
    import lightning_mix

    callback = CutMixCallback(alpha=0.5, seed=1)
    assert isinstance(callback, pl.Callback) and isinstance(callback, lightning_mix.CutMixCallback)
    assert callback.state_key == lightning_mix.CutMixCallback(alpha=0.5, seed=1).state_key  # checkpoints carry over
    with pytest.raises(ValueError, match=r"Expected `alpha` to be"):
        MixUpCallback(alpha=-1.0)


@pytest.mark.skipif(PL_VERSION < (2, 6), reason="pytorch_lightning < 2.6 refuses callbacks of the lightning package")
def test_pytorch_lightning_2_6_takes_the_lightning_callbacks_too(tmp_path: Path) -> None:
    import lightning_mix

    model, callback = PLClassifier(), lightning_mix.CutMixCallback(seed=0, targets="soft")
    pl_trainer(callback, tmp_path, enable_checkpointing=False).fit(model, *loaders())
    assert [tuple(t.shape) for t in model.targets] == [(8, 4), (8, 4)]


hydra = pytest.importorskip("hydra")


def test_hydra_instantiates_the_callbacks() -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    import lightning_mix

    config = OmegaConf.create(
        """
        callbacks:
          cutmix:
            _target_: lightning_mix.CutMixCallback
            alpha: 1.0
            seed: 0
          mix:
            _target_: lightning_mix.MixCallback
            mixup_alpha: 0.2
            cutmix_alpha: 1.0
            mode: elem
            cutmix_minmax: [0.2, 0.8]
            cut_dims: [-2, -1]
            label_smoothing: 0.1
        """
    )
    built = {name: instantiate(node) for name, node in config.callbacks.items()}
    cutmix, mix = built["cutmix"], built["mix"]
    assert type(cutmix) is lightning_mix.CutMixCallback and (cutmix.cutmix_alpha, cutmix.mixup_alpha, cutmix.seed) == (
        1.0,
        0.0,
        0,
    )
    assert type(mix) is MixCallback and mix.mode == "elem" and mix.label_smoothing == 0.1
    assert mix.cutmix_minmax == (0.2, 0.8) and mix.cut_dims == (-2, -1)  # Hydra's ListConfig read as tuples


def test_hydra_config_errors_are_the_callbacks_own() -> None:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = OmegaConf.create({"_target_": "lightning_mix.MixCallback", "mixup_alpha": 1.0, "mode": "pixel"})
    with pytest.raises(InstantiationException, match=r"Expected `mode` to be one of"):
        instantiate(config)


def test_hydra_built_callback_trains_with_pytorch_lightning(tmp_path: Path) -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    callback = instantiate(
        OmegaConf.create({"_target_": "lightning_mix.pl.MixUpCallback", "alpha": 0.4, "seed": 1, "targets": "soft"})
    )
    model = PLClassifier()
    pl_trainer(callback, tmp_path, enable_checkpointing=False).fit(model, *loaders())
    assert [tuple(t.shape) for t in model.targets] == [(8, 4), (8, 4)]
