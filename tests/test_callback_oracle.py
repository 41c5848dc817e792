"""Oracle tests: every output value is traced back to its source, with no expected value computed by the library.

Sample ``i`` of a batch of ``B`` is the one-hot image of its own position: channel ``i`` is 1 and the other ``B - 1``
id channels are 0, and a last channel holds the pixel's position ``h·W + w``. Any mixed pixel then reads, channel by
channel, the weight of every sample it came from, and its last channel shows whether it came from the same place.
The label of sample ``i`` is class ``i`` (its mask holds ``i`` everywhere), so the soft target a callback builds
must equal the traced weights: averaged over the pixels for a class target, pixel by pixel for a mask.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_mix import CutMixCallback, MixCallback, MixedLabels, MixUpCallback
from tiny_trainer import make_trainer

B, H, W = 5, 6, 7  # an odd batch: the last sample borrows one way
ATOL = 1e-6


def id_batches(n_batches: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """Images ``(n, B + 1, H, W)``, class labels ``(n,)`` and masks ``(n, H, W)`` for batches of ``B``."""
    position = torch.arange(B).repeat(n_batches)
    images = torch.cat(
        (F.one_hot(position, B).float()[:, :, None, None].expand(-1, -1, H, W), torch.zeros(len(position), 1, H, W)),
        dim=1,
    )
    images[:, B] = torch.arange(H * W, dtype=torch.float32).view(H, W)
    masks = position[:, None, None].expand(-1, H, W).clone()
    return images.contiguous(), position, masks


class Recorder(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.num_classes = B
        self.seen: list[tuple[Tensor, Tensor]] = []

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        self.seen.append((x.detach().clone(), y.detach().clone()))
        return (self.weight * x).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def fit(callback: MixCallback, targets: str = "labels") -> list[tuple[Tensor, Tensor]]:
    images, labels, masks = id_batches()
    loader = DataLoader(TensorDataset(images, labels if targets == "labels" else masks), batch_size=B)
    model = Recorder()
    make_trainer(callback, max_epochs=2).fit(model, loader)
    assert len(model.seen) == 4
    return model.seen


def trace(x: Tensor) -> dict[str, Any]:
    """What the pixels of one mixed sample ``(B + 1, H, W)`` say about their sources."""
    weights, position = x[:B], x[B]
    torch.testing.assert_close(position, torch.arange(H * W, dtype=torch.float32).view(H, W), rtol=0, atol=1e-4)
    assert bool((weights >= -ATOL).all())
    torch.testing.assert_close(weights.sum(0), torch.ones(H, W), rtol=0, atol=ATOL)
    sources = [int(s) for s in torch.arange(B)[weights.abs().amax((1, 2)) > ATOL]]
    one_hot = bool(((weights == 0) | (weights == 1)).all())
    return {"weights": weights, "sources": sources, "cut": one_hot, "fractions": weights.mean((1, 2))}


def check_batch(x: Tensor, kind: str, mode: str, pairing: str) -> list[dict[str, Any]]:
    """Trace every sample of a batch and check what any correct CutMix/MixUp must give; return the traces."""
    traces = []
    for i in range(B):
        t = trace(x[i])
        assert i in t["sources"] or t["cut"]  # a sample keeps some of itself, or a box covering it all
        others = [s for s in t["sources"] if s != i]
        assert len(others) <= 1, f"sample {i} should be mixed with one other at most, got {t['sources']}"
        t["partner"] = others[0] if others else None
        if t["partner"] is None:  # a CutMix box clipped to nothing (or of side 0) pastes no pixel
            assert t["cut"] and kind != "mixup"
            traces.append(t)
            continue
        partner_share = t["weights"][t["partner"]]
        if t["cut"]:  # CutMix: the partner's pixels fill an axis-aligned box at the same places
            assert kind != "mixup"
            rows, cols = partner_share.any(1).nonzero().flatten(), partner_share.any(0).nonzero().flatten()
            box = partner_share[int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]
            assert bool((box == 1).all()) and float(partner_share.sum()) == box.numel()
        else:  # MixUp: one weight for every pixel
            assert kind != "cutmix"
            torch.testing.assert_close(partner_share, partner_share[0, 0].expand(H, W), rtol=0, atol=ATOL)
        traces.append(t)
    partners = [t["partner"] for t in traces]
    if pairing == "adjacent":
        assert all(p in (None, q) for p, q in zip(partners, [1, 0, 3, 2, 3], strict=True))
    else:  # a random pairing: partners swap, but the odd one out, which borrows one way
        known = [(i, p) for i, p in enumerate(partners) if p is not None and partners[p] is not None]
        assert sum(partners[p] == i for i, p in known) >= len(known) - 1
    if mode == "batch":  # one op, one λ or one box for the whole batch
        assert len({t["cut"] for t in traces}) == 1
        shares = torch.stack(
            [
                t["weights"][p if p is not None else i] * (p is not None)
                for i, (t, p) in enumerate(zip(traces, partners, strict=True))
            ]
        )
        torch.testing.assert_close(shares, shares[:1].expand_as(shares), rtol=0, atol=ATOL)
    return traces


CALLBACKS: dict[str, tuple[str, Callable[..., MixCallback]]] = {
    "cutmix": ("cutmix", lambda **kw: CutMixCallback(alpha=1.0, **kw)),
    "mixup": ("mixup", lambda **kw: MixUpCallback(alpha=1.0, **kw)),
    "both": ("both", lambda **kw: MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, **kw)),
    "minmax": ("cutmix", lambda **kw: CutMixCallback(alpha=0.0, cutmix_minmax=(0.3, 0.9), **kw)),
}


@pytest.mark.parametrize("pairing", ["random", "adjacent"])
@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_soft_targets_equal_the_traced_pixel_fractions(name: str, mode: str, pairing: str) -> None:
    kind, make = CALLBACKS[name]
    seen = fit(make(mode=mode, pairing=pairing, targets="soft", seed=3))
    ops = set()
    for x, y in seen:
        assert y.shape == (B, B) and y.dtype == torch.float32
        for i, t in enumerate(check_batch(x, kind, mode, pairing)):
            torch.testing.assert_close(y[i], t["fractions"], rtol=0, atol=ATOL)  # the weight of every class
            ops.add(t["cut"])
    if kind == "both" and mode == "elem":
        assert ops == {True, False}  # both ops were traced


@pytest.mark.parametrize("pairing", ["random", "adjacent"])
@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_mixed_labels_carry_the_traced_partner_and_share(name: str, mode: str, pairing: str) -> None:
    """The default `targets="labels"`: own labels as they were, the traced partner's label and own share λ."""
    kind, make = CALLBACKS[name]
    seen = fit(make(mode=mode, pairing=pairing, seed=4))
    for x, y in seen:
        assert isinstance(y, MixedLabels) and torch.equal(y.labels, torch.arange(B))
        for i, t in enumerate(check_batch(x, kind, mode, pairing)):
            if t["partner"] is not None:
                assert int(y.partner_labels[i]) == t["partner"]
            torch.testing.assert_close(y.lam[i], t["fractions"][i], rtol=0, atol=ATOL)


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_label_smoothing_spreads_the_traced_fractions(mode: str) -> None:
    eps = 0.2
    seen = fit(MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, label_smoothing=eps, targets="soft", seed=5))
    for x, y in seen:
        for i, t in enumerate(check_batch(x, "both", mode, "random")):
            torch.testing.assert_close(y[i], t["fractions"] * (1 - eps) + eps / B, rtol=0, atol=ATOL)


@pytest.mark.parametrize("pairing", ["random", "adjacent"])
@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_cutmix_pastes_the_mask_of_the_traced_source_pixel(mode: str, pairing: str) -> None:
    seen = fit(CutMixCallback(alpha=1.0, mode=mode, pairing=pairing, targets="soft", seed=7), targets="masks")
    for x, y in seen:
        assert y.dtype == torch.long and y.shape == (B, H, W)
        check_batch(x, "cutmix", mode, pairing)
        source = x[:, :B].argmax(1)  # the sample every image pixel came from
        assert torch.equal(y, source)


@pytest.mark.parametrize("pairing", ["random", "adjacent"])
@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_per_pixel_soft_masks_equal_the_traced_pixel_weights(mode: str, pairing: str) -> None:
    callback = MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, pairing=pairing, targets="soft", seed=9)
    seen = fit(callback, targets="masks")
    for x, y in seen:
        assert y.shape == (B, B, H, W) and y.dtype == torch.float32
        check_batch(x, "both", mode, pairing)
        torch.testing.assert_close(y, x[:, :B], rtol=0, atol=ATOL)


def test_unmixed_steps_trace_to_their_own_sample() -> None:
    seen = fit(MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, stop_epoch=1, targets="soft", seed=0))
    images, labels, _ = id_batches()
    for x, y in seen[2:]:  # the second epoch is outside the schedule
        assert torch.equal(x, images[:B]) and torch.equal(y, F.one_hot(labels[:B], B).float())
