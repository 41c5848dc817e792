"""The callbacks for the standalone ``pytorch_lightning`` package's ``Trainer``.

Lightning ships as two packages, ``lightning`` and ``pytorch_lightning``, each with its own ``Callback`` base
class. :mod:`lightning_mix.callback` subclasses ``lightning.pytorch.callbacks.Callback``; ``pytorch_lightning``
before 2.6 refuses such a callback (``ValueError: Expected a parent``). The classes here are the same callbacks,
also subclassing ``pytorch_lightning.Callback``, so every version of either ``Trainer`` takes them. Same
arguments, same behaviour, same checkpoint state; ``lightning_mix.MixCallback.from_trainer`` finds them too.

Example:
    >>> import pytorch_lightning, lightning_mix
    >>> callback = CutMixCallback(alpha=1.0, seed=0)
    >>> isinstance(callback, pytorch_lightning.Callback), isinstance(callback, lightning_mix.CutMixCallback)
    (True, True)
"""

from __future__ import annotations

try:
    import pytorch_lightning
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "lightning_mix.pl is for the standalone pytorch_lightning package: pip install pytorch-lightning. "
        "With `lightning`, use lightning_mix.CutMixCallback and friends."
    ) from error

from lightning_mix import callback as _callback

__all__ = ["CutMixCallback", "MixCallback", "MixUpCallback"]


class MixCallback(_callback.MixCallback, pytorch_lightning.Callback):  # type: ignore[misc]
    """:class:`lightning_mix.MixCallback` for ``pytorch_lightning.Trainer``.

    Example:
        >>> MixCallback(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem").mode
        'elem'
    """


class CutMixCallback(_callback.CutMixCallback, pytorch_lightning.Callback):  # type: ignore[misc]
    """:class:`lightning_mix.CutMixCallback` for ``pytorch_lightning.Trainer``.

    Example:
        >>> CutMixCallback(alpha=0.5).cutmix_alpha
        0.5
    """


class MixUpCallback(_callback.MixUpCallback, pytorch_lightning.Callback):  # type: ignore[misc]
    """:class:`lightning_mix.MixUpCallback` for ``pytorch_lightning.Trainer``.

    Example:
        >>> MixUpCallback(alpha=0.2).mixup_alpha
        0.2
    """
