"""CutMix and MixUp for any PyTorch Lightning module."""

from lightning_mix import functional
from lightning_mix.callback import CutMixCallback, MixCallback, MixUpCallback
from lightning_mix.functional import MixParams
from lightning_mix.labels import MixedLabels, register_loss
from lightning_mix.loss import SoftTargetBCELoss, SoftTargetLoss
from lightning_mix.metrics import MixedAccuracy

__version__ = "0.1.0.dev0"

__all__ = [
    "CutMixCallback",
    "MixCallback",
    "MixParams",
    "MixUpCallback",
    "MixedAccuracy",
    "MixedLabels",
    "SoftTargetBCELoss",
    "SoftTargetLoss",
    "__version__",
    "functional",
    "register_loss",
]
