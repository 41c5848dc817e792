"""The ``lightning-mix`` command: a LightningCLI with a ``--mix.*`` argument group for :class:`MixCallback`.

Every option of :class:`~lightning_mix.MixCallback` is a ``--mix.*`` flag or a ``mix:`` entry of a YAML config;
the model and the datamodule are any classes given by class path, and default to the offline digits and the
small CNN of :mod:`lightning_mix.demo`::

    lightning-mix fit --mix.cutmix_alpha 1.0 --mix.mode elem --trainer.max_epochs 5
    lightning-mix fit --config examples/configs/cutmix.yaml
    lightning-mix fit --model my_package.MyModel --data my_package.MyData --mix.mixup_alpha 0.2
    lightning-mix fit --print_config

The CLI defaults to ``--mix.cutmix_alpha 1.0`` (pass ``--mix.cutmix_alpha 0`` with ``--mix.mixup_alpha`` for
MixUp alone) and ``--trainer.max_epochs 20``. ``--mix.num_classes`` left unset takes the datamodule's
``num_classes`` attribute when it has one. This needs the ``cli`` extra (``pip install "lightning-mix[cli]"``),
and the default data need the ``examples`` extra.
"""

from __future__ import annotations

from typing import Any

from lightning import Callback, LightningDataModule
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from typing_extensions import override

from lightning_mix.callback import MixCallback
from lightning_mix.functional._checks import expected

__all__ = ["MixCLI", "link_num_classes", "main"]

DEFAULT_MODEL = "lightning_mix.demo.SmallCNN"
DEFAULT_DATA = "lightning_mix.demo.DigitsDataModule"
MIX_DEFAULTS: dict[str, Any] = {"mix.cutmix_alpha": 1.0, "trainer.max_epochs": 20}


def link_num_classes(callback: MixCallback, datamodule: LightningDataModule | None) -> None:
    """Give ``callback`` the datamodule's ``num_classes`` when it has none of its own.

    A datamodule without the attribute (or with ``None``) changes nothing: the callback then looks for
    ``num_classes`` on the LightningModule at the first batch, or needs none for dense targets.

    Args:
        callback: the mixing callback.
        datamodule: the datamodule of the run, if any.

    Raises:
        ValueError: if both give a ``num_classes`` and they differ.

    Example:
        >>> from lightning_mix.demo import DigitsDataModule
        >>> callback = MixCallback(cutmix_alpha=1.0)
        >>> link_num_classes(callback, DigitsDataModule())
        >>> callback.num_classes
        10
    """
    found = getattr(datamodule, "num_classes", None)
    if found is None:
        return
    if callback.num_classes is None:
        callback.num_classes = int(found)
    elif callback.num_classes != found:
        hint = "Leave `mix.num_classes` unset to take the datamodule's."
        raise ValueError(
            expected("mix.num_classes", f"the datamodule's num_classes ({found})", callback.num_classes, hint)
        )


class MixCLI(LightningCLI):
    """A :class:`~lightning.pytorch.cli.LightningCLI` that always trains with a configurable :class:`MixCallback`.

    It adds the ``mix`` group (``--mix.mixup_alpha``, ``--mix.cutmix_alpha``, ``--mix.mode``, ... every
    argument of :class:`MixCallback`), links ``num_classes`` from the datamodule (see :func:`link_num_classes`),
    runs this callback before every other one (so they all see the mixed batch), and, when no model or datamodule
    class is given, accepts any by class path with :class:`~lightning_mix.demo.SmallCNN` and
    :class:`~lightning_mix.demo.DigitsDataModule` as defaults.
    Everything else is LightningCLI: ``fit``/``validate``/``test``/``predict`` subcommands, ``--config``,
    ``--print_config``, ``--trainer.*`` (more callbacks with ``--trainer.callbacks+=...``). The config saved
    next to the logs is overwritten by a new run unless ``save_config_kwargs`` says otherwise.

    Args:
        *args: positional arguments of :class:`~lightning.pytorch.cli.LightningCLI` (``model_class``,
            ``datamodule_class``, ...).
        **kwargs: keyword arguments of :class:`~lightning.pytorch.cli.LightningCLI`.

    Raises:
        ValueError: if ``--mix.num_classes`` contradicts the datamodule's ``num_classes``.

    Example:
        >>> args = ["--mix.mixup_alpha=0.2", "--mix.mode=elem", "--trainer.logger=false", "--data.image_size=8"]
        >>> cli = MixCLI(args=args, run=False)
        >>> mix = MixCallback.from_trainer(cli.trainer)
        >>> mix.mixup_alpha, mix.cutmix_alpha, mix.mode, mix.num_classes, type(cli.model).__name__
        (0.2, 1.0, 'elem', 10, 'SmallCNN')
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(*args, **kwargs)

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the ``mix`` group and the defaults of the ready-made command."""
        parser.add_lightning_class_args(MixCallback, "mix")
        defaults = dict(MIX_DEFAULTS)
        if self.model_class is None:
            defaults["model"] = {"class_path": DEFAULT_MODEL}
        if self.datamodule_class is None:
            defaults["data"] = {"class_path": DEFAULT_DATA}
        parser.set_defaults(defaults)

    @override
    def instantiate_classes(self) -> None:
        """Instantiate as LightningCLI does, link ``num_classes`` and put the mixing callback first."""
        super().instantiate_classes()
        mix: MixCallback = self._get(self.config_init, "mix")
        link_num_classes(mix, self.datamodule)
        callbacks: list[Callback] = self.trainer.callbacks  # type: ignore[attr-defined]
        callbacks.insert(0, callbacks.pop(callbacks.index(mix)))


def main(args: ArgsType = None) -> None:
    """Run the ``lightning-mix`` command (``args`` defaults to ``sys.argv[1:]``).

    Args:
        args: command-line arguments, a dict, or None for ``sys.argv``.
    """
    MixCLI(args=args)


if __name__ == "__main__":  # pragma: no cover
    main()
