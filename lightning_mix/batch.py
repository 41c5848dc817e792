"""Finding the input and the target inside a training batch, and replacing them in place.

Lightning hands the same batch object to ``on_train_batch_start`` and to ``training_step`` and ignores what a
callback's hook returns, so a mixing callback must edit the batch *container*: a list item, a dict entry, an
attribute of a dataclass or any other object, or whatever user-supplied getter and setter callables reach.
Tuples cannot take new items: their tensors can only be changed in place (the callback does so when they belong
to the step); other immutable containers are refused with a message that says how to fix it.

Nothing here imports Lightning.

Example:
    >>> import torch
    >>> access = BatchAccess()
    >>> batch = {"image": torch.zeros(2, 3, 4, 4), "label": torch.tensor([0, 1])}
    >>> access.locate(batch, with_target=True)
    ('image', 'label')
    >>> access.set(batch, "label", torch.ones(2, 2))
    >>> batch["label"].shape
    torch.Size([2, 2])
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

import torch
from torch import Tensor

from lightning_mix.functional._checks import expected

__all__ = ["INPUT_NAMES", "TARGET_NAMES", "BatchAccess", "Getter", "Key", "Setter", "owns_memory"]

Key = int | str
Getter = Callable[[Any, Key], Tensor]
Setter = Callable[[Any, Key, Tensor], None]

INPUT_NAMES = ("input", "inputs", "image", "images", "pixel_values", "x")
"""Keys (or attribute names) taken as the input of a dict or object batch when no ``input_key`` is given."""
TARGET_NAMES = ("target", "targets", "label", "labels", "y")
"""Keys (or attribute names) taken as the target of a dict or object batch when no ``target_key`` is given."""

_FIX = (
    "Lightning passes the same batch object to `training_step` and ignores what callbacks return, so the batch "
    "must be edited in place: make your collate function (or your `on_after_batch_transfer`, which may rebuild "
    "the batch) return a list or a dict, or pass `getter` and `setter`."
)


def _names(batch: Any, keys: Sequence[str]) -> list[str]:
    if isinstance(batch, Mapping):
        return [k for k in keys if k in batch]
    return [k for k in keys if hasattr(batch, k)]


@dataclasses.dataclass(frozen=True)
class BatchAccess:
    """Where the input and the target of a batch are, and how to read and replace them.

    Without ``getter`` and ``setter``, lists (and other mutable sequences) are indexed by position, dicts (and
    other mutable mappings) by key, and any other object by attribute name, so dataclasses work as they are.
    A key left as ``None`` means: position 0 (input) and 1 (target) of a sequence, or the one name of
    :data:`INPUT_NAMES` or :data:`TARGET_NAMES` present in a dict or object. With ``getter`` and ``setter``
    they are called as ``getter(batch, key)`` and ``setter(batch, key, value)``, with the keys given, or
    ``"input"`` and ``"target"`` for keys left as ``None``.

    Args:
        input_key: position, key or attribute name of the input.
        target_key: position, key or attribute name of the target.
        getter: reads an item of a custom batch; must come with ``setter``.
        setter: replaces an item of a custom batch; must come with ``getter``.

    Raises:
        TypeError: if a key is neither an int nor a str, or only one of ``getter`` and ``setter`` is given.

    Example:
        >>> import torch
        >>> batch = [torch.zeros(2, 3), torch.tensor([0, 1])]
        >>> BatchAccess().locate(batch, with_target=True)
        (0, 1)
        >>> BatchAccess().frozen(tuple(batch)), BatchAccess().frozen(batch)
        (True, False)
    """

    input_key: Key | None = None
    target_key: Key | None = None
    getter: Getter | None = None
    setter: Setter | None = None

    def __post_init__(self) -> None:
        for name in ("input_key", "target_key"):
            key = getattr(self, name)
            if key is not None and (isinstance(key, bool) or not isinstance(key, int | str)):
                raise TypeError(expected(name, "None, an int position or a str key", key))
        if (self.getter is None) != (self.setter is None):
            raise TypeError(expected("getter and setter", "both given or both None", (self.getter, self.setter)))
        for name in ("getter", "setter"):
            fn = getattr(self, name)
            if fn is not None and not callable(fn):
                raise TypeError(expected(name, "a callable", fn))

    def locate(self, batch: Any, *, with_target: bool) -> tuple[Key, Key | None]:
        """Resolve the input and target keys of ``batch`` and check it can be edited in place.

        Args:
            batch: the training batch.
            with_target: whether a target must be found; the target key is ``None`` when False.

        Returns:
            ``(input_key, target_key)``.

        Raises:
            TypeError: if the batch cannot be edited in place.
            ValueError: if a key is missing, out of range or ambiguous.

        Example:
            >>> import torch
            >>> BatchAccess().locate({"pixel_values": torch.zeros(1), "labels": torch.zeros(1)}, with_target=True)
            ('pixel_values', 'labels')
            >>> BatchAccess(input_key=-1).locate([torch.zeros(1), torch.ones(1)], with_target=False)
            (-1, None)
        """
        if type(batch) is list and self.getter is None:  # the usual batch, mutable as it is: its positions only
            position = self._position(batch, "input_key", self.input_key, 0)
            return position, self._position(batch, "target_key", self.target_key, 1) if with_target else None
        if self.getter is not None:
            named_input = "input" if self.input_key is None else self.input_key
            named_target = "target" if self.target_key is None else self.target_key
            return named_input, named_target if with_target else None
        if isinstance(batch, Tensor) or (
            isinstance(batch, Sequence) and not isinstance(batch, MutableSequence | tuple)
        ):
            raise TypeError(
                expected("batch", "a mutable container (list, dict, dataclass or other object)", _kind(batch), _FIX)
            )
        if isinstance(batch, Mapping) and not isinstance(batch, MutableMapping):
            raise TypeError(expected("batch", "a mutable mapping such as a dict", _kind(batch), _FIX))
        input_key = self._resolve(batch, "input_key", self.input_key, 0, INPUT_NAMES)
        target_key = self._resolve(batch, "target_key", self.target_key, 1, TARGET_NAMES) if with_target else None
        if not isinstance(batch, Mapping | MutableSequence | tuple):
            self._check_settable(batch, input_key)
        return input_key, target_key

    def frozen(self, batch: Any) -> bool:
        """Whether ``batch`` is a tuple (named or not), whose items can only be changed in place.

        Example:
            >>> BatchAccess().frozen((1, 2)), BatchAccess().frozen([1, 2])
            (True, False)
        """
        return self.getter is None and isinstance(batch, tuple)

    def get(self, batch: Any, key: Key) -> Tensor:
        """Return the tensor stored at ``key``.

        Raises:
            TypeError: if the item is not a tensor.

        Example:
            >>> import torch
            >>> from types import SimpleNamespace
            >>> BatchAccess().get(SimpleNamespace(x=torch.ones(2)), "x")
            tensor([1., 1.])
        """
        if self.getter is not None:
            value = self.getter(batch, key)
        elif _indexable(batch):
            value = batch[key]
        else:
            value = getattr(batch, str(key))
        if not isinstance(value, Tensor):
            raise TypeError(expected(f"batch item {key!r}", "a torch.Tensor", type(value).__name__))
        return value

    def set(self, batch: Any, key: Key, value: Tensor) -> None:
        """Replace the item stored at ``key`` by ``value``, in place.

        Example:
            >>> import torch
            >>> batch = [torch.zeros(2), torch.zeros(2)]
            >>> BatchAccess().set(batch, 1, torch.ones(2))
            >>> batch[1]
            tensor([1., 1.])
        """
        if self.setter is not None:
            self.setter(batch, key, value)
        elif self.frozen(batch):
            if batch[key] is not value:
                raise TypeError(expected("batch", "a mutable container", _kind(batch), _FIX))
        elif _indexable(batch):
            batch[key] = value
        else:
            setattr(batch, str(key), value)

    @staticmethod
    def _position(batch: Sequence[Any], name: str, key: Key | None, position: int) -> int:
        index = position if key is None else key
        if not isinstance(index, int):
            raise TypeError(expected(name, "an int position for a list batch", index))
        if not -len(batch) <= index < len(batch):
            hint = 'For batches without a target, pass `targets="none"`.' if name == "target_key" else ""
            raise ValueError(expected(name, f"a position in a list batch of length {len(batch)}", index, hint))
        return index

    @staticmethod
    def _resolve(batch: Any, name: str, key: Key | None, position: int, names: Sequence[str]) -> Key:
        if isinstance(batch, Sequence):
            return BatchAccess._position(batch, name, key, position)
        if key is None:
            found = _names(batch, names)
            if len(found) != 1:
                requirement = "set, since the batch has " + ("several of" if found else "none of")
                hint = _available(batch)
                if name == "target_key" and not found:
                    hint += ' For batches without a target, pass `targets="none"`.'
                raise ValueError(expected(name, requirement + f" the names {names}", None, hint))
            return found[0]
        present = key in batch if isinstance(batch, Mapping) else isinstance(key, str) and hasattr(batch, key)
        if not present:
            raise ValueError(expected(name, "a key or attribute of the batch", key, _available(batch)))
        return key

    @staticmethod
    def _check_settable(batch: Any, key: Key) -> None:
        frozen = dataclasses.is_dataclass(batch) and batch.__dataclass_params__.frozen  # type: ignore[union-attr]
        try:
            if frozen:
                raise AttributeError
            setattr(batch, str(key), getattr(batch, str(key)))  # a no-op write that fails on read-only objects
        except AttributeError:
            raise TypeError(expected("batch", "an object whose attributes can be set", _kind(batch), _FIX)) from None


def _count(x: object) -> int:
    return sys.getrefcount(x)


def _count_in_a_callee(x: object) -> int:  # called as `owns_memory` calls `_count`: a parameter passed on
    return _count(x)


def _calibrate() -> int:
    probe = object()  # one reference: this local
    return _count_in_a_callee(probe) - 1


_CALL_REFERENCES = _calibrate()
"""References to its argument that ``owns_memory`` itself adds (its parameter, ``_count``'s, ``getrefcount``'s)."""
_STORAGE_REFERENCES = 2  # the tensor's own reference to its storage, and the temporary storage object's
_use_count: Callable[[int], int] | None = getattr(torch._C, "_storage_Use_Count", None)


def owns_memory(x: Tensor, references: int = 1) -> bool:
    """Whether nothing but the caller can see the memory of ``x``, so that writing into it changes nothing else.

    Three things must hold:

    - No other tensor uses the storage: ``x`` is not a view, and no view, ``detach()``, ``as_strided`` or other
      tensor over the same memory exists, as the storage's use count tells. ``x``
      starts at offset 0 and spans its whole storage.
    - No one else holds the tensor object itself: its Python reference count is at most ``references``, the
      references the caller accounts for (the batch container's and the caller's own variable, say). A loader
      that yields a tensor its owner keeps (``self.x``, a cached batch) is caught here.
    - PyTorch allocated the memory: an ordinary or pinned storage, or shared memory without a file (what
      ``DataLoader`` workers send). Memory of NumPy (``torch.from_numpy``, ``torch.as_tensor``), of a buffer
      (``torch.frombuffer``), of another library (DLPack) or of a file (``torch.from_file``) may be seen by its
      owner and is not writable here.

    Args:
        x: the tensor to write into.
        references: how many references to the ``x`` object the caller holds and knows of.

    Returns:
        True when writing into ``x`` is safe. Needs CPython's reference counts and PyTorch's storage use count;
        where one is missing, False (the caller then writes into a copy).

    Example:
        >>> import torch
        >>> data = torch.zeros(10, 3)
        >>> owns_memory(data), owns_memory(data[2:4]), owns_memory(data[2:4].clone())
        (True, False, True)
        >>> batch = [data]  # a second reference the caller does not account for
        >>> owns_memory(data), owns_memory(data, references=2)
        (False, True)
        >>> view = data.detach()  # another tensor over the same memory
        >>> owns_memory(data, references=2)
        False
    """
    if _use_count is None or x.storage_offset() != 0:
        return False
    storage = x.untyped_storage()
    pytorch_memory = storage.resizable() or x.is_pinned() or (storage.is_shared() and storage.filename is None)
    if not pytorch_memory or storage.nbytes() != x.numel() * x.element_size() or x._base is not None:
        return False
    shared_by = _use_count(storage._cdata) - _STORAGE_REFERENCES
    return shared_by == 0 and _count(x) - _CALL_REFERENCES <= references


def _indexable(batch: Any) -> bool:
    return isinstance(batch, Mapping | Sequence)


def _kind(batch: Any) -> str:
    return type(batch).__name__


def _available(batch: Any) -> str:
    if isinstance(batch, Mapping):
        return f"The batch has keys {list(batch)}."
    fields = [f.name for f in dataclasses.fields(batch)] if dataclasses.is_dataclass(batch) else None
    return f"The batch has fields {fields}." if fields is not None else f"The batch is a {_kind(batch)}."
