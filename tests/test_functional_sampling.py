"""Statistical tests of the sampling: fixed seeds, honest tolerances (each test fails with probability ~1e-4)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import stats

from lightning_mix import functional as LF
from lightning_mix.functional.params import _paper_boxes

P_FLOOR = 1e-4


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
@pytest.mark.parametrize("which", ["mixup", "cutmix"])
def test_lambda_follows_beta(alpha, which):
    g = torch.Generator().manual_seed(1)
    kwargs = {f"{which}_alpha": alpha}
    params = LF.sample_mix_params(20000, (64, 64), mode="elem", correct_lam=False, generator=g, **kwargs)
    lam = params.lam.double().numpy()
    dist = stats.beta(alpha, alpha)
    # 20 equiprobable bins: robust to float32 output, which rounds the top 2% of Beta(0.2, 0.2) onto 1.0
    edges = dist.ppf(np.linspace(0, 1, 21))
    counts = np.histogram(lam, bins=edges)[0]
    assert stats.chisquare(counts).pvalue > P_FLOOR
    if alpha >= 1:  # no mass piles up at the float32 ends: the KS test applies as is
        assert stats.kstest(lam, dist.cdf).pvalue > P_FLOOR


def test_batch_mode_draws_one_lambda_per_call_from_beta():
    g = torch.Generator().manual_seed(2)
    lams = [float(LF.sample_mix_params(3, (), mixup_alpha=0.5, generator=g).lam[0]) for _ in range(3000)]
    assert stats.kstest(lams, stats.beta(0.5, 0.5).cdf).pvalue > P_FLOOR


@pytest.mark.parametrize("size", [1, 2, 7, 13])
def test_box_centres_are_uniform_over_every_position_including_edges(size):
    g = torch.Generator().manual_seed(size)
    n = 20000
    # λ that gives a one-pixel side makes the box [c, c + 1): the box start *is* the centre
    lam = torch.full((n,), 1.0 - 1.0 / size**2)
    box = _paper_boxes(lam, (size, size), g, None)
    assert bool((box[..., 1] - box[..., 0] == 1).all())
    for dim in range(2):
        counts = torch.bincount(box[:, dim, 0], minlength=size)
        assert counts.shape[0] == size
        if size > 1:
            assert stats.chisquare(counts.numpy()).pvalue > P_FLOOR
        assert counts[0] > 0 and counts[-1] > 0


def test_box_coverage_of_non_square_images_is_symmetric():
    """Every pixel's chance of being pasted mirrors across both axes (no H/W swap, no off-by-one)."""
    g = torch.Generator().manual_seed(5)
    shape = (4000, 1, 5, 11)
    params = LF.sample_mix_params(shape[0], shape[-2:], cutmix_alpha=1.0, mode="elem", generator=g)
    cover = LF.box_mask(params, shape, (-2, -1)).double().mean(0)[0]
    torch.testing.assert_close(cover, cover.flip(0), atol=0.03, rtol=0)
    torch.testing.assert_close(cover, cover.flip(1), atol=0.03, rtol=0)
    assert float(cover.min()) > 0.05  # corners are reachable


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_prob_mixes_the_requested_fraction_once(mode):
    g = torch.Generator().manual_seed(7)
    draws = 4000 if mode == "batch" else 1
    batch = 1 if mode == "batch" else 20000
    batch = max(batch, 2)
    mixed = torch.cat(
        [
            LF.sample_mix_params(batch, (8, 8), cutmix_alpha=1.0, prob=0.5, mode=mode, generator=g).mixed
            for _ in range(draws)
        ]
    )
    if mode == "batch":
        per_call = mixed.view(draws, batch)
        assert bool((per_call == per_call[:, :1]).all())  # all or nothing within a batch
        hits, n = int(per_call[:, 0].sum()), draws
    else:
        hits, n = int(mixed.sum()), mixed.numel()
    assert stats.binomtest(hits, n, 0.5).pvalue > P_FLOOR  # a half, not a quarter


def test_switch_prob_splits_the_ops():
    g = torch.Generator().manual_seed(8)
    params = LF.sample_mix_params(
        20000, (8, 8), mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.3, mode="elem", generator=g
    )
    hits = int(params.cutmix.sum())
    assert stats.binomtest(hits, 20000, 0.3).pvalue > P_FLOOR


def test_partner_is_uniform_over_the_other_samples():
    g = torch.Generator().manual_seed(9)
    counts = torch.zeros(6, dtype=torch.long)
    for _ in range(6000):
        counts[int(LF.sample_partners(6, generator=g)[0])] += 1
    assert counts[0] == 0
    assert stats.chisquare(counts[1:].numpy()).pvalue > P_FLOOR


def test_minmax_side_ratios_are_uniform_and_boxes_inside():
    g = torch.Generator().manual_seed(10)
    size = 1000
    params = LF.sample_mix_params(20000, (size, size), cutmix_minmax=(0.2, 0.6), mode="elem", generator=g)
    sides = (params.box[..., 1] - params.box[..., 0]).double() / size
    assert bool((params.box[..., 0] >= 0).all()) and bool((params.box[..., 1] <= size).all())
    for dim in range(2):
        assert stats.kstest(sides[:, dim].numpy(), stats.uniform(0.2, 0.4).cdf).pvalue > 1e-3
    area = sides.prod(1)
    torch.testing.assert_close(params.lam.double(), 1 - area, atol=1e-6, rtol=0)


def test_same_seed_same_parameters_and_no_global_rng_side_effect():
    torch.manual_seed(123)
    expected_global = torch.rand(3)
    torch.manual_seed(123)
    draws = [
        LF.sample_mix_params(
            16, (8, 8), mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", generator=torch.Generator().manual_seed(4)
        )
        for _ in range(2)
    ]
    assert torch.equal(torch.rand(3), expected_global)
    for field in ("lam", "partner", "cutmix", "mixed", "box"):
        assert torch.equal(getattr(draws[0], field), getattr(draws[1], field))


# ---------------------------------------------------------------- CutMix box geometry against the paper's rule

GEOMETRY_SIZES = {1: (8192,), 2: (960, 1280), 3: (600, 800, 1000)}  # big enough that pixel rounding is negligible


def _reference_boxes(alpha: float, sizes: tuple[int, ...], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The paper's boxes, written from its rule: side ``S·(1 − λ)^(1/D)``, centre ``U(0, S)``, clipped to the image.

    Returns the clipped ``[lo, hi)`` ranges ``(n, D)`` each, in pixels (continuous).
    """
    rng = np.random.default_rng(seed)
    lam = rng.beta(alpha, alpha, size=n)
    extent = np.asarray(sizes, dtype=np.float64)
    side = extent * (1.0 - lam)[:, None] ** (1.0 / len(sizes))
    centre = rng.uniform(0.0, extent, size=(n, len(sizes)))
    return np.clip(centre - side / 2, 0.0, extent), np.clip(centre + side / 2, 0.0, extent)


def _library_boxes(mode: str, n: int, sizes: tuple[int, ...], seed: int, **kwargs: float) -> LF.MixParams:
    """``n`` independent CutMix draws of the library: ``n`` samples in one call, or one call per draw."""
    g = torch.Generator().manual_seed(seed)
    if mode == "elem":
        return LF.sample_mix_params(n, sizes, mode="elem", generator=g, **kwargs)
    draws = [LF.sample_mix_params(2, sizes, mode="batch", generator=g, **kwargs) for _ in range(n)]
    fields = {name: torch.cat([getattr(d, name)[:1] for d in draws]) for name in ("lam", "cutmix", "mixed", "box")}
    return dataclasses.replace(draws[0], partner=torch.arange(n), **fields)


def _geometry(lo: np.ndarray, hi: np.ndarray, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The statistics compared: the corrected λ, and per dim the clipped side and the box midpoint, over ``S``."""
    extent = np.asarray(sizes, dtype=np.float64)
    stats_: dict[str, np.ndarray] = {"corrected lam": 1.0 - np.prod(hi - lo, axis=1) / np.prod(extent)}
    for d in range(len(sizes)):
        stats_[f"side {d}"] = (hi[:, d] - lo[:, d]) / extent[d]
        stats_[f"midpoint {d}"] = (hi[:, d] + lo[:, d]) / 2 / extent[d]
    return stats_


@pytest.mark.parametrize(
    ("mode", "dims", "kwargs"),
    [
        ("elem", 1, {"cutmix_alpha": 1.0}),
        ("elem", 2, {"cutmix_alpha": 1.0}),
        ("elem", 2, {"cutmix_alpha": 0.3}),
        ("elem", 2, {"cutmix_alpha": 2.0, "mixup_alpha": 0.5, "switch_prob": 0.6}),
        ("elem", 3, {"cutmix_alpha": 1.0}),
        ("batch", 1, {"cutmix_alpha": 1.0}),
        ("batch", 2, {"cutmix_alpha": 1.0}),
        ("batch", 3, {"cutmix_alpha": 0.5}),
    ],
)
def test_box_geometry_and_corrected_lambda_follow_the_paper(mode: str, dims: int, kwargs: dict[str, float]) -> None:
    """Two-sample KS tests of the library's boxes against an independent reference of the paper's rule.

    With the sizes above, 20000 draws (1500 per-batch calls) reject boxes a quarter too small or too large, or
    centres not uniform, with p < 1e-30, while the pixel rounding of the library stays far below the test's
    resolution.
    """
    sizes = GEOMETRY_SIZES[dims]
    n = 20000 if mode == "elem" else 1500
    params = _library_boxes(mode, n, sizes, seed=100 + dims, **kwargs)
    cut = params.cutmix & params.mixed
    assert int(cut.sum()) > n // 3
    box = params.box[cut].double().numpy()
    ours = _geometry(box[..., 0], box[..., 1], sizes)
    # λ as the library reports it, corrected to the pasted box: it must equal the box's own area
    np.testing.assert_allclose(params.lam[cut].double().numpy(), ours["corrected lam"], atol=1e-6)
    lo, hi = _reference_boxes(kwargs["cutmix_alpha"], sizes, n, seed=dims)
    reference = _geometry(lo, hi, sizes)
    for name, values in ours.items():
        assert stats.ks_2samp(values, reference[name]).pvalue > P_FLOOR, name
