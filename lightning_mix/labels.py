"""Mixed labels: a tensor of each sample's own labels that carries its partner's labels and the weight λ.

:class:`MixedLabels` is what a training step sees as its target with ``MixCallback(targets="labels")``. Its values,
dtype and shape are the sample's own labels, so metrics, comparisons, indexing, logging and dtype checks work as
on the plain labels, and the result of any operation on it is a plain tensor. Two kinds of operation are special:

- **Losses that know the mix** (``F.cross_entropy``, ``F.nll_loss``, ``F.binary_cross_entropy(_with_logits)``, their
  modules, :func:`~lightning_mix.functional.soft_target_cross_entropy`,
  :func:`~lightning_mix.functional.soft_target_binary_cross_entropy` and losses given to :func:`register_loss`)
  return ``λ·L(x, y) + (1 − λ)·L(x, y_partner)`` per element, reduced as the loss reduces (see
  :class:`MixedLabels` for the exact rule of ``"mean"``).
- **Reshapes, casts and copies** (``view``, ``reshape``, ``flatten``, ``squeeze``, ``unsqueeze``, ``float()``,
  ``long()``, ``to(...)``, ``type_as``, ``contiguous``, ``clone``, ``detach`` and a few more) return a
  :class:`MixedLabels` whose own labels, partner labels and weights are transformed alike, so ``labels.view(-1)``
  inside a model, or ``y.float()`` before a binary cross-entropy, still reaches the loss mixed.

Pure torch, like :mod:`lightning_mix.functional`: nothing here imports Lightning.

Example:
    >>> import torch
    >>> import torch.nn.functional as F
    >>> y = MixedLabels(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([0.75, 1.0]))
    >>> y.shape, y.dtype, bool((y == torch.tensor([0, 1])).all())
    (torch.Size([2]), torch.int64, True)
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> ce = F.cross_entropy(logits, torch.tensor([0, 1]), reduction="none")
    >>> ce_partner = F.cross_entropy(logits, torch.tensor([1, 0]), reduction="none")
    >>> expected = (0.75 * ce[0] + 0.25 * ce_partner[0] + ce[1]) / 2
    >>> bool(torch.isclose(F.cross_entropy(logits, y), expected))
    True
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn import _reduction

from lightning_mix.functional._checks import check_probability, expected
from lightning_mix.functional.accuracy import _mixed_label_accuracy, mixed_accuracy
from lightning_mix.functional.loss import _TINY, soft_target_binary_cross_entropy, soft_target_cross_entropy

__all__ = ["MixedLabels", "register_loss"]

_Disabled = torch._C.DisableTorchFunctionSubclass
Mass = Callable[..., Tensor | None]
_F = TypeVar("_F", bound=Callable[..., Any])


class _Mix:
    """What every tensor derived from one set of mixed labels shares: ε, and whether a loss read the mix.

    ``uniform``: λ itself when every element has the same one, a host value (a per-batch draw), which the losses
    then use as a scalar. ``balanced``: the partner labels are a permutation of the own labels (partners swap),
    so that whatever a loss sums over the labels alone (its mass) is the same for both sides.
    """

    __slots__ = ("balanced", "label_smoothing", "read", "uniform")

    def __init__(self, label_smoothing: float = 0.0, uniform: float | None = None, balanced: bool = False) -> None:
        self.label_smoothing = label_smoothing
        self.read = False
        self.uniform = uniform
        self.balanced = balanced


class MixedLabels(Tensor):
    """A tensor of each sample's own labels that also carries its partner's labels and the weight λ.

    Values, dtype, shape and device are those of the own labels, and every operation returns a plain tensor,
    except the losses and the reshapes, casts and copies listed in :mod:`lightning_mix.labels`. A loss that knows
    the mix computes its unreduced loss twice, against the own labels ``a`` and the partner labels ``b``, and
    returns ``λ·L(x, a) + (1 − λ)·L(x, b)`` per element, then reduces:

    - ``"none"``: the interpolated losses; ``"sum"``: their sum;
    - ``"mean"``: their sum divided by the interpolated *mass* ``Σ_i [λ_i·m(a_i) + (1 − λ_i)·m(b_i)]``, where
      ``m`` is what the loss itself divides by for one element. For ``F.cross_entropy`` / ``F.nll_loss`` with
      class indices ``m(y) = weight[y]`` (1 without ``weight``) and 0 where ``y == ignore_index``, so an ignored
      partner pixel gives its share to nobody and a weighted loss keeps torch's weighted mean; for
      :func:`~lightning_mix.functional.soft_target_cross_entropy` the same, but a mass of 0 gives a loss of 0
      (as that function does) instead of torch's NaN. For every other loss (probability targets, binary
      cross-entropy, registered losses) ``m = 1``: the mean over elements.

    With ``a == b`` (an unmixed sample) every rule gives exactly the loss of the plain labels.

    Args:
        labels: the samples' own labels, any dtype and shape ``(B, ...)``.
        partner_labels: the partners' labels, same shape and dtype as ``labels``.
        lam: the weight of the own labels, a floating tensor broadcastable to ``labels.shape`` (e.g. ``(B,)``
            per sample for ``(B,)`` labels, ``(B, 1, 1)`` for ``(B, H, W)`` masks); kept as float32.
        label_smoothing: ε applied by the losses that know the mix, on top of their own: cross-entropy (and
            ``F.nll_loss``, as cross-entropy of log-probabilities) smooths towards ``1/C``, binary cross-entropy
            towards ``1/2`` (``t' = (1 − ε)·t + ε/2``); a loss smoothing by ε' as well smooths by
            ``1 − (1 − ε)(1 − ε')`` in all. Registered losses refuse ε > 0.

    Attributes:
        partner_labels: a plain tensor of the partners' labels.
        lam: float32 weights of the own labels, expanded to the labels' shape.

    Raises:
        TypeError: if an argument is not a tensor, or ``lam`` is not floating.
        ValueError: if the shapes, dtypes or devices do not match.

    Example:
        >>> y = MixedLabels(torch.tensor([3, 5]), torch.tensor([5, 3]), torch.tensor([0.25, 0.75]))
        >>> y.view(2, 1).float().lam.shape, type(y.view(2, 1).float()).__name__
        (torch.Size([2, 1]), 'MixedLabels')
        >>> type(y + 1).__name__, (y + 1).tolist()
        ('Tensor', [4, 6])
        >>> y.labels, y.partner_labels
        (tensor([3, 5]), tensor([5, 3]))
    """

    partner_labels: Tensor
    lam: Tensor
    _mix: _Mix

    def __new__(  # noqa: D102
        cls, labels: Tensor, partner_labels: Tensor, lam: Tensor, label_smoothing: float = 0.0
    ) -> MixedLabels:
        label_smoothing = check_probability("label_smoothing", label_smoothing)
        for name, value in (("labels", labels), ("partner_labels", partner_labels), ("lam", lam)):
            if not isinstance(value, Tensor):
                raise TypeError(expected(name, "a torch.Tensor", type(value).__name__))
        labels, partner_labels, lam = (_plain(t) for t in (labels, partner_labels, lam))
        if partner_labels.shape != labels.shape or partner_labels.dtype != labels.dtype:
            got = f"{partner_labels.dtype} of shape {tuple(partner_labels.shape)}"
            raise ValueError(expected("partner_labels", f"{labels.dtype} of shape {tuple(labels.shape)}", got))
        if not lam.dtype.is_floating_point:
            raise TypeError(expected("lam", "a floating tensor", lam.dtype))
        if partner_labels.device != labels.device or lam.device != labels.device:
            devices = (labels.device, partner_labels.device, lam.device)
            raise ValueError(expected("labels, partner_labels and lam", "on one device", devices))
        try:
            full = lam.to(torch.float32).expand(labels.shape)
        except RuntimeError:
            requirement = f"broadcastable to the labels' shape {tuple(labels.shape)}"
            raise ValueError(expected("lam.shape", requirement, tuple(lam.shape))) from None
        return _make(labels, partner_labels, full, _Mix(label_smoothing))

    @property
    def labels(self) -> Tensor:
        """The own labels as a plain tensor (sharing memory)."""
        return _plain(self)

    @property
    def label_smoothing(self) -> float:
        """The ε the losses that know the mix smooth with (the callback's ``label_smoothing``), 0 by default."""
        return self._mix.label_smoothing

    @property
    def read(self) -> bool:
        """Whether a loss that knows the mix has read these labels (or one derived from the same mix)."""
        return self._mix.read

    @classmethod
    def __torch_function__(
        cls, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        loss = _LOSSES.get(func)
        if loss is not None:
            return loss(func, args, kwargs)
        keep = _KEEPERS.get(func)
        if keep is not None and args and isinstance(args[0], MixedLabels):
            return keep(func, args, kwargs)
        with _Disabled():
            return func(*args, **kwargs)

    def __repr__(self, *, tensor_contents: Any = None) -> str:  # type: ignore[override]
        with _Disabled():
            own, partner, lam = _plain(self), self.partner_labels, self.lam
            return f"MixedLabels({own!r}, partner_labels={partner!r}, lam={lam!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> MixedLabels:
        with _Disabled():
            copied = _make(
                _plain(self).clone(),
                self.partner_labels.clone(),
                self.lam.clone(),
                _Mix(self.label_smoothing, self._mix.uniform, self._mix.balanced),
            )
        memo[id(self)] = copied
        return copied

    def __reduce_ex__(self, protocol: Any) -> tuple[Callable[..., MixedLabels], tuple[Tensor, Tensor, Tensor, float]]:
        return MixedLabels, (_plain(self).clone(), self.partner_labels, self.lam.contiguous(), self.label_smoothing)


def _plain(t: Tensor) -> Tensor:
    """``t`` as a plain :class:`torch.Tensor` sharing its memory (``t`` itself when it is one)."""
    if type(t) is Tensor:
        return t
    with _Disabled():
        return t.as_subclass(Tensor)


def _make(own: Tensor, partner: Tensor, lam: Tensor, mix: _Mix) -> MixedLabels:
    """A new :class:`MixedLabels` over the memory of ``own``, without checks (``lam`` of the labels' shape)."""
    out = _plain(own).as_subclass(MixedLabels)
    _attach(out, partner, lam, mix)
    return out


def _attach(t: Tensor, partner: Tensor, lam: Tensor, mix: _Mix) -> None:
    t.partner_labels, t.lam, t._mix = partner, lam, mix  # type: ignore[attr-defined]


def _mix_labels_(target: Tensor, partner_labels: Tensor, lam: Tensor, mix: _Mix) -> MixedLabels:
    """Turn the tensor object ``target`` itself into mixed labels, in place; its values are left as they are.

    For containers that cannot take a new item (a tuple batch): the object the container holds becomes a
    :class:`MixedLabels` (its class is switched; a tensor subclass with no extra memory layout allows it).
    ``lam`` must already have the labels' shape (an expanded view is fine).
    """
    if type(target) is not Tensor:
        raise TypeError(expected("target", "a plain torch.Tensor", type(target).__name__))
    target.__class__ = MixedLabels
    _attach(target, partner_labels, lam.to(torch.float32), mix)
    return target  # type: ignore[return-value]


# --------------------------------------------------------------------------------------- ops that keep the mix


def _keep_reshaped(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    self: MixedLabels = args[0]
    with _Disabled():
        own = func(*args, **kwargs)
        if own is self or not isinstance(own, Tensor) or own.dtype != self.dtype:  # e.g. view(dtype): plain
            return own
        # every shape op here keeps the row-major order of the elements: the same reshape fits all three
        return _make(own, self.partner_labels.reshape(own.shape), self.lam.reshape(own.shape), self._mix)


def _keep_cast(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    self: MixedLabels = args[0]
    with _Disabled():
        own = func(*args, **kwargs)
        if own is self or not isinstance(own, Tensor):
            return own
        partner = func(self.partner_labels, *args[1:], **kwargs)
        lam = self.lam if self.lam.device == own.device else self.lam.to(own.device)  # λ stays float32
        return _make(own, partner, lam, self._mix)


def _keep_copy(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    self: MixedLabels = args[0]
    with _Disabled():
        own = func(*args, **kwargs)
        if own is self:
            return own
        return _make(own, func(self.partner_labels, *args[1:], **kwargs), self.lam, self._mix)


_KEEPERS: dict[Callable[..., Any], Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]] = {
    **dict.fromkeys(
        (
            Tensor.view,
            Tensor.view_as,
            Tensor.reshape,
            Tensor.reshape_as,
            torch.reshape,
            Tensor.flatten,
            torch.flatten,
            Tensor.squeeze,
            torch.squeeze,
            Tensor.unsqueeze,
            torch.unsqueeze,
        ),
        _keep_reshaped,
    ),
    **dict.fromkeys(
        (
            Tensor.float,
            Tensor.double,
            Tensor.half,
            Tensor.bfloat16,
            Tensor.long,
            Tensor.int,
            Tensor.bool,
            Tensor.to,
            Tensor.type_as,
            Tensor.cpu,
            Tensor.cuda,
        ),
        _keep_cast,
    ),
    **dict.fromkeys((Tensor.contiguous, Tensor.clone, torch.clone, Tensor.detach, torch.detach), _keep_copy),
}


# ------------------------------------------------------------------------------------------ losses that mix


_nll: Callable[..., Tensor] = torch._C._nn.nll_loss_nd  # F.nll_loss without its Python checks; 0: reduction="none"
_REDUCTION_CODES = {"none": 0, "mean": 1, "sum": 2}  # torch's enum of the reductions
_SUMMED = {2: torch.ops.aten.nll_loss_forward, 4: torch.ops.aten.nll_loss2d_forward}  # (sum, mass), by input.ndim


def _fit(lam: Tensor, shape: torch.Size) -> Tensor:
    """The per-element weights ``lam`` (labels' shape) laid out for losses of ``shape``."""
    if lam.shape == shape:
        return lam
    n = min(lam.ndim, len(shape))
    if tuple(lam.shape[:n]) == tuple(shape[:n]):
        while lam.ndim > n:  # a loss per sample of labels with more dims: λ is the same along them
            lam = lam.select(-1, 0)
        if lam.ndim == len(shape):
            return lam
        return lam.reshape(*lam.shape, *([1] * (len(shape) - n)))
    raise ValueError(
        expected(
            "the unreduced loss",
            f"of a shape that starts with the labels' shape {tuple(lam.shape)}, or a prefix of it",
            tuple(shape),
        )
    )


def _interpolate(
    labels: MixedLabels,
    unreduced: Callable[[Tensor], Tensor],
    mode: Any,
    mass: Callable[[Tensor], Tensor | None] | None = None,
    class_dim: bool = False,
    clamp: bool = False,
) -> Tensor:
    """``λ·L(a) + (1 − λ)·L(b)`` from the unreduced losses ``unreduced(a)`` and ``unreduced(b)``, reduced by ``mode``.

    ``mass`` gives what the loss's own ``"mean"`` divides by per element (None, or returning None: every
    element counts 1);
    ``class_dim``: probability targets ``(B, C, *d)`` give losses ``(B, *d)``; ``clamp``: a mass of 0 gives 0.
    """
    if mode not in ("mean", "sum", "none"):
        raise ValueError(expected("reduction", "one of 'mean', 'sum', 'none'", mode))
    labels._mix.read = True
    own, partner = _plain(labels), labels.partner_labels
    loss_a, loss_b = unreduced(own), unreduced(partner)
    dense = class_dim and own.dtype.is_floating_point  # probability targets: λ is the same along C
    uniform = labels._mix.uniform
    lam = _fit(labels.lam.select(1, 0) if dense else labels.lam, loss_a.shape) if uniform is None else uniform
    mixed = _lerp(loss_b, loss_a, lam)
    if mode == "none":
        return mixed
    if mode == "sum":
        return mixed.sum()
    mass_a, mass_b = (None, None) if mass is None else (mass(own), mass(partner))
    if mass_a is None or mass_b is None:  # both or neither: one rule for both sides
        return mixed.mean()
    total = _lerp(mass_b, mass_a, lam).sum()
    return mixed.sum() / (total.clamp_min(_TINY) if clamp else total)


def _call(
    fn: Callable[..., Tensor], bound: inspect.BoundArguments, target: str, reduction: str
) -> Callable[[Tensor], Tensor]:
    """``side -> fn(..., target=side, reduction="none")`` with the other arguments of ``bound``."""

    def unreduced(side: Tensor) -> Tensor:
        arguments = bound.arguments.copy()
        arguments[target] = side
        if reduction:
            arguments[reduction] = "none"
        call = inspect.BoundArguments(bound.signature, arguments)
        return fn(*call.args, **call.kwargs)

    return unreduced


def _index_mass(labels: Tensor, *, bound: inspect.BoundArguments) -> Tensor | None:
    """What torch's weighted mean divides by for one class index: ``weight[y]``, 0 at ``ignore_index``.

    None for probability targets, which torch averages over the positions whatever the weights.
    """
    if labels.dtype.is_floating_point:
        return None
    return _class_mass(labels, weight=bound.arguments.get("weight"), ignore=bound.arguments.get("ignore_index", -100))


@functools.cache
def _minus_one(device: torch.device) -> Tensor:
    """A float32 −1 of shape ``(1, 1)`` on ``device``, made once (read-only: it is shared)."""
    return torch.full((1, 1), -1.0, device=device)


def _class_mass(labels: Tensor, *, weight: Tensor | None, ignore: int, classes: int | None = None) -> Tensor:
    """``weight[y]`` (1 without weights) per label, 0 at ``ignore``, as float32.

    With ``classes`` (the labels are ``(B,)`` class indices of a ``(B, classes)`` input) one op computes it: the
    NLL of a constant −1, which is what torch's own weighted mean sums.
    """
    if classes is not None and labels.ndim == 1:
        minus_one = _minus_one(labels.device).expand(labels.shape[0], classes)
        return _nll(minus_one, labels, None if weight is None else weight.to(torch.float32), 0, ignore)
    keep: Tensor = labels != ignore
    if weight is None:
        return keep.to(torch.float32)
    per_class: Tensor = weight.to(labels.device)
    return per_class[labels.long().masked_fill(~keep, 0)] * keep


def _soft_mass(labels: Tensor, *, bound: inspect.BoundArguments) -> Tensor | None:
    """The mass rule of :func:`soft_target_cross_entropy`: that of class indices, or the weighted row mass."""
    if not labels.dtype.is_floating_point:
        return _index_mass(labels, bound=bound)
    weight: Tensor | None = bound.arguments.get("weight")
    rows = labels.float() if weight is None else labels.float() * weight.view(-1, *([1] * (labels.ndim - 2)))
    return rows.sum(1)


@functools.cache
def _signature_of(func: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(func)


_REQUIRED = object()


@functools.cache
def _parameters_of(func: Callable[..., Any]) -> tuple[inspect.Signature, tuple[str, ...], dict[str, Any]] | None:
    """The signature, parameter names and defaults of ``func``; None when not every parameter is plain."""
    signature = _signature_of(func)
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(p.kind not in plain for p in signature.parameters.values()):
        return None
    names = tuple(n for n, p in signature.parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
    empty = inspect.Parameter.empty
    defaults = {n: _REQUIRED if p.default is empty else p.default for n, p in signature.parameters.items()}
    return signature, names, defaults


def _bind(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
    """``inspect.signature(func).bind(*args, **kwargs)`` with the defaults applied, without its per-call cost.

    A loss runs every step, and ``Signature.bind`` costs more than a small loss itself: the arguments of a function
    of plain parameters are matched here directly; anything else (or a wrong call, for ``bind``'s error) goes
    through ``bind``.
    """
    parameters = _parameters_of(func)
    if parameters is not None:
        signature, names, defaults = parameters
        if len(args) <= len(names) and not any(name in kwargs for name in names[: len(args)]):
            arguments = dict(defaults)
            arguments.update(zip(names, args, strict=False))
            arguments.update(kwargs)
            if len(arguments) == len(defaults) and all(v is not _REQUIRED for v in arguments.values()):
                return inspect.BoundArguments(signature, arguments)
    bound = _signature_of(func).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound


LossHandler = Callable[[Callable[..., Tensor], tuple[Any, ...], dict[str, Any]], Tensor]


def _handler(family: str, mass: Mass | None = None, class_dim: bool = False, clamp: bool = False) -> LossHandler:
    """Handle a loss of the ``(input, target, ..., reduction=...)`` family called with mixed labels.

    ``family``: ``"ce"`` (a ``label_smoothing`` argument), ``"nll"`` (smoothed as cross-entropy of the
    log-probabilities, which log-softmax leaves as they are) or ``"bce"`` (smoothing moves the target to 1/2).
    """

    def handle(func: Callable[..., Tensor], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
        bound = _bind(func, args, kwargs)
        labels = bound.arguments["target"]
        if not isinstance(labels, MixedLabels):  # the mixed labels came as another argument: a plain call
            with _Disabled():
                return func(*args, **kwargs)
        legacy = bound.arguments.get("size_average"), bound.arguments.get("reduce")
        if legacy != (None, None):  # the deprecated flags, resolved once
            bound.arguments["reduction"] = _reduction.legacy_get_string(*legacy)
            bound.arguments["size_average"] = bound.arguments["reduce"] = None
        eps = labels.label_smoothing
        unreduced = _call(func, bound, "target", "reduction")
        if eps > 0 and family == "ce":
            bound.arguments["label_smoothing"] = 1.0 - (1.0 - eps) * (1.0 - bound.arguments["label_smoothing"])
        elif eps > 0 and family == "nll":
            arguments = {k: bound.arguments[k] for k in ("input", "target", "weight", "ignore_index", "reduction")}
            bound = _bind(F.cross_entropy, (), {**arguments, "label_smoothing": eps})
            unreduced = _call(F.cross_entropy, bound, "target", "reduction")
        elif eps > 0 and family == "bce":
            plain = unreduced
            unreduced = lambda side: plain(side.mul(1.0 - eps).add_(eps / 2.0))  # noqa: E731
        per_side = None if mass is None else functools.partial(mass, bound=bound)
        return _interpolate(labels, unreduced, bound.arguments["reduction"], per_side, class_dim, clamp)

    return handle


def _index_handler(family: str) -> LossHandler:
    """The handler of ``F.cross_entropy`` (``"ce"``) or ``F.nll_loss`` (``"nll"``).

    int64 class indices take :func:`_mixed_loss_of_indices`, everything else the generic handler. The arguments
    are read as these functions pass them (input and target by position, every other argument by name) without
    binding them.
    """
    generic = _handler(family, _index_mass, class_dim=family == "ce")
    names = frozenset(_signature_of(F.cross_entropy if family == "ce" else F.nll_loss).parameters) - {"input", "target"}

    def handle(func: Callable[..., Tensor], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
        if len(args) == 2 and kwargs.keys() == names:
            labels, arguments = args[1], kwargs
        else:
            arguments = _bind(func, args, kwargs).arguments
            labels = arguments["target"]
        fast = (
            type(labels) is MixedLabels
            and labels.dtype == torch.int64
            and arguments["size_average"] is None
            and arguments["reduce"] is None
        )
        x = args[0] if arguments is kwargs else arguments["input"]
        if not fast or x.ndim < 2 or _autocast(x.device.type):
            return generic(func, args, kwargs)
        return _mixed_loss_of_indices(x, labels, arguments, family == "nll")

    return handle


def _autocast(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (it runs cross-entropy in float32, not its log-softmax)."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4 takes no device type: take the two-call path, exact either way
        return True


def _mixed_loss_of_indices(x: Tensor, labels: MixedLabels, arguments: dict[str, Any], nll: bool) -> Tensor:
    """``F.cross_entropy`` or ``F.nll_loss`` of int64 class indices with mixed labels, reduced, from one log-softmax.

    torch's cross-entropy is the NLL of ``log_softmax(input, 1)`` plus, with smoothing ε, ``ε/C`` times the
    (class-weighted) sum of ``−log p`` over the classes, 0 at ``ignore_index``: the log-softmax and the smoothing
    sum do not depend on the labels, so both label sets share them. ``F.nll_loss`` takes the log-probabilities
    as they are; with the callback's ε it is the cross-entropy of them (which log-softmax leaves as they are).
    The reductions are those of :func:`_interpolate`, with the mass of :func:`_index_mass`. With one λ for the
    batch (a per-batch draw) the reduced losses of the two sides are interpolated as scalars: the sums, or the
    means when the partner labels are a permutation of the own ones (their masses are equal, so the mean of the
    interpolation is the interpolation of the means); otherwise the sum and the mass of each side come from one
    op each.
    """
    mode = arguments["reduction"]
    if mode not in _REDUCTION_CODES:
        raise ValueError(expected("reduction", "one of 'mean', 'sum', 'none'", mode))
    weight: Tensor | None = arguments["weight"]
    ignore: int = arguments["ignore_index"]
    mix = labels._mix
    mix.read = True
    eps = mix.label_smoothing if nll else 1.0 - (1.0 - mix.label_smoothing) * (1.0 - arguments["label_smoothing"])
    own, partner, uniform = _plain(labels), labels.partner_labels, mix.uniform
    log_p = x if nll and eps == 0 else F.log_softmax(x, 1)
    if uniform is not None and eps == 0:  # one λ: interpolate the two reduced losses as scalars
        code = _REDUCTION_CODES[mode]
        if uniform == 1.0:  # an unmixed batch: the plain loss
            return _nll(log_p, own, weight, code, ignore)
        if mode != "mean" or mix.balanced:  # the sum, or means of equal masses
            return torch.lerp(
                _nll(log_p, partner, weight, code, ignore), _nll(log_p, own, weight, code, ignore), uniform
            )
    summed = _SUMMED.get(log_p.ndim)
    if uniform is not None and eps == 0 and summed is not None:
        sum_a, mass_a = summed(log_p, own, weight, 2, ignore)
        sum_b, mass_b = summed(log_p, partner, weight, 2, ignore)
        total = torch.lerp(sum_b, sum_a, uniform)
        return total if mode == "sum" else total / torch.lerp(mass_b, mass_a, uniform)
    lam = labels.lam if uniform is None else uniform
    mixed = _lerp(_nll(log_p, partner, weight, 0, ignore), _nll(log_p, own, weight, 0, ignore), lam)
    mass = None
    if eps > 0:
        weighted = log_p if weight is None else log_p * weight.view(-1, *([1] * (log_p.ndim - 2)))
        keep = _lerp(
            _class_mass(partner, weight=None, ignore=ignore), _class_mass(own, weight=None, ignore=ignore), lam
        )
        mixed = mixed * (1.0 - eps) - weighted.sum(1) * keep * (eps / log_p.shape[1])
        mass = keep if weight is None else None
    if mode == "none":
        return mixed
    if mode == "sum":
        return mixed.sum()
    if mass is None:
        classes = log_p.shape[1] if log_p.ndim == 2 else None
        mass_a = _class_mass(own, weight=weight, ignore=ignore, classes=classes)
        mass = _lerp(_class_mass(partner, weight=weight, ignore=ignore, classes=classes), mass_a, lam)
    return mixed.sum() / mass.sum()


def _lerp(end_b: Tensor, end_a: Tensor, lam: Tensor | float) -> Tensor:
    """``λ·a + (1 − λ)·b`` (exactly ``a`` where ``a == b``, or λ is 1) in one op where the dtypes allow it.

    A tensor ``λ`` (float32) promotes the result as ``λ·a`` would; a scalar ``λ`` keeps the dtype of the losses.
    """
    if not isinstance(lam, Tensor) or end_a.dtype == end_b.dtype == lam.dtype:
        return torch.lerp(end_b, end_a, lam)
    return lam * end_a + (1.0 - lam) * end_b


def _accuracy(func: Callable[..., Tensor], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    bound = _signature_of(func).bind(*args, **kwargs)
    bound.apply_defaults()
    target = bound.arguments.pop("target")
    if not isinstance(target, MixedLabels):
        with _Disabled():
            return func(*args, **kwargs)
    return _mixed_label_accuracy(
        bound.arguments.pop("preds"), _plain(target), target.partner_labels, target.lam, **bound.arguments
    )


_LOSSES: dict[Callable[..., Any], LossHandler] = {
    F.cross_entropy: _index_handler("ce"),
    F.nll_loss: _index_handler("nll"),
    F.binary_cross_entropy: _handler("bce"),
    F.binary_cross_entropy_with_logits: _handler("bce"),
    soft_target_cross_entropy: _handler("ce", _soft_mass, class_dim=True, clamp=True),
    soft_target_binary_cross_entropy: _handler("ce"),
    mixed_accuracy: _accuracy,
}


# -------------------------------------------------------------------------------------------- registration


@overload
def register_loss(fn: _F, *, target: str = "target", reduction: str = "reduction") -> _F: ...
@overload
def register_loss(*, target: str = "target", reduction: str = "reduction") -> Callable[[_F], _F]: ...
def register_loss(fn: Any = None, *, target: str = "target", reduction: str = "reduction") -> Any:
    """Teach a custom loss to read :class:`MixedLabels`: it then returns ``λ·L(x, a) + (1 − λ)·L(x, b)``.

    A **function** must accept ``reduction="none"`` (the argument named by ``reduction``) and return losses whose
    shape starts with the labels' shape (per sample ``(B,)``, per element ``(B, C)`` or ``(B, H, W)``, ...).
    ``register_loss`` returns the registered function, a wrapper of ``fn`` (``__wrapped__`` is ``fn``): **call
    what it returns** — the decorator form does that for you. Called with plain labels it is ``fn`` itself;
    called with :class:`MixedLabels` it calls ``fn`` once with the own labels and once with the partner labels,
    both with ``reduction="none"``, interpolates per element with λ and reduces as asked: ``"mean"`` over all
    elements, ``"sum"``, or ``"none"``.

    A **module class** (a subclass of :class:`torch.nn.Module`, e.g. a focal-loss module) is registered in place:
    its ``forward`` (the ``target`` argument) is wrapped the same way, with the module's attribute named by
    ``reduction`` (``self.reduction``) set to ``"none"`` for the two calls. The class itself is returned, so
    every instance, and every subclass, reads the mix. ``torch.nn`` losses need no registration: they call the
    ``torch.nn.functional`` losses that already read the mix.

    Args:
        fn: the loss function or module class; omit it to get a decorator taking these options.
        target: name of the argument that receives the labels.
        reduction: name of the reduction argument (of the attribute, for a module).

    Returns:
        The registered function (a wrapper of ``fn``), or the module class itself.

    Raises:
        TypeError: if ``fn`` is neither callable nor a module class.
        ValueError: if ``fn`` has no argument named ``target`` or (for a function) ``reduction``.

    Example:
        >>> @register_loss
        ... def focal_loss(logits, target, gamma=2.0, reduction="mean"):
        ...     log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
        ...     loss = -((1 - log_p.exp()) ** gamma) * log_p
        ...     return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> y = MixedLabels(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([0.5, 1.0]))
        >>> a = focal_loss(logits, torch.tensor([0, 1]), reduction="none")
        >>> b = focal_loss(logits, torch.tensor([1, 0]), reduction="none")
        >>> bool(torch.isclose(focal_loss(logits, y), (0.5 * a[0] + 0.5 * b[0] + a[1]) / 2))
        True
    """
    if fn is None:
        return functools.partial(register_loss, target=target, reduction=reduction)
    if isinstance(fn, type):
        if not issubclass(fn, nn.Module):
            raise TypeError(expected("fn", "a loss function or an nn.Module subclass", fn.__name__))
        return _register_module(fn, target, reduction)
    if not callable(fn):
        raise TypeError(expected("fn", "a loss function or an nn.Module subclass", type(fn).__name__))
    signature = _signature(fn, target, (target, reduction))

    @functools.wraps(fn)
    def registered(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        if not isinstance(bound.arguments.get(target), MixedLabels):
            return fn(*args, **kwargs)
        bound.apply_defaults()
        labels = bound.arguments[target]
        _no_smoothing(labels, fn.__name__)
        return _interpolate(labels, _call(fn, bound, target, reduction), bound.arguments[reduction])

    return registered


def _no_smoothing(labels: MixedLabels, name: str) -> None:
    if labels.label_smoothing > 0:
        hint = "Smooth inside the loss, and leave the callback's `label_smoothing` at 0."
        raise ValueError(
            expected(f"the label smoothing of the labels given to {name}", "0", labels.label_smoothing, hint)
        )


def _signature(fn: Callable[..., Any], name: str, required: tuple[str, ...]) -> inspect.Signature:
    signature = inspect.signature(fn)
    missing = [p for p in required if p not in signature.parameters]
    if missing:
        hint = "Pass `target=` and `reduction=` with the names your loss uses."
        raise ValueError(
            expected(f"the parameters of {name}", f"to include {missing}", list(signature.parameters), hint)
        )
    return signature


def _register_module(cls: type[nn.Module], target: str, reduction: str) -> type[nn.Module]:
    forward = getattr(cls.forward, "__lightning_mix_forward__", cls.forward)  # registering twice re-wraps the original
    signature = _signature(forward, f"{cls.__name__}.forward", (target,))

    @functools.wraps(forward)
    def registered(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        labels = bound.arguments.get(target)
        if not isinstance(labels, MixedLabels):
            return forward(self, *args, **kwargs)
        if not hasattr(self, reduction):
            hint = f"Pass `reduction=` to register_loss with the name of the attribute {cls.__name__} reduces by."
            raise TypeError(
                expected(f"{cls.__name__}.{reduction}", "an attribute that selects the reduction", None, hint)
            )
        _no_smoothing(labels, cls.__name__)
        mode = getattr(self, reduction)
        bound.apply_defaults()
        call = _call(forward, bound, target, "")

        def unreduced(side: Tensor) -> Tensor:
            setattr(self, reduction, "none")
            try:
                return call(side)
            finally:
                setattr(self, reduction, mode)

        return _interpolate(labels, unreduced, mode)

    registered.__lightning_mix_forward__ = forward  # type: ignore[attr-defined]
    cls.forward = registered
    return cls
