"""Time ``MixCallback.on_train_batch_start`` on fresh batches as they arrive from a ``DataLoader``.

Batches come from the main process (ordinary memory), from worker processes (shared memory) and, on CUDA, from
pinned memory moved to the device. Each is timed with the hook as it is (fresh batches are mixed in place) and
with the input forced through a copy (what every step of a held batch costs). Run:

    python bench/bench_hook_memory.py --batch 64 --size 224 --steps 20
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Any
from unittest import mock

import torch
from lightning import LightningModule, Trainer
from torch.utils.data import DataLoader, Dataset

from lightning_mix import CutMixCallback, MixUpCallback
from lightning_mix import callback as callback_module


class Images(Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, n: int, size: int) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.rand(3, self.size, self.size), i % 10


def time_hook(loader: DataLoader[Any], method: str, device: str, copy: bool) -> tuple[float, bool]:
    cb = CutMixCallback(alpha=1.0, num_classes=10, seed=0) if method == "cutmix" else MixUpCallback(num_classes=10)
    trainer = Trainer(callbacks=[cb], logger=False, enable_progress_bar=False, accelerator="cpu")
    trainer.training = True
    module, times, in_place = LightningModule(), [], True
    # CPU time of this thread on CPU (the loader's workers and other processes on a busy machine do not count)
    clock = time.perf_counter if device == "cuda" else time.thread_time
    patch = mock.patch.object(callback_module, "owns_memory", return_value=False) if copy else contextlib.nullcontext()
    with patch:
        batches = iter(loader)  # (not `enumerate`, whose reused result tuple would keep the loader's batch alive)
        for i in range(len(loader)):
            x, y = next(batches)
            batch = [x.to(device, non_blocking=True), y.to(device, non_blocking=True)]
            del x, y
            ptr = batch[0].data_ptr()
            if device == "cuda":
                torch.cuda.synchronize()
            start = clock()
            cb.on_train_batch_start(trainer, module, batch, i)
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step allocates the workspace and checks the input
                times.append(clock() - start)
            in_place &= batch[0].data_ptr() == ptr
    return statistics.median(times) * 1e3, in_place


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = Images(args.batch * args.steps, args.size)
    sources: dict[str, tuple[dict[str, Any], str]] = {
        "main process": ({}, "cpu"),
        "2 workers (shared memory)": ({"num_workers": 2}, "cpu"),
    }
    if torch.cuda.is_available():
        sources["pinned, moved to CUDA"] = ({"pin_memory": True, "num_workers": 2}, "cuda")
        sources["2 workers, pinned (CPU)"] = ({"pin_memory": True, "num_workers": 2}, "cpu")
    shape = f"{args.batch}x3x{args.size}x{args.size}"
    print(f"hook time per step, ms (median; CPU time of the hook's thread on CPU), batch {shape} float32")
    print(f"{'source':28} {'method':7} {'as is':>8} {'in place':>9} {'copied':>8}")
    for name, (kwargs, device) in sources.items():
        for method in ("cutmix", "mixup"):
            loader = DataLoader(data, batch_size=args.batch, **kwargs)
            as_is, in_place = time_hook(loader, method, device, copy=False)
            copied, _ = time_hook(loader, method, device, copy=True)
            print(f"{name:28} {method:7} {as_is:8.2f} {in_place!s:>9} {copied:8.2f}")


if __name__ == "__main__":
    main()
