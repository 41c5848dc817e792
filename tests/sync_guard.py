"""A dispatch-mode guard that fails on any operation that reads a tensor's value on the host.

On a CPU-only machine no host-device sync can be observed directly, so the guard records the aten ops that
would cause one on an accelerator: ``_local_scalar_dense`` (``.item()``, ``bool(t)``, ``.tolist()``),
``is_nonzero``, ``nonzero`` and friends (output size depends on data), and copies from a non-CPU device to
the CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
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
    "aten::unique_consecutive",
    "aten::equal",
    "aten::allclose",
}


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
    """Run the body under a :class:`SyncRecorder` and raise if it saw any syncing op."""
    recorder = SyncRecorder()
    with recorder:
        yield recorder
    if recorder.syncs:
        raise AssertionError(f"host-device syncs on the mixing path: {sorted(set(recorder.syncs))}")
