"""Per-batch draws made on the host (``mode="batch"`` with a ``random.Random``): the box-only CutMix path, the
scalar MixUp path, their parity with the general kernels, and the statistics of the draws."""

from __future__ import annotations

import dataclasses
import math
import random
from unittest import mock

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from lightning_mix import functional as LF
from lightning_mix.functional import mixing as mixing_module
from lightning_mix.functional import params as params_module
from sync_guard import forbid_syncs

METHODS = {
    "mixup": {"mixup_alpha": 0.4},
    "cutmix": {"cutmix_alpha": 1.0},
    "minmax": {"cutmix_minmax": (0.2, 0.9)},
    "both": {"mixup_alpha": 1.0, "cutmix_alpha": 1.0},
    "both-uncorrected": {"mixup_alpha": 1.0, "cutmix_alpha": 0.5, "correct_lam": False},
}
DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.uint8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.complex64,
    torch.complex128,
]
LAYOUTS = ["contiguous", "channels_last", "transposed", "strided", "conj"]


def make_batch(shape: tuple[int, ...], dtype: torch.dtype, layout: str, seed: int) -> torch.Tensor:
    """Random values exact in ``dtype`` (small integers scaled), in the memory layout asked for."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randint(0, 100, shape, generator=g).to(torch.float64)
    if dtype.is_complex:
        x = torch.complex(values, -values.flip(0)).to(dtype)
    else:
        x = (values / 4 if dtype.is_floating_point else values).to(dtype)
    if layout == "channels_last" and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed":  # the last two dims swapped in memory
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    elif layout == "strided":  # gaps in memory: a slice of a larger tensor
        x = torch.cat([x, x], dim=-1)[..., ::2]
    elif layout == "conj" and dtype.is_complex:
        x = x.conj()
    return x


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    batch = draw(st.integers(1, 9))
    kind = draw(st.sampled_from(["signal", "image", "video", "video-cuboid"]))
    channels = draw(st.integers(1, 3))
    if kind == "signal":
        spatial: tuple[int, ...] = (draw(st.integers(1, 30)),)
    elif kind == "image":
        spatial = (draw(st.integers(1, 13)), draw(st.integers(1, 13)))
    else:
        spatial = (draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    cut_dims = (-3, -2, -1) if kind == "video-cuboid" else LF.default_cut_dims(2 + len(spatial))
    return {
        "shape": (batch, channels, *spatial),
        "cut_dims": cut_dims,
        "dtype": draw(st.sampled_from(DTYPES)),
        "layout": draw(st.sampled_from(LAYOUTS)),
        "method": draw(st.sampled_from(sorted(METHODS))),
        "pairing": draw(st.sampled_from(["random", "adjacent"])),
        "prob": draw(st.sampled_from([1.0, 0.7])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def draw_params(case: dict[str, object], sizes: tuple[int, ...]) -> LF.MixParams:
    config = METHODS[str(case["method"])]
    if "mixup_alpha" in config and len(config) == 1:
        sizes = ()
    return LF.sample_mix_params(
        int(case["shape"][0]),
        sizes,
        prob=float(case["prob"]),
        pairing=case["pairing"],
        generator=random.Random(case["seed"]),
        **config,
    )


@given(cases())
def test_host_draws_mix_bit_for_bit_as_the_general_kernels(case: dict[str, object]) -> None:
    x = make_batch(case["shape"], case["dtype"], str(case["layout"]), int(case["seed"]) % 1000)
    dims = case["cut_dims"]
    sizes = tuple(x.shape[d] for d in dims)
    params = draw_params(case, sizes)
    assert params.draw is not None and params.shared
    general = dataclasses.replace(params, draw=None)  # the same values, through the full-batch kernels
    fast = LF.mix_(x.clone(), params, cut_dims=dims)
    full = LF.mix_(x.clone(), general, cut_dims=dims)
    assert fast.dtype == x.dtype and fast.stride() == full.stride()
    # torch.equal compares integers bit for bit, floats value for value (finite values here; the general path
    # may turn a -0.0 it leaves in place into +0.0)
    assert torch.equal(fast.resolve_conj(), full.resolve_conj())


@given(cases())
def test_host_cutmix_in_blocks_of_one_pair_equals_the_general_kernels(case: dict[str, object]) -> None:
    """The pair swap walks large batches in cache-sized blocks on CPU: every block, and the odd sample, in place."""
    x = make_batch(case["shape"], case["dtype"], str(case["layout"]), int(case["seed"]) % 1000)
    dims = case["cut_dims"]
    params = draw_params({**case, "method": "cutmix", "pairing": "adjacent"}, tuple(x.shape[d] for d in dims))
    full = LF.mix_(x.clone(), dataclasses.replace(params, draw=None), cut_dims=dims)
    with mock.patch.object(mixing_module, "BLOCK_BYTES", 1):  # one pair per block
        blocked = LF.mix_(x.clone(), params, cut_dims=dims)
    assert torch.equal(blocked.resolve_conj(), full.resolve_conj())


def test_mixing_a_tensor_that_requires_grad_records_no_graph() -> None:
    x = torch.rand(4, 1, 6, 6, requires_grad=True)
    before = x.detach().clone()
    for config in METHODS.values():
        mixed = LF.mix_(x, LF.sample_mix_params(4, (6, 6), pairing="adjacent", generator=random.Random(3), **config))
        assert mixed is x and x.grad_fn is None and x.requires_grad
    assert not torch.equal(x.detach(), before)


@pytest.mark.parametrize("pairing", ["random", "adjacent"])
@pytest.mark.parametrize("batch", [2, 5, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.bfloat16, torch.complex64])
def test_per_batch_cutmix_pastes_the_partners_box_and_leaves_the_rest(
    pairing: str, batch: int, dtype: torch.dtype
) -> None:
    """An oracle built from the draw: inside the box each sample holds its partner's values, outside its own."""
    x = make_batch((batch, 3, 9, 11), dtype, "contiguous", batch)
    for seed in range(20):
        params = LF.sample_mix_params(batch, (9, 11), cutmix_alpha=1.0, pairing=pairing, generator=random.Random(seed))
        draw = params.draw
        assert draw is not None and draw.cutmix and draw.mixed
        (top, bottom), (left, right) = draw.box
        inside = torch.zeros(9, 11, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        expected = torch.where(inside, x[params.partner], x)
        assert torch.equal(LF.mix_(x.clone(), params), expected)
        assert torch.equal(params.box, torch.tensor(draw.box).expand(batch, 2, 2))
        assert params.lam.tolist() == [draw.lam] * batch
        assert draw.lam == pytest.approx(1 - (bottom - top) * (right - left) / 99, abs=1e-6)


def test_per_batch_mixup_blends_with_the_drawn_lambda() -> None:
    x = make_batch((6, 2, 5, 5), torch.float64, "contiguous", 0)
    params = LF.sample_mix_params(6, (), mixup_alpha=1.0, pairing="adjacent", generator=random.Random(1))
    lam = params.draw.lam
    torch.testing.assert_close(LF.mix_(x.clone(), params), lam * x + (1 - lam) * x[params.partner])


def test_an_unmixed_batch_is_left_as_it_is() -> None:
    x = make_batch((4, 3, 6, 6), torch.float32, "contiguous", 0)
    for config in METHODS.values():
        params = LF.sample_mix_params(4, (6, 6), prob=0.0, generator=random.Random(0), **config)
        assert params.draw is not None and not params.draw.mixed and params.lam.tolist() == [1.0] * 4
        assert not params.mixed.any() and not params.box.any()
        assert torch.equal(LF.mix_(x.clone(), params), x)
    one = LF.sample_mix_params(1, (6, 6), cutmix_alpha=1.0, generator=random.Random(0))
    assert not one.draw.mixed and torch.equal(LF.mix_(x[:1].clone(), one), x[:1])


def test_paste_mask_moves_only_the_box_of_integer_masks() -> None:
    masks = torch.randint(0, 4, (5, 7, 9))
    params = LF.sample_mix_params(5, (7, 9), cutmix_alpha=1.0, pairing="adjacent", generator=random.Random(3))
    general = dataclasses.replace(params, draw=None)
    assert torch.equal(LF.paste_mask_(masks.clone(), params), LF.paste_mask_(masks.clone(), general))


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_soft_targets_of_host_draws_equal_those_of_the_general_path(method: str, eps: float) -> None:
    y = torch.randint(0, 5, (7,))
    for seed in range(10):
        params = LF.sample_mix_params(7, (8, 8), generator=random.Random(seed), **METHODS[method])
        general = dataclasses.replace(params, draw=None)
        fast = LF.mix_target(y, params, num_classes=5, label_smoothing=eps)
        assert torch.equal(fast, LF.mix_target(y, general, num_classes=5, label_smoothing=eps))


# ------------------------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize(("method", "alpha"), [("mixup", 0.2), ("mixup", 1.0), ("cutmix", 0.4), ("cutmix", 2.0)])
def test_host_lambda_follows_beta(method: str, alpha: float) -> None:
    rng = random.Random(0)
    lams = [
        LF.sample_mix_params(2, (64, 64), correct_lam=False, generator=rng, **{f"{method}_alpha": alpha}).draw.lam
        for _ in range(3000)
    ]
    assert stats.kstest(lams, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def paper_boxes(n: int, size: int, alpha: float, seed: int) -> tuple[list[float], list[int]]:
    """An independent reference of the paper's rule: side S·√(1 − λ), centre uniform in [0, S), clipped."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.distributions.Beta(alpha, alpha).sample((n,))  # uses the global RNG: seed it
    side = torch.round(size * torch.sqrt(1 - lam))
    centre = torch.rand(n, 2, generator=g) * size
    start = torch.round(centre - side[:, None] / 2).clamp(0, size)
    stop = torch.round(centre - side[:, None] / 2 + side[:, None]).clamp(0, size)
    kept = (stop - start).prod(dim=1)
    return (1 - kept / size**2).tolist(), (stop - start)[:, 0].long().tolist()


def test_host_boxes_follow_the_papers_rule() -> None:
    torch.manual_seed(0)
    ref_lam, ref_side = paper_boxes(3000, 32, 1.0, 0)
    rng = random.Random(1)
    draws = [LF.sample_mix_params(2, (32, 32), cutmix_alpha=1.0, generator=rng).draw for _ in range(3000)]
    lams = [d.lam for d in draws]
    sides = [d.box[0][1] - d.box[0][0] for d in draws]
    assert stats.ks_2samp(lams, ref_lam).pvalue > 1e-3  # the corrected λ (clipped boxes)
    assert stats.ks_2samp(sides, ref_side).pvalue > 1e-3  # the kept side along height
    # every position is equally likely to hold the centre: the first row is covered as often as the last
    coverage = torch.zeros(32)
    for d in draws:
        (top, bottom), _ = d.box
        coverage[top:bottom] += 1
    assert abs(coverage[0] - coverage[-1]) < 4 * math.sqrt(coverage[0])


def test_host_minmax_boxes_are_inside_with_uniform_side_ratios() -> None:
    rng = random.Random(2)
    sides = []
    for _ in range(2000):
        draw = LF.sample_mix_params(2, (40, 50), cutmix_minmax=(0.2, 0.8), generator=rng).draw
        (top, bottom), (left, right) = draw.box
        assert 0 <= top < bottom <= 40 and 0 <= left < right <= 50
        assert draw.lam == pytest.approx(1 - (bottom - top) * (right - left) / 2000, abs=1e-6)
        sides.append(bottom - top)
    assert min(sides) == 8 and max(sides) == 32  # round(0.2 · 40) to round(0.8 · 40), both reached
    assert abs(sum(sides) / len(sides) - 20) < 0.5  # uniform ratios: the mean side is 0.5 · 40


def test_prob_and_switch_prob_decide_per_batch() -> None:
    rng = random.Random(3)
    draws = [
        LF.sample_mix_params(
            4, (8, 8), mixup_alpha=1.0, cutmix_alpha=1.0, prob=0.6, switch_prob=0.3, generator=rng
        ).draw
        for _ in range(4000)
    ]
    mixed = [d for d in draws if d.mixed]
    assert abs(len(mixed) / 4000 - 0.6) < 0.03
    assert abs(sum(d.cutmix for d in mixed) / len(mixed) - 0.3) < 0.03


# ------------------------------------------------------------------------------- reproducibility, host reads


def test_host_draws_are_a_function_of_the_seed_only() -> None:
    def draw(seed: int) -> LF.MixParams:
        return LF.sample_mix_params(6, (9, 9), mixup_alpha=1.0, cutmix_alpha=1.0, generator=random.Random(seed))

    assert draw(5).draw == draw(5).draw and draw(5).draw != draw(6).draw
    torch.manual_seed(0)
    state = torch.get_rng_state()
    draw(5)
    assert torch.equal(torch.get_rng_state(), state)  # PyTorch's global generator is not touched


@pytest.mark.parametrize("pairing", ["random", "adjacent"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_host_draws_and_their_kernels_read_nothing_on_the_host(method: str, pairing: str) -> None:
    x = make_batch((5, 3, 8, 8), torch.bfloat16, "contiguous", 0)
    y = torch.randint(0, 5, (5,))
    with forbid_syncs() as recorder:
        params = LF.sample_mix_params(5, (8, 8), pairing=pairing, generator=random.Random(0), **METHODS[method])
        LF.mix_(x, params, workspace=LF.Workspace())
        LF.mix_target(y, params, num_classes=5, validate_args=False)
    assert recorder.ops
    meta = torch.empty(5, 3, 8, 8, device="meta")  # no values at all: any read would raise
    LF.mix_(meta, params.to("meta"))


def test_per_sample_mode_with_a_random_generator_draws_on_the_device() -> None:
    params = LF.sample_mix_params(4, (8, 8), cutmix_alpha=1.0, mode="elem", generator=random.Random(0))
    again = LF.sample_mix_params(4, (8, 8), cutmix_alpha=1.0, mode="elem", generator=random.Random(0))
    assert params.draw is None and not params.shared and torch.equal(params.box, again.box)


def test_adjacent_partners_are_cached_per_batch_size_and_device() -> None:
    first = LF.sample_mix_params(6, (), mixup_alpha=1.0, pairing="adjacent", generator=random.Random(0))
    second = LF.sample_mix_params(6, (), mixup_alpha=1.0, pairing="adjacent", generator=random.Random(1))
    assert first.partner is second.partner and first.partner.tolist() == [1, 0, 3, 2, 5, 4]
    assert LF.sample_partners(6, pairing="adjacent") is not first.partner  # the public function returns its own
    with torch.inference_mode():
        params_module._cached_adjacent_partners.cache_clear()
        made = LF.sample_mix_params(3, (), mixup_alpha=1.0, pairing="adjacent", generator=random.Random(0))
    assert not made.partner.is_inference()  # usable outside inference mode afterwards


def test_a_generator_of_another_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Expected `generator` to be None, a torch.Generator or a random.Random"):
        LF.sample_mix_params(4, (), mixup_alpha=1.0, generator=0)


def test_a_mixup_step_leaves_an_integer_mask_as_it_is_with_mixed_labels() -> None:
    """With both methods, a batch the host draw gives to MixUp pastes nothing into the mask (labels mix via λ)."""
    from lightning import LightningModule, Trainer

    from lightning_mix import MixCallback

    callback = MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.5, seed=0)
    trainer = Trainer(callbacks=[callback], logger=False, enable_progress_bar=False)
    trainer.training = True
    seen = set()
    for step in range(12):
        mask = torch.randint(0, 3, (4, 6, 6))
        batch = [torch.rand(4, 3, 6, 6), mask.clone()]
        callback.on_train_batch_start(trainer, LightningModule(), batch, step)
        draw = callback.last_params.draw
        assert draw is not None and draw.mixed
        seen.add(draw.cutmix)
        own = batch[1].as_subclass(torch.Tensor)
        if not draw.cutmix:  # MixUp: the mask keeps its own labels, bit for bit
            assert torch.equal(own, mask)
        else:  # CutMix: the partner's box pasted
            (top, bottom), (left, right) = draw.box
            inside = torch.zeros(6, 6, dtype=torch.bool)
            inside[top:bottom, left:right] = True
            assert torch.equal(own, torch.where(inside, mask[callback.last_params.partner], mask))
    assert seen == {True, False}
