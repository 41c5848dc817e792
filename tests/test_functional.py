"""Kernel behaviour: parity with torchvision v2, host-sync freedom, layouts, and every error message."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torchvision.transforms import v2

from lightning_mix import functional as LF
from lightning_mix.functional.params import MixParams
from sync_guard import forbid_syncs


def _params_like_torchvision(batch: int, lam: float, box: tuple[int, int, int, int] | None, sizes) -> MixParams:
    """Our parameters for torchvision's pairing (``roll(1, 0)``: sample i takes from i - 1) and its λ/box."""
    cut = box is not None
    if cut:
        x1, y1, x2, y2 = box
        boxes = torch.tensor([[[y1, y2], [x1, x2]]]).expand(batch, 2, 2)
    else:
        boxes = torch.zeros(batch, 0, 2, dtype=torch.long)
    return MixParams(
        lam=torch.full((batch,), lam),
        partner=torch.arange(batch).roll(1),
        cutmix=torch.full((batch,), cut),
        mixed=torch.ones(batch, dtype=torch.bool),
        box=boxes.contiguous(),
        cut_sizes=tuple(sizes) if cut else (),
        has_mixup=not cut,
        has_cutmix=cut,
    )


def _make_params(transform, x):
    """torchvision's drawn parameters: ``make_params`` since 0.21, ``_get_params`` before (0.18 is our floor)."""
    make = getattr(transform, "make_params", None) or transform._get_params
    return make([x])


def _transform(transform):
    """torchvision's parameterised apply: ``transform`` since 0.21, ``_transform`` before."""
    return getattr(transform, "transform", None) or transform._transform


def _start_ns(event):
    """A profiler event's start in ns: ``start_ns`` on recent torch, ``start_us`` on torch 2.3."""
    return event.start_ns() if hasattr(event, "start_ns") else 1000 * event.start_us()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape", [(6, 3, 16, 16), (5, 2, 9, 23)])
def test_cutmix_matches_torchvision_v2(seed, shape):
    torch.manual_seed(seed)
    x, y = torch.rand(shape), torch.randint(4, (shape[0],))
    tv = v2.CutMix(alpha=1.0, num_classes=4)
    params = _make_params(tv, x)
    tv_x, tv_y = (
        _transform(tv)(x, {**params, "labels": y, "batch_size": shape[0]}),
        tv._mixup_label(y, lam=params["lam_adjusted"]),
    )
    ours = _params_like_torchvision(shape[0], params["lam_adjusted"], params["box"], shape[-2:])
    assert torch.equal(LF.mix_(x.clone(), ours), tv_x)
    torch.testing.assert_close(LF.mix_target(y, ours, num_classes=4), tv_y)


@pytest.mark.parametrize("seed", range(5))
def test_mixup_matches_torchvision_v2(seed):
    torch.manual_seed(seed)
    x, y = torch.rand(6, 3, 8, 8), torch.randint(5, (6,))
    tv = v2.MixUp(alpha=0.4, num_classes=5)
    params = _make_params(tv, x)
    tv_x = _transform(tv)(x, {**params, "labels": y, "batch_size": 6})
    tv_y = tv._mixup_label(y, lam=params["lam"])
    ours = _params_like_torchvision(6, params["lam"], None, ())
    torch.testing.assert_close(LF.mix_(x.clone(), ours), tv_x)
    torch.testing.assert_close(LF.mix_target(y, ours, num_classes=5), tv_y)


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize(
    "config",
    [
        {"mixup_alpha": 1.0},
        {"cutmix_alpha": 1.0},
        {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "prob": 0.5},
        {"cutmix_minmax": (0.2, 0.8)},
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8])
@pytest.mark.parametrize(("pairing", "batch"), [("random", 8), ("adjacent", 8), ("adjacent", 7)])
def test_mixing_path_never_reads_values_on_the_host(pairing, batch, mode, config, dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, 12, 10) * 100).to(dtype)
    y = torch.randint(5, (batch,))
    ws = LF.Workspace()
    with forbid_syncs() as recorder:
        params = LF.sample_mix_params(batch, x.shape[-2:], mode=mode, pairing=pairing, generator=g, **config)
        LF.mix_(x, params, workspace=ws)
        LF.mix_target(y, params, num_classes=5, validate_args=False)
    assert recorder.ops  # the guard saw the work
    assert params.adjacent == (pairing == "adjacent")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8])
@pytest.mark.parametrize(("pairing", "batch"), [("random", 4), ("adjacent", 4), ("adjacent", 5)])
@pytest.mark.parametrize(("mode", "cut_dims"), [("elem", (-2, -1)), ("batch", (-2, -1)), ("elem", (-3, -2, -1))])
def test_mixing_runs_on_meta_tensors(mode, cut_dims, pairing, batch, dtype):
    """Meta tensors have no values: any host read or data-dependent shape would raise."""
    x = torch.empty(batch, 3, 4, 8, 8, device="meta", dtype=dtype)
    sizes = x.shape[cut_dims[0] :]
    params = LF.sample_mix_params(batch, sizes, mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, pairing=pairing)
    out = LF.mix_(x, params.to("meta"), cut_dims=cut_dims)
    soft = LF.mix_target(torch.empty(batch, 5, device="meta"), params.to("meta"), validate_args=False)
    assert out is x and soft.shape == (batch, 5)


def test_channels_last_is_kept_and_mixed_correctly():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 8, 6, generator=g)
    params = LF.sample_mix_params(4, (8, 6), mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", generator=g)
    cl = LF.mix_(x.clone().to(memory_format=torch.channels_last), params)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(cl, LF.mix_(x.clone(), params))


def test_batch_of_one_is_left_unchanged_with_lambda_one():
    x = torch.rand(1, 3, 5, 5)
    params = LF.sample_mix_params(1, (5, 5), mixup_alpha=1.0, cutmix_alpha=1.0, generator=torch.Generator())
    assert torch.equal(LF.mix_(x.clone(), params), x)
    assert torch.equal(LF.mix_target(torch.tensor([2]), params, num_classes=3), torch.tensor([[0.0, 0.0, 1.0]]))


def test_cuboid_cut_spans_time_and_lambda_uses_the_cube_root():
    g = torch.Generator().manual_seed(2)
    params = LF.sample_mix_params(3000, (8, 16, 16), cutmix_alpha=1.0, correct_lam=False, mode="elem", generator=g)
    sides = (params.box[..., 1] - params.box[..., 0]).double()
    expected = torch.round((1 - params.lam.double()).pow(1 / 3)[:, None] * torch.tensor([8.0, 16.0, 16.0]))
    assert bool((sides <= expected).all())
    assert float((sides == expected).double().mean()) > 0.3  # unclipped boxes keep the paper's side


def test_one_dimensional_cut_length_is_linear_in_lambda():
    g = torch.Generator().manual_seed(3)
    params = LF.sample_mix_params(500, (1000,), cutmix_alpha=1.0, correct_lam=False, mode="elem", generator=g)
    length = (params.box[:, 0, 1] - params.box[:, 0, 0]).double()
    assert bool((length <= torch.round((1 - params.lam.double()) * 1000)).all())


# ---------------------------------------------------------------------------------------------- errors
def _sample(**kwargs):
    base = {"batch_size": 4, "cut_sizes": (8, 8), "cutmix_alpha": 1.0}
    base.update(kwargs)
    batch_size, cut_sizes = base.pop("batch_size"), base.pop("cut_sizes")
    return LF.sample_mix_params(batch_size, cut_sizes, **base)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cutmix_alpha": -1.0}, ValueError, r"Expected `cutmix_alpha` to be a finite float >= 0 .*got -1.0"),
        ({"mixup_alpha": math.nan}, ValueError, r"Expected `mixup_alpha` to be a number, not NaN, but got nan"),
        ({"mixup_alpha": "1"}, TypeError, r"Expected `mixup_alpha` to be a real number, but got '1'"),
        ({"cutmix_alpha": 0.0}, ValueError, r"Expected `mixup_alpha or cutmix_alpha` to be > 0.*Enable at least one"),
        ({"prob": 1.5}, ValueError, r"Expected `prob` to be a float in \[0, 1\], but got 1.5"),
        ({"switch_prob": -0.1}, ValueError, r"Expected `switch_prob` to be a float in \[0, 1\], but got -0.1"),
        ({"mode": "pair"}, ValueError, r"Expected `mode` to be one of 'batch', 'elem', but got 'pair'"),
        ({"cutmix_minmax": (0.5, 0.2)}, ValueError, r"Expected `cutmix_minmax` to be a pair \(lo, hi\) with 0 < lo"),
        ({"cutmix_minmax": (0.0, 0.2)}, ValueError, r"Expected `cutmix_minmax` to be a pair"),
        ({"cutmix_minmax": 0.5}, TypeError, r"Expected `cutmix_minmax` to be None or a pair"),
        ({"batch_size": 0}, ValueError, r"Expected `batch_size` to be an int >= 1, but got 0"),
        ({"cut_sizes": ()}, ValueError, r"Expected `cut_sizes` to be one or more positive sizes"),
        ({"pairing": "pairs"}, ValueError, r"Expected `pairing` to be one of 'random', 'adjacent', but got 'pairs'\.$"),
        ({"pairing": "auto"}, ValueError, r"Expected `pairing` to be one of 'random', 'adjacent', but got 'auto'\.$"),
    ],
)
def test_sampling_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        _sample(**kwargs)


@pytest.mark.parametrize("pairing", ["Adjacent", "auto", None])
def test_sample_partners_rejects_an_unknown_pairing(pairing):
    match = rf"^Expected `pairing` to be one of 'random', 'adjacent', but got {pairing!r}\.$"
    with pytest.raises(ValueError, match=match):
        LF.sample_partners(4, pairing=pairing)


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (1, [0]),
        (2, [1, 0]),
        (3, [1, 0, 1]),
        (4, [1, 0, 3, 2]),
        (5, [1, 0, 3, 2, 3]),
        (6, [1, 0, 3, 2, 5, 4]),
        (7, [1, 0, 3, 2, 5, 4, 5]),
    ],
)
@pytest.mark.parametrize("with_generator", [True, False])
def test_adjacent_partners_swap_neighbours_and_draw_no_random_numbers(batch, expected, with_generator):
    g = torch.Generator().manual_seed(11)
    state, global_state = g.get_state(), torch.get_rng_state()
    partner = LF.sample_partners(batch, pairing="adjacent", generator=g if with_generator else None)
    assert partner.tolist() == expected and partner.dtype == torch.int64
    assert torch.equal(g.get_state(), state) and torch.equal(torch.get_rng_state(), global_state)
    idx = torch.arange(batch)
    one_way = (partner[partner] != idx).nonzero().flatten().tolist()
    assert one_way == ([batch - 1] if batch % 2 and batch > 1 else [])  # only the odd one out borrows one-way
    assert batch == 1 or bool((partner != idx).all())


def test_adjacent_pairing_sets_the_flag_and_the_partner():
    draws = {
        pairing: LF.sample_mix_params(
            7,
            (8, 8),
            mixup_alpha=1.0,
            cutmix_alpha=1.0,
            mode="elem",
            pairing=pairing,
            generator=torch.Generator().manual_seed(3),
        )
        for pairing in ("random", "adjacent")
    }
    assert draws["adjacent"].adjacent and not draws["random"].adjacent
    assert draws["adjacent"].partner.tolist() == [1, 0, 3, 2, 5, 4, 5]
    assert not LF.sample_mix_params(7, (8, 8), cutmix_alpha=1.0).adjacent  # random is the default
    assert not MixParams.identity(4).adjacent


def test_mixing_errors():
    params = _sample()
    with pytest.raises(ValueError, match=r"Expected `input.ndim` to be >= 3, a batch \(B, C, \*spatial\), but got 2"):
        LF.mix_(torch.rand(4, 8), params)
    with pytest.raises(ValueError, match=r"Expected `input.shape\[0\]` to be the batch size of the parameters \(4\)"):
        LF.mix_(torch.rand(3, 1, 8, 8), params)
    with pytest.raises(ValueError, match=r"Expected `the sizes of input dims \(-2, -1\)` to be the sizes the boxes"):
        LF.mix_(torch.rand(4, 1, 8, 9), params)
    with pytest.raises(ValueError, match=r"Expected `cut_dims` to be distinct negative dims in \[-3, -1\]"):
        LF.mix_(torch.rand(4, 1, 8, 8), params, cut_dims=(2, 3))
    with pytest.raises(TypeError, match=r"Expected `input` to be a torch.Tensor, but got 'list'"):
        LF.mix_([1, 2], params, cut_dims=(-1,))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "kwargs", "checked"),
    [
        (torch.float32, {"cutmix_alpha": 1.0}, True),
        (torch.float64, {"mixup_alpha": 1.0}, True),
        (torch.bfloat16, {"mixup_alpha": 1.0, "cutmix_alpha": 1.0}, True),
        (torch.bfloat16, {"cutmix_alpha": 1.0}, False),  # a bit select: every value is kept exactly
        (torch.float16, {"cutmix_alpha": 1.0}, False),
        (torch.complex64, {"mixup_alpha": 1.0}, True),
    ],
)
@pytest.mark.parametrize("pairing", ["random", "adjacent"])
def test_validate_args_refuses_non_finite_values_that_a_blend_would_turn_into_nan(dtype, kwargs, checked, pairing):
    params = LF.sample_mix_params(
        4, (8, 8), mode="elem", pairing=pairing, generator=torch.Generator().manual_seed(3), **kwargs
    )
    finite = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)).to(dtype)
    assert torch.equal(LF.mix_(finite.clone(), params, validate_args=True), LF.mix_(finite.clone(), params))
    x = finite.clone()
    x[2, 1, 3, 4], x[0, 0, 0, 0] = float("nan"), float("inf")
    if checked:
        with pytest.raises(ValueError, match=r"Expected `input values` to be finite.*'2 non-finite of 768'"):
            LF.mix_(x.clone(), params, validate_args=True)
        return
    mixed = LF.mix_(x.clone(), params, validate_args=True)
    take = LF.box_mask(params, x.shape, (-2, -1)) & params.mixed.view(-1, 1, 1, 1)
    expected = torch.where(take, x[params.partner], x)
    assert torch.equal(mixed.view(torch.int16), expected.view(torch.int16))  # NaN and inf kept bit for bit


def _both_signs(shape, dtype, scale):
    signs = torch.tensor([1.0, -1.0], dtype=dtype).repeat(shape[0] // 2 + 1)[: shape[0]]
    return signs.view(-1, *[1] * (len(shape) - 1)) * torch.full(shape, torch.finfo(dtype).max * scale, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("pairing", ["random", "adjacent"])
@pytest.mark.parametrize("shape", [(5, 3, 8, 8), (5, 2, 16)], ids=["image", "signal"])
def test_cutmix_of_floats_keeps_large_values_and_validate_args_refuses_a_range_that_overflows(
    dtype, mode, pairing, shape
):
    cut = shape[2:]
    dims = (-2, -1) if len(cut) == 2 else (-1,)
    params = LF.sample_mix_params(
        shape[0], cut, cutmix_alpha=1.0, mode=mode, pairing=pairing, generator=torch.Generator().manual_seed(1)
    )
    take = LF.box_mask(params, shape, dims) & params.mixed.view(-1, *[1] * (len(shape) - 1))
    assert bool(take.any())
    bits = torch.int64 if dtype == torch.float64 else torch.int32
    x = _both_signs(shape, dtype, 0.45)  # x_partner − x is finite: every value comes back bit for bit
    mixed = LF.mix_(x.clone(), params, cut_dims=dims, validate_args=True)
    assert torch.equal(mixed.view(bits), torch.where(take, x[params.partner], x).view(bits))
    x = _both_signs(shape, dtype, 0.9)  # x_partner − x overflows: a blend would give NaN, so it is refused
    with pytest.raises(ValueError, match=r"Expected `input values` to be within a range max − min that the dtype"):
        LF.mix_(x.clone(), params, cut_dims=dims, validate_args=True)


def test_validate_args_refuses_an_overflowing_range_only_where_the_blend_is_in_the_batch_dtype():
    params = LF.sample_mix_params(4, (), mixup_alpha=1.0, generator=torch.Generator().manual_seed(0))
    x = _both_signs((4, 3, 2, 2), torch.float16, 0.9)  # blended in float32: no overflow
    mixed = LF.mix_(x.clone(), params, validate_args=True)
    assert bool(torch.isfinite(mixed).all())
    with pytest.raises(ValueError, match=r"but got 'values from -3.06\de\+38 to 3.06\de\+38 in torch.float32'\. Resc"):
        LF.mix_(_both_signs((4, 3, 2, 2), torch.float32, 0.9), params, validate_args=True)


def test_validate_args_reads_the_batch_once_without_batch_sized_memory():
    params = LF.sample_mix_params(
        64, (32, 32), mixup_alpha=1.0, mode="elem", generator=torch.Generator().manual_seed(0)
    )
    x, workspace = torch.rand(64, 3, 32, 32), LF.Workspace()
    LF.mix_(x, params, workspace=workspace)  # the workspace's buffers exist from here on
    peaks = {}
    for check in (False, True):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
            LF.mix_(x, params, workspace=workspace, validate_args=check)
        events = sorted(
            (_start_ns(e), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
        )
        peaks[check] = max(itertools.accumulate((n for _, n in events), initial=0))
    assert peaks[True] - peaks[False] < 1024 < x.nbytes // 4


def test_target_errors():
    params = _sample()
    with pytest.raises(ValueError, match=r"Expected `target.shape\[0\]` to be the batch size 4, but got \(3,\)"):
        LF.mix_target(torch.tensor([0, 1, 2]), params, num_classes=3)
    with pytest.raises(
        ValueError, match=r"Expected `target` to be class indices in \[0, 3\), but got 'values such as \[3, -1\]'"
    ):
        LF.mix_target(torch.tensor([0, 3, 1, -1]), params, num_classes=3)
    with pytest.raises(
        ValueError, match=r"Expected `num_classes` to be an int >= 1 when targets are class indices, but got None"
    ):
        LF.mix_target(torch.tensor([0, 1, 2, 0]), params)
    with pytest.raises(ValueError, match=r"Expected `target.shape\[1\]` to be num_classes \(5\), but got 3"):
        LF.mix_target(torch.rand(4, 3), params, num_classes=5)
    with pytest.raises(TypeError, match=r"Expected `target` to be integer class indices of shape \(B,\) or floating"):
        LF.mix_target(torch.rand(4), params, num_classes=5)
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be 0 for dense targets, but got 0.1"):
        LF.mix_target(torch.rand(4, 3), params, label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be a float in \[0, 1\], but got 2.0"):
        LF.mix_target(torch.tensor([0, 1, 2, 0]), params, num_classes=3, label_smoothing=2.0)
    with pytest.raises(ValueError, match=r"Expected `num_classes` to be an int >= 1, but got 0"):
        LF.one_hot(torch.tensor([0]), 0)


def test_mixup_alone_mixes_feature_batches():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(6, 5, generator=g)
    params = LF.sample_mix_params(6, (), mixup_alpha=1.0, mode="elem", generator=g)
    lam = params.lam[:, None]
    torch.testing.assert_close(LF.mix_(x.clone(), params), lam * x + (1 - lam) * x[params.partner])
    with pytest.raises(ValueError, match=r"Expected `input.ndim` to be >= 3"):
        LF.mix_(x.clone(), LF.sample_mix_params(6, (5,), cutmix_alpha=1.0, generator=g))


def test_identity_parameters_leave_batch_and_targets_unchanged():
    params = MixParams.identity(4, (6, 6), has_mixup=True, has_cutmix=True)
    x, y = torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 2, 1])
    assert torch.equal(LF.mix_(x.clone(), params), x)
    assert torch.equal(LF.mix_target(y, params, num_classes=3), torch.eye(3)[y])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: LF.sample_mix_params(4.0, (8, 8), cutmix_alpha=1.0),
            r"Expected `batch_size` to be an int, but got 4.0",
        ),
        (lambda: LF.sample_partners(True), r"Expected `batch_size` to be an int, but got True"),
        (lambda: LF.one_hot(torch.tensor([0]), "3"), r"Expected `num_classes` to be an int, but got '3'"),
        (
            lambda: LF.mix_mask_target(torch.zeros(1, 2, 2, dtype=torch.long), MixParams.identity(1), num_classes=2.0),
            r"Expected `num_classes` to be an int, but got 2.0",
        ),
        (
            lambda: LF.mixed_accuracy(torch.rand(2, 3), torch.tensor([0, 1]), top_k=1.5),
            r"Expected `top_k` to be an int",
        ),
    ],
)
def test_wrong_types_are_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8])
@pytest.mark.parametrize(
    "config", [{"mixup_alpha": 1.0}, {"cutmix_alpha": 1.0}, {"mixup_alpha": 1.0, "cutmix_alpha": 1.0}]
)
@pytest.mark.parametrize("channels", [1, 3])
def test_adjacent_scratch_on_an_accelerator_stays_under_one_batch(dtype, config, channels):
    # the meta device takes the accelerator branch (one block, or slices for float32 working copies)
    params = LF.sample_mix_params(64, (32, 32), mode="elem", pairing="adjacent", **config).to("meta")
    x = torch.empty(64, channels, 32, 32, dtype=dtype, device="meta")
    ws = LF.Workspace()
    LF.mix_(x, params, workspace=ws)
    scratch = sum(b.numel() * b.element_size() for b in ws._blocks.values())
    buffer = 0 if ws._buffer is None else ws._buffer.numel() * ws._buffer.element_size()
    assert 0 < scratch + buffer <= x.numel() * x.element_size()


# ------------------------------------------------------------------ found by mutation testing (`make mutants`)


def test_identity_parameters_have_the_documented_fields_on_the_requested_device():
    plain = MixParams.identity(3, (4, 5))
    assert (plain.has_mixup, plain.has_cutmix, plain.shared, plain.adjacent) == (False, False, False, False)
    assert MixParams.identity(3, (), has_mixup=True).has_mixup is True
    assert MixParams.identity(3, (4,), has_cutmix=True).has_cutmix is True
    assert (plain.lam.dtype, plain.partner.dtype, plain.box.dtype) == (torch.float32, torch.int64, torch.int64)
    assert plain.mixed.dtype == plain.cutmix.dtype == torch.bool and plain.box.shape == (3, 2, 2)
    assert plain.cut_sizes == (4, 5) and plain.batch_size == 3 and not bool(plain.box.any())
    meta = MixParams.identity(3, (4, 5), device="meta")
    assert {getattr(meta, f).device.type for f in ("lam", "partner", "cutmix", "mixed", "box")} == {"meta"}


def test_params_to_moves_every_tensor_and_keeps_the_flags():
    params = LF.sample_mix_params(4, (6, 6), mixup_alpha=1.0, cutmix_alpha=1.0, mode="batch", pairing="adjacent")
    moved = params.to("meta")
    assert {getattr(moved, f).device.type for f in ("lam", "partner", "cutmix", "mixed", "box")} == {"meta"}
    assert (moved.shared, moved.adjacent, moved.cut_sizes) == (params.shared, params.adjacent, params.cut_sizes)
    assert LF.box_mask(moved, (4, 3, 6, 6), (-2, -1)).device.type == "meta"  # built where the boxes are


@pytest.mark.parametrize("change", ["dtype", "layout", "device"])
def test_workspace_reallocates_when_any_one_property_changes(change):
    ws = LF.Workspace()
    x = torch.zeros(2, 3, 4, 4)
    first = ws.get(x, torch.float32)
    if change == "dtype":
        second, expected = ws.get(x, torch.float64), (torch.float64, x.stride(), "cpu")
    elif change == "layout":
        y = x.contiguous(memory_format=torch.channels_last)
        second, expected = ws.get(y, torch.float32), (torch.float32, y.stride(), "cpu")
    else:
        second, expected = ws.get(x.to("meta"), torch.float32), (torch.float32, x.stride(), "meta")
    assert second is not first and (second.dtype, second.stride(), second.device.type) == expected


def test_validate_args_checks_a_batch_of_one_value():
    params = MixParams.identity(1, (), has_mixup=True)
    with pytest.raises(ValueError, match=r"Expected `input values` to be finite.*'1 non-finite of 1'"):
        LF.mix_(torch.full((1, 1), float("nan")), params, validate_args=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("-inf"), float("inf")])
def test_validate_args_finds_one_infinity_at_either_end_and_says_how_to_fix_it(bad, dtype):
    x = torch.rand(4, 3, 8, 8).to(dtype)
    x[1, 2, 3, 4] = bad  # only one of min and max is non-finite
    params = LF.sample_mix_params(4, (), mixup_alpha=1.0, generator=torch.Generator().manual_seed(0))
    message = (
        "Expected `input values` to be finite, since mixing blends x + w·(x_partner − x), which turns ±inf and NaN "
        "into NaN, but got '1 non-finite of 768'. Replace them before mixing, e.g. with `torch.nan_to_num`, or "
        "take logs of `x.clamp_min(eps)`."
    )
    with pytest.raises(ValueError) as error:
        LF.mix_(x, params, validate_args=True)
    assert str(error.value) == message
