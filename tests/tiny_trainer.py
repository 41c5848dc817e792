"""A quiet, tiny CPU ``Trainer`` for tests: one epoch, two training batches, no logger or checkpoints."""

from __future__ import annotations

from typing import Any

from lightning import Trainer


def make_trainer(*callbacks: Any, **kwargs: Any) -> Trainer:
    """A ``Trainer`` with the given callbacks; ``kwargs`` override the quiet defaults."""
    options: dict[str, Any] = {
        "max_epochs": 1,
        "limit_train_batches": 2,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    options.update(kwargs)
    return Trainer(callbacks=list(callbacks), **options)
