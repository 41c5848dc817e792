"""Lightning callbacks that mix every training batch with CutMix and/or MixUp, for any LightningModule."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature
from lightning_utilities.core.rank_zero import WarningCache
from torch import Tensor
from typing_extensions import Self, override

from lightning_mix.batch import BatchAccess, Getter, Key, Setter, owns_memory
from lightning_mix.functional import MixParams, Workspace, default_cut_dims, mix_, mix_any_target, sample_mix_params
from lightning_mix.functional._checks import (
    check_alpha,
    check_bool,
    check_choice,
    check_int,
    check_minmax,
    check_probability,
    expected,
)
from lightning_mix.functional.params import Pairing, host_batch_params
from lightning_mix.labels import _make, _Mix, _mix_labels_
from lightning_mix.seeding import step_seed
from lightning_mix.shuffling import loader_shuffles
from lightning_mix.visual import send_images

if TYPE_CHECKING:
    import lightning.pytorch as pl

__all__ = ["CutMixCallback", "MixCallback", "MixUpCallback"]


def _check_cut_dims(cut_dims: Any) -> tuple[int, ...] | None:
    if cut_dims is None:
        return None
    if isinstance(cut_dims, str) or not isinstance(cut_dims, Sequence):
        raise TypeError(expected("cut_dims", "None or a sequence of negative ints", cut_dims))
    dims = tuple(cut_dims)
    if (
        not dims
        or any(isinstance(d, bool) or not isinstance(d, int) or d >= 0 for d in dims)
        or len(set(dims)) < len(dims)
    ):
        raise ValueError(expected("cut_dims", "distinct negative dims counted from the end, e.g. (-2, -1)", cut_dims))
    return dims


_CLASS_NAMES = ("num_classes", "num_labels")


def _nested_classes(value: Any, path: str, depth: int = 3) -> dict[str, Any]:
    """``{path: n}`` for every ``num_classes``/``num_labels`` inside nested hyperparameters (dicts, configs)."""
    found: dict[str, Any] = {}
    if depth < 0 or isinstance(value, str | bytes | int | float | bool | Tensor | torch.nn.Module) or value is None:
        return found
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:  # a config object: a dataclass, a namespace, a HuggingFace PretrainedConfig
        items = [(name, getattr(value, name, None)) for name in _CLASS_NAMES]
        items += list(vars(value).items()) if hasattr(value, "__dict__") and not isinstance(value, type) else []
    for key, item in items:
        where = f"{path}.{key}"
        if key in _CLASS_NAMES and item is not None:
            found[where] = item
        elif key not in _CLASS_NAMES and not key.startswith("_"):
            found.update(_nested_classes(item, where, depth - 1))
    return found


def _find_num_classes(trainer: pl.Trainer, pl_module: pl.LightningModule) -> int:
    hparams = getattr(pl_module, "hparams", None)
    config = getattr(pl_module, "config", None)
    model_config = getattr(getattr(pl_module, "model", None), "config", None)
    sources = {
        "pl_module.num_classes": getattr(pl_module, "num_classes", None),
        "pl_module.hparams.num_classes": hparams.get("num_classes") if isinstance(hparams, Mapping) else None,
        "pl_module.config.num_labels": getattr(config, "num_labels", None),
        "pl_module.model.config.num_labels": getattr(model_config, "num_labels", None),
    }
    if isinstance(hparams, Mapping):  # nested: {"model": {"num_classes": 10}}, a config object, ...
        nested = {k: v for k, v in _nested_classes(hparams, "pl_module.hparams").items() if k not in sources}
        values = {int(v) if isinstance(v, int) else v for v in nested.values()}
        if len(values) > 1:
            raise ValueError(expected("num_classes", "unambiguous", nested, "Pass `num_classes=` to the callback."))
        sources.update(nested)
    sources["trainer.datamodule.num_classes"] = getattr(getattr(trainer, "datamodule", None), "num_classes", None)
    for name, value in sources.items():
        if value is not None:
            check_int(name, value, 1)
            return int(value)
    raise ValueError(
        expected(
            "num_classes",
            "known for class-index targets",
            None,
            "Pass `num_classes=` to the callback, or set `num_classes` on the LightningModule (an attribute or a "
            "hyperparameter saved with `save_hyperparameters`, possibly nested), `config.num_labels` on it or its "
            "`model`, or `num_classes` on the LightningDataModule.",
        )
    )


_NOTE = (
    "lightning-mix: the targets of this training step were mixed by {name}(targets={targets!r}). {what} If this "
    "error comes from the targets: {fixes}"
)
_NOTE_LABELS = (
    "`y` is a lightning_mix.MixedLabels: a tensor of each sample's own labels (their dtype and shape) that carries "
    "the partner's labels and the weight λ. The losses that know it (F.cross_entropy, F.nll_loss, "
    "F.binary_cross_entropy(_with_logits), their modules, SoftTargetLoss, SoftTargetBCELoss and registered "
    "losses) interpolate; every other operation sees the plain labels."
)
_FIXES_LABELS = (
    'register a custom loss with `lightning_mix.register_loss`, pass `targets="soft"` for dense (B, C) float '
    'targets, or `targets="none"` to mix the inputs only and interpolate the loss yourself (`mixed_loss`).'
)
_NOTE_SOFT = "`y` holds float32 soft targets: (B, C) rows, or (B, C, *spatial) for masks, instead of class indices."
_FIXES_SOFT = (
    "use a loss that takes probability targets (F.cross_entropy, SoftTargetLoss), or the default "
    '`targets="labels"`, which keeps `y` as class indices that losses interpolate.'
)
_UNREAD = (
    "{name}: no loss read the mixed labels of a mixed training step, so the step trained on the samples' own "
    "labels only, not on the mix. Likely causes: the labels were re-created (e.g. with `torch.tensor(y)`, "
    "`F.one_hot(y)` or `y.tolist()`) before the loss, or the loss is a custom one lightning-mix does not know. "
    'Fixes: register the loss with `lightning_mix.register_loss` (a function with `reduction="none"`, or an '
    'nn.Module class), pass the labels to the loss as they are, or use `targets="soft"` (dense float targets).'
)


def _is_token_ids(x: Tensor) -> bool:
    """Integer inputs that are indices, not values: int32/int64 of shape ``(B, L)`` (token ids)."""
    return x.ndim == 2 and x.dtype in (torch.int32, torch.int64)


class MixCallback(Callback):
    """Mix every training batch with MixUp and/or CutMix, and mix its targets with the same parameters.

    Hook contract: the callback acts only in ``on_train_batch_start``, while the trainer is training, on the batch
    Lightning has already moved to the device. Lightning ignores the hook's return value and passes the same
    object to ``training_step``, so the callback edits the batch container in place: it puts the mixed input and
    the mixed target back at the input and target keys. Validation, test, predict and the sanity check are never
    touched. The input is mixed in its own memory only when nothing but the batch can see it
    (:func:`~lightning_mix.batch.owns_memory`: a fresh collated, pinned or device copy); an input the loader's
    owner still holds (``self.x``, a view or ``detach()`` of it, a cached batch, NumPy memory) is mixed in a copy
    put in the batch, so user data are never modified. A tuple batch cannot take new items: its tensors are mixed
    in place when nothing else holds them (the target object itself becomes the
    :class:`~lightning_mix.MixedLabels`), and refused otherwise.

    The target takes one of three forms (``targets``):

    - ``"labels"`` (default): a :class:`~lightning_mix.MixedLabels`, a tensor of each sample's own labels (same
      values, dtype and shape) that carries the partner's labels and λ. Losses that know it (``F.cross_entropy``,
      ``F.nll_loss``, ``F.binary_cross_entropy(_with_logits)``, their modules, ``SoftTargetLoss``,
      ``SoftTargetBCELoss``, losses given to :func:`~lightning_mix.register_loss`) return
      ``λ·L(x, y) + (1 − λ)·L(x, y_partner)``; metrics, comparisons and every other operation see the plain
      labels. Any target ``(B, ...)`` works: class indices, binary labels (float or bool ``(B,)``, ``(B, 1)``),
      multi-hot rows, masks (CutMix pastes the partner's box into a copy of a mask, MixUp mixes through the
      loss). No ``num_classes``, no ``(B, C)`` tensor, no host sync. If no such loss read the labels of a mixed
      step by ``on_train_batch_end``, the callback warns once; if ``training_step`` raises on a mixed step, the
      exception gets a note saying the targets were mixed.
    - ``"soft"``: float32 soft targets: class indices become ``(B, C)`` rows (``num_classes`` needed), masks
      ``(B, C, *spatial)`` per-pixel rows when MixUp can occur (CutMix alone pastes into a copy of the integer
      mask), dense ``(B, C)`` rows are mixed as they are.
    - ``"none"``: the target is left as it is (for a loss you interpolate yourself with :attr:`last_params`).

    Outside the epochs ``[start_epoch, stop_epoch)`` or while :attr:`enabled` is False, the input is left as it
    is. With ``targets="soft"`` every sample then counts as unmixed (λ = 1): the target still becomes a
    (label-smoothed) one-hot row, so the loss sees one target format for the whole run; with ``"labels"`` the
    target stays the plain labels. The range of class indices is checked on the first batch of every fit only
    (``"soft"``), and the first mixed input for non-finite values (which mixing would turn into NaN), since
    these checks read the values (a host-device sync on an accelerator).

    Integer inputs that are indices, not values — int32/int64 inputs of exactly two dims ``(B, L)``, the shape
    of token ids — are refused when MixUp is enabled (blended ids are meaningless): mix their embeddings inside
    the module with :mod:`lightning_mix.functional`. uint8 images, int16 audio and integer inputs of other
    shapes are mixed as values.

    Randomness comes from a generator re-seeded at every step with a hash of (``seed``, global rank, step
    count): a :class:`random.Random` on the host in ``mode="batch"`` (one λ and one box per batch, drawn as
    scalars without reading the device, so that only the pasted box is moved), a :class:`torch.Generator` on the
    batch's device in ``mode="elem"``. Ranks thus draw different streams, a run is reproducible, and a run
    resumed from any checkpoint mixes exactly as the uninterrupted run, on every rank. ``seed=None`` takes the
    global seed (what ``seed_everything`` set) at the first training batch.

    Args:
        mixup_alpha: Beta(α, α) concentration of MixUp's λ; 0 disables MixUp.
        cutmix_alpha: Beta(α, α) concentration of CutMix's λ; 0 disables CutMix unless ``cutmix_minmax`` is set.
        prob: probability of mixing, per batch (``mode="batch"``) or per sample (``mode="elem"``).
        switch_prob: probability of CutMix rather than MixUp when both are enabled.
        mode: ``"batch"``: one λ, box and method per batch; ``"elem"``: one per sample.
        correct_lam: use the λ of the CutMix box actually pasted after clipping at the borders.
        cutmix_minmax: ``(lo, hi)`` bounds of the CutMix box side ratios, drawn uniformly, instead of Beta(α, α).
        pairing: who mixes with whom. ``"random"``: a random pairing drawn every step. ``"adjacent"``: samples
            ``2k`` and ``2k + 1`` swap, which mixes each pair in one pass (about 1.5× less time on CPU) and is as
            random as the loader's order. ``"auto"``: ``"adjacent"`` when every training loader shuffles (a
            ``RandomSampler`` or a ``DistributedSampler`` with ``shuffle=True``), else ``"random"``; decided at
            train start and at the start of every epoch.
        targets: the form of the mixed target: ``"labels"``, ``"soft"`` or ``"none"`` (see above).
        label_smoothing: ε of label smoothing. ``"soft"``: folded into the targets built from class indices.
            ``"labels"``: carried by the :class:`~lightning_mix.MixedLabels` and applied by the losses that read
            them (cross-entropy towards 1/C, binary cross-entropy towards 1/2; registered losses refuse it).
            Smooth in one place only: not also in the loss.
        num_classes: number of classes for class-index targets with ``targets="soft"``; when None, read from
            the LightningModule's ``num_classes`` attribute, its ``hparams.num_classes``, a HuggingFace-style
            ``config.num_labels`` on it or on its ``model``, a ``num_classes``/``num_labels`` nested in its
            hyperparameters, or the datamodule's ``num_classes``. Dense ``(B, C)`` targets and
            ``targets="labels"`` need none.
        input_key: position, key or attribute of the input. None: position 0 of a list, or the one of
            ``"input"``, ``"inputs"``, ``"image"``, ``"images"``, ``"pixel_values"``, ``"x"`` present in a dict or
            object batch.
        target_key: position, key or attribute of the target. None: position 1 of a list, or the one of
            ``"target"``, ``"targets"``, ``"label"``, ``"labels"``, ``"y"`` present.
        mix_targets: deprecated: ``False`` is ``targets="none"``, ``True`` one of the other forms.
        getter: ``getter(batch, key) -> Tensor`` for custom batch classes (keys default to ``"input"`` and
            ``"target"``); must come with ``setter``.
        setter: ``setter(batch, key, value)`` that replaces an item of a custom batch in place.
        cut_dims: negative dimensions CutMix cuts along; None: ``(-1,)`` for ``(B, C, L)`` signals, ``(-2, -1)``
            for images and video.
        ignore_index: label of segmentation-mask pixels that carry no target (e.g. 255); copied like any label by
            CutMix, and given no weight in per-pixel soft targets (``targets="soft"``; with ``"labels"`` the loss's
            own ``ignore_index`` applies, per partner).
        mask_mixup: what MixUp (or label smoothing) does to an integer mask target ``(B, *spatial)`` with
            ``targets="soft"``: ``"soft"`` replaces it by per-pixel soft targets ``(B, C, *spatial)``; ``"error"``
            refuses, so masks stay integer (CutMix alone always keeps them integer).
        start_epoch: first epoch that is mixed.
        stop_epoch: first epoch that is no longer mixed; negative counts from ``max_epochs`` (``-10``: the last
            10 epochs are not mixed); None: mix until the end.
        seed: base seed of the mixing stream; None uses the global seed.
        log_stats: log ``mix/lam`` (mean λ), ``mix/cutmix_fraction`` and ``mix/mixup_fraction`` (fractions of
            samples mixed by each method) through ``pl_module.log``, per step and per epoch, when the trainer has
            a logger.
        log_images_every_n_epochs: every N epochs, send a grid of the first mixed images of the epoch to the
            loggers that accept images (TensorBoard); 0 turns it off.

    Attributes:
        enabled: set to False to stop mixing at any time (saved in checkpoints).
        last_params: the :class:`~lightning_mix.MixParams` of the last training batch: per-sample ``lam``,
            ``partner``, ``cutmix`` and ``mixed``; all unmixed outside the schedule.
        last_target: the last batch's target as it was before mixing (a plain tensor), or None with
            ``targets="none"``.

    Raises:
        ValueError: if an argument has a wrong value.
        TypeError: if an argument has a wrong type.

    Example:
        >>> import torch
        >>> from lightning import LightningModule, Trainer
        >>> callback = MixCallback(mixup_alpha=0.8, cutmix_alpha=1.0, seed=0)
        >>> trainer = Trainer(callbacks=[callback], logger=False, enable_progress_bar=False)
        >>> trainer.training = True  # inside trainer.fit(), Lightning sets this and calls the hook
        >>> batch = [torch.rand(8, 3, 32, 32), torch.arange(8)]
        >>> callback.on_train_batch_start(trainer, LightningModule(), batch, 0)
        >>> type(batch[1]).__name__, batch[1].tolist() == list(range(8))
        ('MixedLabels', True)
        >>> bool(torch.equal(batch[1].partner_labels, callback.last_params.partner))
        True
        >>> soft = MixCallback(mixup_alpha=0.8, targets="soft", num_classes=10, seed=0)
        >>> batch = [torch.rand(8, 3, 32, 32), torch.arange(8)]
        >>> soft.on_train_batch_start(trainer, LightningModule(), batch, 0)
        >>> batch[1].shape, bool(torch.allclose(batch[1].sum(1), torch.ones(8)))
        (torch.Size([8, 10]), True)
    """

    def __init__(
        self,
        *,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: Literal["batch", "elem"] = "batch",
        correct_lam: bool = True,
        cutmix_minmax: tuple[float, float] | None = None,
        pairing: Literal["auto", "random", "adjacent"] = "auto",
        targets: Literal["labels", "soft", "none"] = "labels",
        label_smoothing: float = 0.0,
        num_classes: int | None = None,
        input_key: int | str | None = None,
        target_key: int | str | None = None,
        mix_targets: bool | None = None,
        getter: Getter | None = None,
        setter: Setter | None = None,
        cut_dims: tuple[int, ...] | None = None,
        ignore_index: int | None = None,
        mask_mixup: Literal["soft", "error"] = "soft",
        start_epoch: int = 0,
        stop_epoch: int | None = None,
        seed: int | None = None,
        log_stats: bool = True,
        log_images_every_n_epochs: int = 0,
    ) -> None:
        super().__init__()
        self.mixup_alpha = check_alpha("mixup_alpha", mixup_alpha)
        self.cutmix_alpha = check_alpha("cutmix_alpha", cutmix_alpha)
        self.prob = check_probability("prob", prob)
        self.switch_prob = check_probability("switch_prob", switch_prob)
        self.mode: Literal["batch", "elem"] = check_choice("mode", mode, ("batch", "elem"))
        self.correct_lam = check_bool("correct_lam", correct_lam)
        self.cutmix_minmax = check_minmax("cutmix_minmax", cutmix_minmax)
        self.pairing: Literal["auto", "random", "adjacent"] = check_choice(
            "pairing", pairing, ("auto", "random", "adjacent")
        )
        if not (self.mixup_alpha > 0 or self.has_cutmix):
            raise ValueError(
                expected("mixup_alpha or cutmix_alpha", "> 0", (mixup_alpha, cutmix_alpha), "Enable one method.")
            )
        self.targets: Literal["labels", "soft", "none"] = _check_targets(targets, mix_targets)
        self.label_smoothing = check_probability("label_smoothing", label_smoothing)
        check_int("num_classes", num_classes, 1, optional=True)
        self.num_classes = None if num_classes is None else int(num_classes)
        if self.targets == "none" and self.label_smoothing > 0:
            raise ValueError(expected("label_smoothing", '0 with targets="none"', label_smoothing))
        self.access = BatchAccess(input_key, target_key, getter, setter)
        self.cut_dims = _check_cut_dims(cut_dims)
        check_int("ignore_index", ignore_index, optional=True)
        self.ignore_index = ignore_index
        self.mask_mixup = check_choice("mask_mixup", mask_mixup, ("soft", "error"))
        check_int("start_epoch", start_epoch, 0)
        check_int("stop_epoch", stop_epoch, optional=True)
        if stop_epoch is not None and 0 <= stop_epoch <= start_epoch:
            requirement = f"None, > start_epoch ({start_epoch}), or < 0 to count from `max_epochs`"
            raise ValueError(expected("stop_epoch", requirement, stop_epoch))
        self.start_epoch, self.stop_epoch = start_epoch, stop_epoch
        check_int("seed", seed, optional=True)
        self.seed = seed
        self.log_stats = check_bool("log_stats", log_stats)
        check_int("log_images_every_n_epochs", log_images_every_n_epochs, 0)
        self.log_images_every_n_epochs = log_images_every_n_epochs

        self.enabled = True
        self.last_params: MixParams | None = None
        self.last_target: Tensor | None = None
        self._seed: int | None = None  # the base seed in use, resolved at the first sampled batch
        self._step = 0  # training batches seen, checkpointed: the step index of the seed
        self._generator: torch.Generator | None = None
        self._host_generator = random.Random()
        self._checked_config: tuple[Any, ...] | None = None  # the sampling arguments last checked
        self._workspace = Workspace()
        self._found_classes: int | None = None
        self._adjacent = pairing == "adjacent"  # the pairing in use; "auto" resolves it from the loaders
        self._validated = False  # the class-index range of the first batch of a fit was checked
        self._checked_input = False  # the first mixed input of a fit was checked for non-finite values
        self._image_epoch = -1
        self._warnings = WarningCache()
        self._reads: _Mix | None = None  # the read flag of this step's mixed labels, until the batch ends
        self._mixed_step = False  # the step in progress trains on mixed targets

    @property
    def mix_targets(self) -> bool:
        """Whether the target is mixed: ``targets != "none"`` (the older name of the option)."""
        return self.targets != "none"

    @property
    def has_cutmix(self) -> bool:
        """Whether CutMix is enabled (``cutmix_alpha > 0`` or ``cutmix_minmax`` set).

        Example:
            >>> MixCallback(mixup_alpha=1.0).has_cutmix, CutMixCallback().has_cutmix
            (False, True)
        """
        return self.cutmix_alpha > 0 or self.cutmix_minmax is not None

    @property
    @override
    def state_key(self) -> str:
        keys = self.access.input_key, self.access.target_key
        return self._generate_state_key(keys=keys, start_epoch=self.start_epoch, stop_epoch=self.stop_epoch)

    @classmethod
    def from_trainer(cls, trainer: pl.Trainer) -> Self:
        """Return the one instance of this class among ``trainer.callbacks``, e.g. inside ``training_step``.

        Raises:
            RuntimeError: if there is none or more than one.

        Example:
            >>> from lightning import Trainer
            >>> callback = CutMixCallback()
            >>> MixCallback.from_trainer(Trainer(callbacks=[callback], logger=False)) is callback
            True
        """
        found = [cb for cb in trainer.callbacks if isinstance(cb, cls)]  # type: ignore[attr-defined]
        if len(found) != 1:
            hint = "Pick one from `trainer.callbacks` yourself." if found else "Add it to `Trainer(callbacks=...)`."
            raise RuntimeError(expected(f"the number of {cls.__name__}s in trainer.callbacks", "1", len(found), hint))
        return found[0]

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if is_param_in_hook_signature(pl_module.training_step, "dataloader_iter", explicit=True):
            raise RuntimeError(
                expected(
                    "training_step",
                    "a method that receives the batch",
                    "a `dataloader_iter` step",
                    "A callback cannot reach batches fetched inside `training_step`; mix them there with "
                    "`lightning_mix.functional`.",
                )
            )
        start, stop = self._epochs(trainer)
        if stop is not None and stop <= start:
            rank_zero_warn(
                f"{type(self).__name__} will not mix: its epochs [{start}, {stop}) are empty with max_epochs="
                f"{trainer.max_epochs}.",
                category=UserWarning,
            )
        # A new fit starts the stream afresh (a checkpoint, restored after `setup`, brings the saved one back),
        # so reusing an instance across runs does not carry one run's seed or step count into the next.
        self._seed, self._step, self.last_params, self.last_target = None, 0, None, None
        self._found_classes, self._validated, self._checked_input, self._image_epoch = None, False, False, -1

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._resolve_pairing(trainer)  # a run resumed mid-epoch gets no `on_train_epoch_start` for that epoch

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._resolve_pairing(trainer)  # loaders may be reloaded every epoch

    def _resolve_pairing(self, trainer: pl.Trainer) -> None:
        if self.pairing == "auto":
            self._adjacent = loader_shuffles(trainer.train_dataloader)

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._reads, self._mixed_step = None, False
        if not trainer.training:
            return
        input_key, target_key = self.access.locate(batch, with_target=self.mix_targets)
        x = self.access.get(batch, input_key)
        target = None if target_key is None else self.access.get(batch, target_key)
        if self.mixup_alpha > 0 and _is_token_ids(x):
            raise ValueError(
                expected(
                    "the input",
                    "values MixUp can blend, not indices (int32/int64 inputs of shape (B, L) are taken as token ids)",
                    f"{x.dtype} of shape {tuple(x.shape)}",
                    "Blended token ids are meaningless: mix the embeddings inside your module instead, with "
                    '`lightning_mix.functional` (`sample_mix_params`, `mix_`) and `targets="none"`, or use CutMix.',
                )
            )
        frozen = self.access.frozen(batch)
        if frozen:
            # References to each tensor: the tuple's and this hook's variable. Counted here, not in a callee: how
            # many references a call adds differs between Python versions.
            shared = not owns_memory(x, references=2) or (target is not None and not owns_memory(target, references=2))
            self._check_frozen(type(batch).__name__, shared, target is not None)
        step, self._step = self._step, self._step + 1
        if self._seed is None:
            self._seed = self.seed if self.seed is not None else torch.initial_seed()
        cut_dims = self._cut_dims(x)
        cut_sizes = tuple([x.shape[d] for d in cut_dims]) if self.has_cutmix else ()
        if x.shape[0] == 0:  # nothing to mix: the batch passes through untouched, and still counts as a step
            self.last_params, self.last_target = self._unmixed(x, cut_sizes), target
            return
        mixing = self.enabled and self._in_epochs(trainer)
        if mixing:
            params = self._sample(x, cut_sizes, self._seed, trainer.global_rank, step)
            # References to `x`: the batch container's and this variable; any other holder gets a mixed copy.
            if not owns_memory(x, references=2):
                x = x.clone()
            # Checking that the input is finite reads it (a host sync on an accelerator): first mixed batch only.
            mix_(x, params, cut_dims=cut_dims, workspace=self._workspace, validate_args=not self._checked_input)
            self._checked_input = True
            if not frozen:
                self.access.set(batch, input_key, x)
            if self.log_images_every_n_epochs:
                self._log_images(trainer, x)
        else:
            params = self._unmixed(x, cut_sizes)
        if target is not None and target_key is not None:
            if self.targets == "soft":
                self._set_soft_target(batch, target_key, target, params, trainer, pl_module, tuple(x.shape), cut_dims)
            elif mixing:
                target = self._set_labels(batch, target_key, target, params, tuple(x.shape), cut_dims, frozen)
            self._mixed_step = mixing
        self.last_params, self.last_target = params, target
        if self.log_stats and trainer.loggers:
            stats = {
                "lam": params.lam.mean(),
                "cutmix_fraction": (params.mixed & params.cutmix).float().mean(),
                "mixup_fraction": (params.mixed & ~params.cutmix).float().mean(),
            }
            for name, value in stats.items():
                pl_module.log(f"mix/{name}", value, on_step=True, on_epoch=True, batch_size=params.batch_size)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        reads, self._reads, self._mixed_step = self._reads, None, False
        if reads is not None and not reads.read:  # a flag on the host: reading it is no sync
            self._warnings.warn(_UNREAD.format(name=type(self).__name__), category=UserWarning)

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not self._mixed_step:
            return
        self._mixed_step = False
        labels = self.targets == "labels"
        note = _NOTE.format(
            name=type(self).__name__,
            targets=self.targets,
            what=_NOTE_LABELS if labels else _NOTE_SOFT,
            fixes=_FIXES_LABELS if labels else _FIXES_SOFT,
        )
        _add_note(exception, note)

    def _check_frozen(self, kind: str, shared: bool, has_target: bool) -> None:
        """A tuple batch is mixed in place: only when its tensors belong to the step, and not into soft targets."""
        if self.targets == "soft" and has_target:
            problem = 'targets="soft", which replaces the target by a new tensor'
        elif shared:
            problem = "tensors that share memory with other tensors (user data), which must not be changed"
        else:
            return
        raise TypeError(
            expected(
                "batch",
                "a mutable container (list, dict, dataclass or other object), or a tuple of tensors that belong to "
                "the step",
                f"a {kind} with {problem}",
                "Lightning passes the same batch object to `training_step` and ignores what callbacks return. Make "
                "your collate function (or your `on_after_batch_transfer`, which may rebuild the batch) return a "
                "list or a dict, or pass `getter` and `setter`.",
            )
        )

    def _set_labels(
        self,
        batch: Any,
        key: Key,
        target: Tensor,
        params: MixParams,
        input_shape: tuple[int, ...],
        cut_dims: tuple[int, ...],
        frozen: bool,
    ) -> Tensor:
        """Put the :class:`MixedLabels` of ``target`` in the batch; return the plain target before mixing."""
        if target.ndim == 0 or target.shape[0] != params.batch_size:
            shape = tuple(target.shape)
            raise ValueError(expected("target.shape[0]", f"the batch size {params.batch_size}", shape))
        device = target.device
        lam, partner = params.lam, params.partner
        if lam.device != device:  # (a target on another device than the input)
            lam, partner = lam.to(device, non_blocking=True), partner.to(device, non_blocking=True)
        before = target if type(target) is Tensor else target.as_subclass(Tensor)
        own = before
        uniform = params.draw.lam if params.draw is not None else None  # a per-batch draw: λ on the host
        spatial = tuple(input_shape[2:])
        aligned = bool(spatial) and (
            tuple(target.shape[1:]) == spatial
            or (target.ndim == len(input_shape) and tuple(target.shape[2:]) == spatial)
        )
        if aligned and params.has_cutmix:  # CutMix pastes the partner's box into (a copy of) the mask
            draw = params.draw and dataclasses.replace(params.draw, mixed=params.draw.mixed and params.draw.cutmix)
            pasted = dataclasses.replace(params, has_mixup=False, mixed=params.mixed & params.cutmix, draw=draw)
            own = mix_(before.clone(), pasted, cut_dims=cut_dims)
            if params.has_mixup:  # the pasted samples are their own labels now; MixUp ones mix through the loss
                lam = torch.where(params.cutmix.to(device, non_blocking=True), 1.0, lam)
            else:
                lam = torch.ones_like(lam)
            if params.draw is not None and params.draw.cutmix:
                uniform = 1.0
        if target.ndim > 1:
            lam = lam.view(-1, *([1] * (target.ndim - 1))).expand(target.shape)
        partner_labels = before.index_select(0, partner)
        # partners swap when the batch size is even: the partner labels are then a permutation of the own ones
        mix = _Mix(self.label_smoothing, uniform, own is before and params.batch_size % 2 == 0)  # (balanced)
        if frozen:  # a tuple: the target object itself becomes the mixed labels
            before = target.detach()  # a plain alias of the values before mixing
            if own is not target:
                target.set_(own)  # type: ignore[call-overload]
            labels = _mix_labels_(target, partner_labels, lam, mix)
        else:
            labels = _make(own, partner_labels, lam, mix)
            self.access.set(batch, key, labels)
        self._reads = labels._mix
        return before

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"seed": self._seed, "step": self._step, "enabled": self.enabled}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._seed = state_dict.get("seed")
        self._step = int(state_dict.get("step", 0))
        self.enabled = bool(state_dict.get("enabled", True))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()  # a generator cannot be pickled (ddp_spawn, deepcopy): it is made again
        state.update(_generator=None, _workspace=Workspace(), last_params=None, last_target=None, _reads=None)
        return state

    def _epochs(self, trainer: pl.Trainer) -> tuple[int, int | None]:
        stop = self.stop_epoch
        if stop is not None and stop < 0:
            max_epochs = trainer.max_epochs
            if max_epochs is None or max_epochs < 0:
                hint = "Set `max_epochs`, or give `stop_epoch` as an epoch number."
                raise RuntimeError(expected("Trainer(max_epochs=...)", "set when `stop_epoch` < 0", max_epochs, hint))
            stop += max_epochs
        return self.start_epoch, stop

    def _in_epochs(self, trainer: pl.Trainer) -> bool:
        if self.start_epoch == 0 and self.stop_epoch is None:  # every epoch (the default)
            return True
        start, stop = self._epochs(trainer)
        return start <= trainer.current_epoch and (stop is None or trainer.current_epoch < stop)

    def _cut_dims(self, x: Tensor) -> tuple[int, ...]:
        if self.cut_dims is not None:
            return self.cut_dims
        if x.ndim < 3 and not self.has_cutmix:
            return (-1,)  # MixUp of (B, F) features cuts nothing
        return default_cut_dims(x.ndim)

    def _sample(self, x: Tensor, cut_sizes: tuple[int, ...], seed: int, rank: int, step: int) -> MixParams:
        generator: torch.Generator | random.Random
        config = (
            self.mixup_alpha,
            self.cutmix_alpha,
            self.prob,
            self.switch_prob,
            self.correct_lam,
            self.cutmix_minmax,
        )
        if self.mode == "batch":  # a few scalars, drawn on the host: the kernels then move only the box
            generator = self._host_generator
            generator.seed(step_seed(seed, rank, step))
            if config == self._checked_config and (not self.has_cutmix or min(cut_sizes, default=0) > 0):
                pairing: Pairing = "adjacent" if self._adjacent else "random"  # (checked: skip the checks)
                return host_batch_params(x.shape[0], cut_sizes, *config, pairing, generator, x.device)
        else:  # per-sample draws are device tensors
            if self._generator is None or self._generator.device != x.device:
                self._generator = torch.Generator(device=x.device)
            generator = self._generator.manual_seed(step_seed(seed, rank, step))
        params = sample_mix_params(
            x.shape[0],
            cut_sizes,
            mixup_alpha=self.mixup_alpha,
            cutmix_alpha=self.cutmix_alpha,
            prob=self.prob,
            switch_prob=self.switch_prob,
            mode=self.mode,
            correct_lam=self.correct_lam,
            cutmix_minmax=self.cutmix_minmax,
            pairing="adjacent" if self._adjacent else "random",
            generator=generator,
            device=x.device,
        )
        self._checked_config = config  # (attributes may be changed between steps: checked again when they are)
        return params

    def _unmixed(self, x: Tensor, cut_sizes: tuple[int, ...]) -> MixParams:
        return MixParams.identity(
            x.shape[0], cut_sizes, has_mixup=self.mixup_alpha > 0, has_cutmix=self.has_cutmix, device=x.device
        )

    def _set_soft_target(
        self,
        batch: Any,
        key: Key,
        target: Tensor,
        params: MixParams,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        input_shape: tuple[int, ...],
        cut_dims: tuple[int, ...],
    ) -> None:
        num_classes = self.num_classes
        integer = not (target.dtype.is_floating_point or target.dtype == torch.bool)
        keeps_mask = not params.has_mixup and self.label_smoothing == 0  # CutMix pastes integer masks as they are
        if num_classes is None and integer and (target.ndim == 1 or not keeps_mask):
            if self._found_classes is None:
                self._found_classes = _find_num_classes(trainer, pl_module)
            num_classes = self._found_classes
        # Checking the label range reads the values (a host sync on an accelerator): first batch of a fit only.
        soft = mix_any_target(
            target,
            params,
            input_shape=input_shape,
            cut_dims=cut_dims,
            num_classes=num_classes,
            label_smoothing=self.label_smoothing,
            ignore_index=self.ignore_index,
            mask_mixup=self.mask_mixup,
            copy=True,  # a CutMix mask is pasted into a copy: the loader may hold it, and `last_target` does
            validate_args=not self._validated,
        )
        self._validated = True
        self.access.set(batch, key, soft)

    def _log_images(self, trainer: pl.Trainer, x: Tensor) -> None:
        epoch = trainer.current_epoch
        if epoch % self.log_images_every_n_epochs or epoch == self._image_epoch or not trainer.is_global_zero:
            return
        self._image_epoch = epoch
        if not send_images(trainer.loggers, "mix/images", x, trainer.global_step):
            hint = "it is not an image batch, or no logger takes images (TensorBoardLogger does)"
            self._warnings.warn(f"{type(self).__name__} logs no images of an input of shape {tuple(x.shape)}: {hint}.")


class CutMixCallback(MixCallback):
    """:class:`MixCallback` with CutMix only: ``CutMixCallback(alpha)`` is ``MixCallback(cutmix_alpha=alpha)``.

    Args:
        alpha: Beta(α, α) concentration of λ, > 0 (may be 0 when ``cutmix_minmax`` is given).
        **kwargs: any other argument of :class:`MixCallback` but ``mixup_alpha`` and ``cutmix_alpha``.

    Raises:
        ValueError: if ``alpha`` is not > 0 or another argument has a wrong value.
        TypeError: if MixUp is asked for, or an argument has a wrong type.

    Example:
        >>> callback = CutMixCallback(alpha=1.0, num_classes=10)
        >>> callback.cutmix_alpha, callback.mixup_alpha
        (1.0, 0.0)
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        _check_preset("CutMixCallback", alpha, kwargs, ("mixup_alpha", "cutmix_alpha"), minmax_ok=True)
        super().__init__(mixup_alpha=0.0, cutmix_alpha=alpha, **kwargs)


class MixUpCallback(MixCallback):
    """:class:`MixCallback` with MixUp only: ``MixUpCallback(alpha)`` is ``MixCallback(mixup_alpha=alpha)``.

    Args:
        alpha: Beta(α, α) concentration of λ, > 0.
        **kwargs: any other argument of :class:`MixCallback` but ``mixup_alpha``, ``cutmix_alpha`` and
            ``cutmix_minmax``.

    Raises:
        ValueError: if ``alpha`` is not > 0 or another argument has a wrong value.
        TypeError: if CutMix is asked for, or an argument has a wrong type.

    Example:
        >>> callback = MixUpCallback(alpha=0.2, num_classes=10)
        >>> callback.mixup_alpha, callback.has_cutmix
        (0.2, False)
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        _check_preset("MixUpCallback", alpha, kwargs, ("mixup_alpha", "cutmix_alpha", "cutmix_minmax"))
        super().__init__(mixup_alpha=alpha, cutmix_alpha=0.0, cutmix_minmax=None, **kwargs)


def _check_targets(targets: Any, mix_targets: bool | None) -> Literal["labels", "soft", "none"]:
    choice: Literal["labels", "soft", "none"] = check_choice("targets", targets, ("labels", "soft", "none"))
    if mix_targets is None:
        return choice
    check_bool("mix_targets", mix_targets)
    warnings.warn(
        '`mix_targets` is deprecated: `mix_targets=False` is `targets="none"`; `True` is the default '
        '`targets="labels"` or `targets="soft"`.',
        DeprecationWarning,
        stacklevel=3,
    )
    # `targets` at its default ("labels") is taken as not given: `mix_targets=False` alone means "none"
    if (mix_targets and choice == "none") or (not mix_targets and choice == "soft"):
        hint = '`mix_targets=False` is `targets="none"`; pass `targets` alone.'
        raise ValueError(expected("mix_targets", f'consistent with targets="{choice}"', mix_targets, hint))
    return choice if mix_targets else "none"


def _check_preset(
    name: str, alpha: float, kwargs: dict[str, Any], banned: Sequence[str], minmax_ok: bool = False
) -> None:
    extra = sorted(set(kwargs) & set(banned))
    if extra:
        hint = "Use MixCallback to combine CutMix and MixUp."
        raise TypeError(expected(f"the arguments of {name}", f"free of {', '.join(banned)}", extra, hint))
    if check_alpha("alpha", alpha) == 0 and not (minmax_ok and kwargs.get("cutmix_minmax") is not None):
        raise ValueError(expected("alpha", "a float > 0", alpha))


def _add_note(exception: BaseException, note: str) -> None:
    """``exception.add_note(note)``; on Python 3.10, which lacks it, the same ``__notes__`` and a warning to show it."""
    if sys.version_info >= (3, 11):
        exception.add_note(note)
        return
    with contextlib.suppress(AttributeError, TypeError):  # pragma: no cover - Python 3.10; never mask the error
        exception.__notes__ = [*(getattr(exception, "__notes__", None) or []), note]  # type: ignore[attr-defined]
    warnings.warn(note, UserWarning, stacklevel=3)  # pragma: no cover - the 3.10 traceback does not print notes
