"""The callback under DDP: two CPU processes (gloo, ``ddp_spawn``) draw different, reproducible streams."""

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning import Trainer, seed_everything
from torch import Tensor
from torch.utils.data import DataLoader

from lightning_mix import MixCallback
from test_callback import NUM_CLASSES, SHAPE, Classifier, SameBatches

STEPS = 3


class Recorder(Classifier):
    """Saves what every rank's `training_step` saw, since a spawned process shares nothing with the test."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out

    def on_train_end(self) -> None:
        records = [(x, y, p.lam, p.partner, p.cutmix) for x, y, p, _ in self.train_seen if p is not None]
        torch.save(records, Path(self.out) / f"rank{self.global_rank}.pt")


def callback() -> MixCallback:
    return MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", targets="soft")


def fit(out: Path, **kwargs: Any) -> None:
    seed_everything(21)
    trainer = Trainer(
        callbacks=[callback()],
        max_epochs=1,
        limit_train_batches=STEPS,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,  # every rank reads the same batches, so only the mixing can differ
        **kwargs,
    )
    loader = DataLoader(SameBatches(STEPS), batch_size=4)
    trainer.fit(Recorder(str(out)), loader)


def load(path: Path) -> list[tuple[Tensor, ...]]:
    return torch.load(path, weights_only=True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*`validation_step` but have no `val_dataloader`.*")
def test_each_rank_draws_its_own_reproducible_stream(tmp_path: Path) -> None:
    fit(tmp_path, strategy="ddp_spawn", devices=2)
    rank0, rank1 = load(tmp_path / "rank0.pt"), load(tmp_path / "rank1.pt")
    assert len(rank0) == len(rank1) == STEPS
    for a, b in zip(rank0, rank1, strict=True):
        assert a[0].shape == (4, *SHAPE) and a[1].shape == (4, NUM_CLASSES)
        assert not torch.equal(a[2], b[2])  # different λ on the two ranks

    single = tmp_path / "single"
    single.mkdir()
    fit(single, devices=1)  # rank 0 of a single-process run with the same global seed
    for a, b in zip(rank0, load(single / "rank0.pt"), strict=True):
        for u, v in zip(a, b, strict=True):
            assert torch.equal(u, v)
