"""CutMix and MixUp for any PyTorch Lightning module."""

from lightning_mix import functional
from lightning_mix.functional import MixParams

__version__ = "0.1.0.dev0"

__all__ = ["MixParams", "__version__", "functional"]
