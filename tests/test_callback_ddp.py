"""The callback under DDP: two CPU processes (gloo, ``ddp_spawn``) draw different, reproducible streams."""

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from lightning_mix import MixCallback
from test_callback import NUM_CLASSES, SHAPE, Classifier, SameBatches, make_data

STEPS = 3


class Recorder(Classifier):
    """Saves what every rank's `training_step` saw, since a spawned process shares nothing with the test."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out

    def on_train_end(self) -> None:
        records = [(x, y, p.lam, p.partner, p.cutmix, p.box) for x, y, p, _ in self.train_seen if p is not None]
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


RESUME_STEPS, BATCH = 4, 4
FIELDS = ("input", "target", "lam", "partner", "cutmix", "box")


class RankBatches(Recorder):
    """Each rank reads its own half of the data in order, so every (rank, step) has its own batch."""

    def __init__(self, out: str, skip: int = 0) -> None:
        super().__init__(out)
        self.skip = skip

    def train_dataloader(self) -> DataLoader:
        x, y = make_data(2 * RESUME_STEPS * BATCH)
        rank, start = self.global_rank, self.skip * BATCH
        # a plain loader restarts at its first batch on resume: start it where the checkpoint left off
        return DataLoader(TensorDataset(x[rank::2][start:], y[rank::2][start:]), batch_size=BATCH)


def fit_distinct(out: Path, ckpt_path: Path | None = None, checkpoints: Path | None = None) -> None:
    """2 ranks, 4 steps, a different batch at every step and on every rank."""
    saving = [ModelCheckpoint(checkpoints, every_n_train_steps=2, save_top_k=-1)] if checkpoints else []
    trainer = Trainer(
        callbacks=[callback(), *saving],
        max_epochs=1,
        limit_train_batches=RESUME_STEPS,
        accelerator="cpu",
        strategy="ddp_spawn",
        devices=2,
        logger=False,
        enable_checkpointing=checkpoints is not None,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(RankBatches(str(out), skip=0 if ckpt_path is None else 2), ckpt_path=ckpt_path)


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:.*`validation_step` but have no `val_dataloader`.*",
    "ignore:.*resuming from a checkpoint that ended before the epoch ended.*",
)
def test_resume_on_two_ranks_continues_each_ranks_stream_as_uninterrupted(tmp_path: Path) -> None:
    full, resumed, checkpoints = tmp_path / "full", tmp_path / "resumed", tmp_path / "checkpoints"
    full.mkdir(), resumed.mkdir()
    seed_everything(31)
    fit_distinct(full, checkpoints=checkpoints)
    path = checkpoints / "epoch=0-step=2.ckpt"  # mid-epoch: 2 of the 4 steps done
    seed_everything(32)  # another global seed: the checkpointed one must be used
    fit_distinct(resumed, ckpt_path=path)
    for rank in (0, 1):
        before, after = load(full / f"rank{rank}.pt"), load(resumed / f"rank{rank}.pt")
        assert len(before) == RESUME_STEPS and len(after) == RESUME_STEPS - 2
        assert not torch.equal(before[2][0], before[3][0])  # the batches differ from step to step
        for a, b in zip(before[2:], after, strict=True):
            assert [torch.equal(u, v) for u, v in zip(a, b, strict=True)] == [True] * len(FIELDS), FIELDS
    other = load(full / "rank1.pt")
    assert not any(torch.equal(a[2], b[2]) for a, b in zip(load(full / "rank0.pt"), other, strict=True))
