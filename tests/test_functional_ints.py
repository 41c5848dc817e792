"""int16, int32 and int64 batches: CutMix selects their bits exactly, MixUp rounds to nearest and stays in range."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import main_property
from lightning_mix import functional as LF

INTS = [torch.int16, torch.int32, torch.int64]
PAIRINGS = ["random", "adjacent"]


def _values(dtype: torch.dtype, shape: tuple[int, ...], seed: int, span: int | None = None) -> torch.Tensor:
    """Random values over the dtype's whole range (or ``[-span, span]``), with both limits in every sample."""
    info = torch.iinfo(dtype)
    lo, hi = (info.min, info.max) if span is None else (-span, span)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(lo, hi, shape, generator=g, dtype=dtype) if span else _full_range(dtype, shape, g)
    x.view(shape[0], -1)[:, 0], x.view(shape[0], -1)[:, -1] = lo, hi
    return x


def _full_range(dtype: torch.dtype, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Uniform bits: every value of the dtype equally likely (`randint` cannot span int64 in full)."""
    bits = torch.randint(0, 2**16, (*shape, torch.iinfo(dtype).bits // 16), generator=g, dtype=torch.int64)
    out = torch.zeros(shape, dtype=torch.int64)
    for k in range(bits.shape[-1]):
        out = out.bitwise_left_shift(16).bitwise_or_(bits[..., k])
    return out.to(dtype)  # wraps to the dtype's range


def _expected_cutmix(x: torch.Tensor, params: LF.MixParams) -> torch.Tensor:
    """Each sample with its partner's box pasted in, written with slices from the parameters' ranges."""
    out = x.clone()
    for i in range(x.shape[0]):
        if bool(params.mixed[i]) and bool(params.cutmix[i]):
            (r0, r1), (c0, c1) = params.box[i].tolist()
            out[i, :, r0:r1, c0:c1] = x[int(params.partner[i]), :, r0:r1, c0:c1]
    return out


@main_property()
@given(
    st.sampled_from(INTS),
    st.integers(1, 6),
    st.sampled_from(["batch", "elem"]),
    st.sampled_from(PAIRINGS),
    st.integers(0, 2**31 - 1),
)
def test_cutmix_selects_integer_bits_exactly_over_the_whole_range(dtype, batch, mode, pairing, seed):
    x = _values(dtype, (batch, 2, 5, 7), seed)
    g = torch.Generator().manual_seed(seed)
    params = LF.sample_mix_params(batch, (5, 7), cutmix_alpha=1.0, mode=mode, pairing=pairing, generator=g)
    expected = _expected_cutmix(x, params)
    out = LF.mix_(x, params)
    assert out is x and out.dtype == dtype and torch.equal(out, expected)


@main_property()
@given(
    st.sampled_from(INTS),
    st.integers(1, 6),
    st.sampled_from(["batch", "elem"]),
    st.sampled_from(PAIRINGS),
    st.integers(0, 2**31 - 1),
)
def test_mixup_of_integers_rounds_to_nearest(dtype, batch, mode, pairing, seed):
    """Up to 2^20 float32 holds every value, difference and blend to within 1/8: the result is the nearest integer."""
    span = min(torch.iinfo(dtype).max, 2**20)
    x = _values(dtype, (batch, 3, 4, 4), seed, span=span)
    g = torch.Generator().manual_seed(seed)
    params = LF.sample_mix_params(batch, (), mixup_alpha=0.4, mode=mode, pairing=pairing, generator=g)
    lam = params.lam.double().view(-1, 1, 1, 1)
    exact = lam * x.double() + (1 - lam) * x.double()[params.partner]
    out = LF.mix_(x.clone(), params)
    assert out.dtype == dtype
    slack = 2.0 * span * 2.0**-24  # float32 error of a blend of values up to `span`, far below half a unit
    assert bool(((out.double() - exact).abs() <= 0.5 + slack).all())


@pytest.mark.parametrize("pairing", PAIRINGS)
@pytest.mark.parametrize("dtype", INTS)
def test_mixup_at_the_integer_limits_stays_in_range(dtype, pairing):
    """A blend of two values at the limit is that limit: float32 rounding must not wrap it to the other end."""
    info = torch.iinfo(dtype)
    x = torch.tensor([info.max, info.max, info.min, info.min, info.max - 1, info.min + 1], dtype=dtype)
    x = x.view(-1, 1, 1, 1).expand(-1, 2, 3, 3).contiguous()
    g = torch.Generator().manual_seed(0)
    params = LF.sample_mix_params(6, (), mixup_alpha=1.0, mode="elem", pairing="adjacent", generator=g)
    if pairing == "random":  # the same pairs, mixed by the general path
        params = LF.MixParams(**{**params.__dict__, "adjacent": False})
    out = LF.mix_(x.clone(), params)
    bound = 2.0**-23 * info.max  # the documented float32 precision beyond 2^24, about 1.2e-7 of the values
    assert out[:2].eq(out[0, 0, 0, 0]).all() and float(info.max - out[0, 0, 0, 0]) <= bound
    assert out[2:4].eq(out[2, 0, 0, 0]).all() and float(out[2, 0, 0, 0] - info.min) <= bound
    assert bool((out[:2] > 0).all()) and bool((out[2:4] < 0).all())  # no wrap-around
    if dtype == torch.int16:
        assert bool((out[:2] == info.max).all()) and bool((out[2:4] == info.min).all())


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_mixup_beyond_2_pow_24_is_as_accurate_as_float32(dtype):
    """The documented bound: beyond 2^24, MixUp of int32/int64 is accurate to about 2e-7 of the values."""
    g = torch.Generator().manual_seed(1)
    x = _values(dtype, (64, 3, 8, 8), seed=2)
    params = LF.sample_mix_params(64, (), mixup_alpha=1.0, mode="elem", generator=g)
    lam = params.lam.double().view(-1, 1, 1, 1)
    exact = lam * x.double() + (1 - lam) * x.double()[params.partner]
    out = LF.mix_(x.clone(), params).double()
    scale = torch.maximum(x.double().abs(), x.double()[params.partner].abs()).clamp_min(1.0)
    relative = ((out - exact).abs() / scale).max()
    assert float(relative) <= 2e-7
