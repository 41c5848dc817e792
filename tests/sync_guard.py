"""Guards that fail on any read of tensor data by the host: the host-device syncs of an accelerator, seen on CPU.

On a CPU-only machine no host-device sync can be observed directly, so two recorders watch what would cause one:

- :class:`HostReadRecorder`, a ``TorchFunctionMode``, sees the Python-level calls that hand tensor values to the
  host: ``.tolist()``, ``.numpy()``, ``.cpu()``, ``.item()``, ``bool``/``int``/``float``/``complex``/``operator.index``
  of a tensor, NumPy conversions, printing, ``in``, ``torch.equal``/``allclose``, ``nonzero`` and the ops whose
  output size depends on the values (``unique``, ``masked_select``, boolean-mask indexing, ...), and copies of a
  tensor to the CPU (``.to("cpu")``, ``.to(device="cpu")``, ``.to(cpu_tensor)``, ``.copy_`` into a CPU tensor
  from another device). On CPU, ``.tolist()``, ``.numpy()`` and ``.cpu()`` run no aten op at all, so only this
  level can see them.
- :class:`SyncRecorder`, a ``TorchDispatchMode``, records every aten op that runs and flags those that read
  values (``_local_scalar_dense``, ``is_nonzero``, ``nonzero``, ...) and copies from a non-CPU device to the CPU,
  whichever Python call led to them.

Values that never were tensors (Python numbers, shapes, a ``random.Random`` draw) are never flagged, and neither are
tensors built from them (``torch.tensor([0.3])``, ``torch.full(...)``): only reads of tensor data are.

One limit: a copy to the CPU spelled ``.to(torch.device("cpu"))`` or ``.to(x.device)`` looks, on a CPU-only machine,
exactly like the device-to-device move ``.to(batch.device)``; it is caught by the dispatch level when the source
lives on an accelerator (the CUDA tests), not on CPU.

Use :func:`forbid_syncs` around code, or :func:`guard_calls` to run every call of a hook (after the first steps of a
fit, which may do documented one-time checks) under it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

SYNCING_OPS = {
    "aten::_local_scalar_dense",
    "aten::is_nonzero",
    "aten::item",
    "aten::nonzero",
    "aten::nonzero_static",
    "aten::masked_select",
    "aten::unique",
    "aten::_unique2",
    "aten::unique_dim",
    "aten::unique_consecutive",
    "aten::equal",
    "aten::allclose",
}

# Python-level calls that hand tensor values to the host (or whose output size depends on them), by `__name__`
HOST_READS = {
    "tolist",
    "numpy",
    "cpu",
    "item",
    "__bool__",
    "__int__",
    "__float__",
    "__complex__",
    "__index__",
    "__array__",
    "__format__",
    "__repr__",
    "__str__",
    "__contains__",
    "__reduce_ex__",
    "__dlpack__",
    "is_nonzero",
    "equal",
    "allclose",
    "nonzero",
    "argwhere",
    "masked_select",
    "unique",
    "unique_consecutive",
    "bincount",
}


def _is_cpu(device: Any) -> bool:
    if isinstance(device, torch.Tensor):
        return device.device.type == "cpu"
    if isinstance(device, (str, torch.device)):
        try:
            return torch.device(device).type == "cpu"
        except RuntimeError:  # a dtype name or another string `.to` accepts
            return False
    return False


def _copies_to_host(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a ``.to``/``.copy_`` call copies tensor data to the CPU from elsewhere, or names the CPU as a string."""
    if not args or not isinstance(args[0], torch.Tensor):
        return False
    if name == "copy_":  # dst.copy_(src): to the host when dst is on the CPU and src is not
        src = args[1] if len(args) > 1 else kwargs.get("src")
        return isinstance(src, torch.Tensor) and args[0].device.type == "cpu" and src.device.type != "cpu"
    targets = [*args[1:], kwargs.get("device"), kwargs.get("other")]
    # a string names the CPU on purpose; a device object or a tensor only counts when the source is elsewhere
    spelled = any(isinstance(t, str) and _is_cpu(t) for t in targets)
    moved = args[0].device.type != "cpu" and any(_is_cpu(t) for t in targets)
    return spelled or moved


def _masks(index: Any) -> bool:
    """Whether an index holds a boolean (or uint8 mask) tensor, which turns into ``nonzero``."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) and i.ndim > 0 for i in items)


class HostReadRecorder(TorchFunctionMode):
    """Record every Python-level call that reads tensor data on the host (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name in HOST_READS:
            self.reads.append(name)
        elif name in ("to", "copy_") and _copies_to_host(name, tuple(args), kwargs):
            self.reads.append(f"{name} -> cpu")
        elif name in ("__getitem__", "__setitem__", "index_put", "index_put_") and len(args) > 1 and _masks(args[1]):
            self.reads.append(f"{name} with a boolean mask")
        elif name == "where" and len(args) + len(kwargs) == 1:  # torch.where(cond) is nonzero
            self.reads.append("where(condition)")
        elif name == "repeat_interleave" and "output_size" not in kwargs:
            # tensor repeats (or `torch.repeat_interleave(repeats)` alone) size the output by their values
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats", args[0] if len(args) == 1 else None)
            if isinstance(repeats, torch.Tensor) and (len(args) > 1 or "repeats" in kwargs or repeats.ndim > 0):
                self.reads.append("repeat_interleave without output_size")
        return func(*args, **kwargs)


class SyncRecorder(TorchDispatchMode):
    """Record every executed aten op and flag those that need the host to read device data."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = func._schema.name
        self.ops.append(name)
        if name in SYNCING_OPS:
            self.syncs.append(name)
        if name in ("aten::_to_copy", "aten::to", "aten::copy_"):
            src = args[1] if name == "aten::copy_" else args[0]
            dst_device = args[0].device if name == "aten::copy_" else kwargs.get("device")
            to_host = dst_device is not None and torch.device(dst_device).type == "cpu"
            if isinstance(src, torch.Tensor) and src.device.type != "cpu" and to_host:
                self.syncs.append(f"{name} {src.device}->cpu")
        return func(*args, **kwargs)


@contextmanager
def forbid_syncs() -> Iterator[SyncRecorder]:
    """Run the body under both recorders and raise if either saw a read of tensor data by the host.

    Yields the :class:`SyncRecorder`, whose ``ops`` list every aten op that ran (to check that the body did work).
    """
    reads, recorder = HostReadRecorder(), SyncRecorder()
    with reads, recorder:
        yield recorder
    found = sorted(set(reads.reads) | set(recorder.syncs))
    if found:
        raise AssertionError(f"host reads of tensor data (host-device syncs on an accelerator): {found}")


@dataclass
class GuardLog:
    """What :func:`guard_calls` saw: calls run unguarded (the first ones) and calls checked."""

    skipped: int = 0
    checked: int = 0
    ops: list[str] = field(default_factory=list)


def guard_calls(obj: Any, method: str, *, skip: Callable[..., bool]) -> GuardLog:
    """Run every call of ``obj.<method>`` under :func:`forbid_syncs`, but those for which ``skip(*args)`` is True.

    The method is replaced on the instance only. A host read raises ``AssertionError`` inside the call, which
    fails the ``Trainer.fit`` (or whatever) that made it.

    Example: every training step of a fit but the first::

        log = guard_calls(callback, "on_train_batch_start", skip=first_step_of_fit)
    """
    original = getattr(obj, method)
    log = GuardLog()

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if skip(*args, **kwargs):
            log.skipped += 1
            return original(*args, **kwargs)
        with forbid_syncs() as recorder:
            result = original(*args, **kwargs)
        log.checked += 1
        log.ops.extend(recorder.ops)
        return result

    setattr(obj, method, guarded)
    return log


def first_step_of_fit(trainer: Any, *args: Any, **kwargs: Any) -> bool:
    """``skip`` for training hooks ``(trainer, pl_module, batch, batch_idx)``: the first batch of a fresh fit."""
    batch_idx = args[-1] if args else kwargs.get("batch_idx", 0)
    return bool(trainer.global_step == 0 and trainer.current_epoch == 0 and batch_idx == 0)
