"""The host-read guard itself: it flags every way of reading tensor data on the host, and nothing else."""

from __future__ import annotations

import operator
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from sync_guard import GuardLog, forbid_syncs, guard_calls


def _t() -> torch.Tensor:
    return torch.tensor([0.25, 0.75])


READS: dict[str, Callable[[], Any]] = {
    "tolist": lambda: _t().tolist(),
    "numpy": lambda: _t().numpy(),
    "cpu": lambda: _t().cpu(),
    "cpu().numpy()": lambda: _t().cpu().numpy(),
    "item": lambda: _t()[0].item(),
    "bool": lambda: bool(_t()[0]),
    "if": lambda: 1 if _t()[0] > 0 else 0,
    "int": lambda: int(_t()[0]),
    "float": lambda: float(_t()[0]),
    "complex": lambda: complex(_t()[0]),
    "index": lambda: [1, 2, 3][torch.tensor(1)],
    "operator.index": lambda: operator.index(torch.tensor(1)),
    "np.asarray": lambda: np.asarray(_t()),
    "format": lambda: f"{_t()[0]:.2f}",
    "repr": lambda: repr(_t()),
    "in": lambda: 0.25 in _t(),
    "to('cpu')": lambda: _t().to("cpu"),
    "to(device='cpu')": lambda: _t().to(device="cpu", non_blocking=True),
    "nonzero": lambda: _t().nonzero(),
    "torch.nonzero": lambda: torch.nonzero(_t()),
    "argwhere": lambda: torch.argwhere(_t()),
    "where(cond)": lambda: torch.where(_t() > 0.5),
    "masked_select": lambda: _t().masked_select(_t() > 0.5),
    "boolean mask": lambda: _t()[_t() > 0.5],
    "boolean mask write": lambda: _t().__setitem__(_t() > 0.5, 0.0),
    "unique": lambda: torch.unique(_t()),
    "bincount": lambda: torch.bincount(torch.tensor([0, 2])),
    "equal": lambda: torch.equal(_t(), _t()),
    "allclose": lambda: _t().allclose(_t()),
    "repeat_interleave": lambda: torch.repeat_interleave(torch.tensor([1, 2])),
    "max().tolist()": lambda: _t().max().tolist(),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_every_host_read_of_tensor_data_is_flagged(read: str) -> None:
    with pytest.raises(AssertionError, match=r"host reads of tensor data"), forbid_syncs():
        READS[read]()


def test_device_work_and_host_scalars_that_never_were_tensors_pass() -> None:
    rng = random.Random(0)
    x = torch.rand(4, 3, 5, 6)
    with forbid_syncs() as recorder:
        lam = rng.betavariate(1.0, 1.0)  # a host draw: a Python float, never a tensor
        side = round(6 * (1 - lam) ** 0.5)
        weights = torch.tensor([lam, 1 - lam], device=x.device)  # a host value sent to the device
        full = torch.full((4,), lam, device=x.device)
        mixed = x.lerp(x.flip(0), full.view(-1, 1, 1, 1))
        mixed[..., :side] = x.flip(0)[..., :side]  # slices with Python ints
        torch.where(weights[0] > 0.5, mixed, x)  # a select, not a read
        torch.randperm(4, generator=torch.Generator().manual_seed(0)).to(x.device, non_blocking=True)
        x[torch.tensor([1, 0, 3, 2])]  # an integer index gathers on the device
        shape = tuple(int(s) for s in x.shape)  # shapes are host metadata
        assert x.ndim == 4 and shape[0] == 4 and x.numel() > 0 and x.dtype == torch.float32
    assert "aten::lerp" in recorder.ops


def test_guard_calls_skips_the_first_calls_and_checks_the_rest() -> None:
    class Hook:
        def step(self, i: int, read: bool) -> int:
            return int(torch.tensor(i)) if read else i

    hook = Hook()
    log = guard_calls(hook, "step", skip=lambda i, read: i == 0)
    assert hook.step(0, True) == 0 and hook.step(1, False) == 1  # a read in the skipped call is allowed
    with pytest.raises(AssertionError, match=r"host reads of tensor data.*__int__"):
        hook.step(2, True)
    assert isinstance(log, GuardLog) and (log.skipped, log.checked) == (1, 1)
