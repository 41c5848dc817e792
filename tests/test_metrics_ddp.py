"""MixedAccuracy synchronised across two CPU processes (gloo) equals the single-process result on all data."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_mix import MixedAccuracy
from lightning_mix import functional as LF

WORLD_SIZE = 2
CONFIGS = [{"num_classes": 5}, {"top_k": 2, "label_smoothing": 0.1}, {"mode": "argmax"}]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Uneven batches: mixed soft targets, smoothed ones, and class indices."""
    g = torch.Generator().manual_seed(0)
    batches = []
    for size in (7, 4, 9, 5, 3):
        preds, y = torch.randn(size, 5, generator=g), torch.randint(5, (size,), generator=g)
        params = LF.sample_mix_params(size, (), mixup_alpha=1.0, mode="elem", generator=g)
        batches.append((preds, LF.mix_target(y, params, num_classes=5, label_smoothing=0.1 * (size % 2))))
        batches.append((preds, y))
    return batches


def _run(rank: int, port: int, expected: list[torch.Tensor]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE)
    try:
        metrics = [MixedAccuracy(**config) for config in CONFIGS]
        batches = _batches()
        for preds, target in batches[:3] if rank == 0 else batches[3:]:  # uneven shares: 3 and 7 batches
            for metric in metrics:
                metric.update(preds, target)
        for metric, value in zip(metrics, expected, strict=True):
            torch.testing.assert_close(metric.compute(), value)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="needs torch.distributed")
def test_compute_is_synced_across_two_processes():
    expected = []
    for config in CONFIGS:
        metric = MixedAccuracy(**config)
        for preds, target in _batches():
            metric.update(preds, target)
        expected.append(metric.compute())
    assert len({round(v.item(), 6) for v in expected}) == len(CONFIGS)  # the configurations really differ
    mp.spawn(_run, args=(_free_port(), expected), nprocs=WORLD_SIZE, join=True)
