"""Property-based tests of the kernels' invariants over shapes, batch sizes, dtypes and modes."""

from __future__ import annotations

import dataclasses
import math
from unittest import mock

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import main_property
from lightning_mix import functional as LF
from lightning_mix.functional import _adjacent

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]
COMPLEX = [torch.complex64, torch.complex128]
PAIRINGS = ["random", "adjacent"]
METHODS = {
    "mixup": {"mixup_alpha": 0.4},
    "cutmix": {"cutmix_alpha": 1.0},
    "minmax": {"cutmix_minmax": (0.2, 0.9)},
    "both": {"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "switch_prob": 0.5},
}


@st.composite
def batches(draw: st.DrawFn, max_batch: int = 7) -> tuple[torch.Tensor, tuple[int, ...]]:
    """A batch whose every value is unique to its sample, so each output value reveals its source sample."""
    batch = draw(st.integers(1, max_batch))
    kind = draw(st.sampled_from(["signal", "image", "video", "video-cuboid"]))
    channels = draw(st.integers(1, 3))
    if kind == "signal":
        spatial: tuple[int, ...] = (draw(st.integers(1, 40)),)
    elif kind == "image":
        spatial = (draw(st.integers(1, 17)), draw(st.integers(1, 17)))
    else:
        spatial = (draw(st.integers(1, 4)), draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    cut_dims = (-3, -2, -1) if kind == "video-cuboid" else LF.default_cut_dims(2 + len(spatial))
    shape = (batch, channels, *spatial)
    # sample i holds the value i + 1 everywhere: integers small enough to be exact in every dtype
    x = (torch.arange(1, batch + 1, dtype=torch.float64).view(-1, *[1] * len(spatial), 1)).expand(
        batch, *spatial, channels
    )
    x = x.movedim(-1, 1).contiguous()
    if draw(st.booleans()) and len(shape) == 4:
        x = x.to(memory_format=torch.channels_last)
    return x, cut_dims


configs = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["batch", "elem"]),
        "prob": st.sampled_from([1.0, 0.5]),
        "seed": st.integers(0, 2**31 - 1),
        "pairing": st.sampled_from(PAIRINGS),
    }
)


def _cut_area_changed(before: torch.Tensor, after: torch.Tensor, cut_dims: tuple[int, ...]) -> torch.Tensor:
    changed = after != before
    other = [d for d in range(1, before.ndim) if d - before.ndim not in cut_dims]
    # a pasted position changes in every channel (and frame) at once
    any_changed = changed.any(dim=other) if other else changed
    all_changed = changed.all(dim=other) if other else changed
    assert torch.equal(any_changed, all_changed)
    return any_changed.flatten(1).double().mean(1)


@main_property()
@given(batches(), configs, st.sampled_from(DTYPES), st.booleans())
def test_cutmix_pixels_come_from_self_or_partner_and_lambda_is_exact(batch, config, dtype, minmax):
    x, cut_dims = batch
    x = x.to(dtype)
    g = torch.Generator().manual_seed(config["seed"])
    cut_sizes = tuple(x.shape[d] for d in cut_dims)
    params = LF.sample_mix_params(
        x.shape[0],
        cut_sizes,
        cutmix_alpha=1.0,
        cutmix_minmax=(0.2, 0.9) if minmax else None,
        mode=config["mode"],
        prob=config["prob"],
        pairing=config["pairing"],
        generator=g,
    )
    assert params.adjacent == (config["pairing"] == "adjacent")
    before = x.clone()
    out = LF.mix_(x, params, cut_dims=cut_dims)
    assert out is x and out.dtype == dtype
    own = before
    donor = before[params.partner]
    assert bool(((out == own) | (out == donor)).all())
    mask = LF.box_mask(params, x.shape, cut_dims)
    assert torch.equal(out, torch.where(mask, donor, own))  # nothing changes outside the box
    pasted = _cut_area_changed(before, out, cut_dims)
    distinct = params.partner != torch.arange(x.shape[0])
    assert torch.allclose(pasted[distinct], 1.0 - params.lam[distinct].double(), atol=1e-6)
    assert bool((params.lam[~params.mixed] == 1).all())


@main_property()
@given(batches(), configs, st.sampled_from(DTYPES))
def test_mixup_values_equal_the_formula(batch, config, dtype):
    x, _ = batch
    x = (x * 7.0).to(dtype)
    g = torch.Generator().manual_seed(config["seed"])
    params = LF.sample_mix_params(
        x.shape[0],
        (),
        mixup_alpha=0.4,
        mode=config["mode"],
        prob=config["prob"],
        pairing=config["pairing"],
        generator=g,
    )
    before = x.double().clone()  # .double() is a no-op for float64
    out = LF.mix_(x, params).double()
    lam = params.lam.double().view(-1, *[1] * (x.ndim - 1))
    exact = lam * before + (1 - lam) * before[params.partner]
    if dtype == torch.uint8:
        assert bool(((out - exact).abs() <= 0.5 + 1e-4).all())  # rounded to nearest
    elif dtype in (torch.float32, torch.float64):
        torch.testing.assert_close(out, exact, rtol=1e-6, atol=1e-5)
    else:
        eps = torch.finfo(dtype).eps
        assert bool(((out - exact).abs() <= exact.abs() * eps + 1e-6).all())  # one rounding to the dtype


@main_property()
@given(batches(), configs, st.sampled_from(COMPLEX), st.sampled_from(sorted(METHODS)))
def test_complex_batches_mix_their_real_and_imaginary_parts_alike(batch, config, dtype, method):
    x, cut_dims = batch
    real, imag = (_noisy(x.clone(), torch.float64, config["seed"] + k) for k in (0, 1))
    z = torch.complex(real, imag).to(dtype)
    params = LF.sample_mix_params(
        x.shape[0],
        tuple(x.shape[d] for d in cut_dims),
        mode=config["mode"],
        prob=config["prob"],
        pairing=config["pairing"],
        generator=torch.Generator().manual_seed(config["seed"]),
        **METHODS[method],
    )
    out = LF.mix_(z.clone(), params, cut_dims=cut_dims)
    assert out.dtype == dtype and out.stride() == z.stride()
    part = torch.float32 if dtype == torch.complex64 else torch.float64
    for got, values in ((out.real, z.real), (out.imag, z.imag)):  # each part mixed as a real batch would be
        torch.testing.assert_close(got, LF.mix_(values.to(part).contiguous(), params, cut_dims=cut_dims))
    lazy = z.conj().clone().conj()  # a lazy conjugate view of its own memory, showing the values of z
    assert lazy.is_conj() and torch.equal(LF.mix_(lazy, params, cut_dims=cut_dims), out)


@main_property()
@given(batches(), configs)
def test_combined_modes_mix_each_sample_by_its_own_op(batch, config):
    x, cut_dims = batch
    g = torch.Generator().manual_seed(config["seed"])
    cut_sizes = tuple(x.shape[d] for d in cut_dims)
    params = LF.sample_mix_params(
        x.shape[0],
        cut_sizes,
        mixup_alpha=1.0,
        cutmix_alpha=1.0,
        mode=config["mode"],
        prob=config["prob"],
        pairing=config["pairing"],
        generator=g,
    )
    before = x.clone()
    out = LF.mix_(x, params, cut_dims=cut_dims)
    lam = params.lam.double().view(-1, *[1] * (x.ndim - 1))
    donor = before[params.partner]
    mixup = lam * before + (1 - lam) * donor
    cut = torch.where(LF.box_mask(params, x.shape, cut_dims), donor, before)
    use_cut = (params.cutmix & params.mixed).view(-1, *[1] * (x.ndim - 1))
    expected = torch.where(params.mixed.view_as(use_cut), torch.where(use_cut, cut, mixup), before)
    torch.testing.assert_close(out, expected)
    if config["mode"] == "batch":
        for field in (params.lam, params.cutmix, params.mixed):
            assert bool((field == field[0]).all())


@main_property()
@given(
    st.integers(1, 9),
    st.integers(1, 12),
    st.floats(0.0, 0.5),
    st.sampled_from(["batch", "elem"]),
    st.integers(0, 2**31 - 1),
)
def test_index_targets_mix_with_the_pixel_lambda(batch, classes, smoothing, mode, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (batch,), generator=g)
    params = LF.sample_mix_params(batch, (5, 5), mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, generator=g)
    soft = LF.mix_target(y, params, num_classes=classes, label_smoothing=smoothing)
    assert soft.dtype == torch.float32 and soft.shape == (batch, classes)
    torch.testing.assert_close(soft.sum(1), torch.ones(batch))
    assert bool((soft >= 0).all())
    on, off = 1 - smoothing + smoothing / classes, smoothing / classes
    partner_on = torch.where(y[params.partner] == y, on, off)
    own = soft[torch.arange(batch), y]
    torch.testing.assert_close(own, params.lam * on + (1 - params.lam) * partner_on)
    assert bool(((soft > off + 1e-6).sum(1) <= 2).all())  # at most two classes above the floor


@given(st.integers(1, 9), st.integers(1, 6), st.booleans(), st.integers(0, 2**31 - 1))
def test_dense_targets_mix_linearly(batch, classes, multi_hot, seed):
    g = torch.Generator().manual_seed(seed)
    if multi_hot:
        dense = torch.rand(batch, classes, generator=g) < 0.5
    else:
        dense = torch.rand(batch, classes, generator=g).softmax(1).to(torch.float16)
    params = LF.sample_mix_params(batch, (), mixup_alpha=0.7, mode="elem", generator=g)
    soft = LF.mix_target(dense, params)
    ref = dense.double()
    lam = params.lam.double()[:, None]
    torch.testing.assert_close(soft.double(), lam * ref + (1 - lam) * ref[params.partner], atol=1e-6, rtol=1e-6)
    assert soft.dtype == torch.float32


@main_property()
@given(st.integers(1, 9), st.sampled_from(["batch", "elem"]), st.integers(0, 2**31 - 1), st.sampled_from(PAIRINGS))
def test_partners_swap_and_never_self_pair(batch, mode, seed, pairing):
    g = torch.Generator().manual_seed(seed)
    params = LF.sample_mix_params(batch, (3, 3), cutmix_alpha=1.0, mode=mode, pairing=pairing, generator=g)
    partner = params.partner
    idx = torch.arange(batch)
    if batch == 1:
        assert partner.tolist() == [0] and not bool(params.mixed[0]) and params.lam.tolist() == [1.0]
        return
    assert bool((partner != idx).all())
    mutual = partner[partner] == idx
    assert int((~mutual).sum()) == batch % 2  # only the odd one out borrows one-way
    if pairing == "adjacent":
        assert partner.tolist() == [i ^ 1 if i ^ 1 < batch else i - 1 for i in range(batch)]
        assert (~mutual).nonzero().flatten().tolist() == ([batch - 1] if batch % 2 else [])


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_box_side_follows_the_paper_before_clipping(height, width, batch, seed):
    g = torch.Generator().manual_seed(seed)
    params = LF.sample_mix_params(batch, (height, width), cutmix_alpha=1.0, correct_lam=False, mode="elem", generator=g)
    sides = params.box[..., 1] - params.box[..., 0]
    ratio = (1 - params.lam).sqrt()
    assert bool((sides[:, 0] <= torch.round(ratio * height) + 1e-6).all())
    assert bool((sides[:, 1] <= torch.round(ratio * width) + 1e-6).all())
    assert bool((params.box >= 0).all())
    assert bool((params.box[:, 0, 1] <= height).all()) and bool((params.box[:, 1, 1] <= width).all())


def test_unmixed_targets_are_plain_one_hot():
    g = torch.Generator().manual_seed(0)
    params = LF.sample_mix_params(6, (4, 4), cutmix_alpha=1.0, prob=0.0, mode="elem", generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.equal(LF.mix_target(y, params, num_classes=3), torch.eye(3)[y])
    assert not bool(params.mixed.any()) and math.isclose(float(params.lam.min()), 1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8])
def test_workspace_is_reused_and_results_match(dtype):
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(5, 3, 8, 8, generator=g) * 255).to(dtype)
    params = LF.sample_mix_params(5, (8, 8), mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", generator=g)
    ws = LF.Workspace()
    a = LF.mix_(x.clone(), params, workspace=ws)
    buffer = ws._buffer
    b = LF.mix_(x.clone(), params, workspace=ws)
    c = LF.mix_(x.clone(), params)
    assert ws._buffer is buffer
    assert torch.equal(a, b) and torch.equal(a, c)


# ------------------------------------------------------------------------------------ adjacent pairing kernel


def _noisy(x: torch.Tensor, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """``x`` with every value made distinct (and negative ones for signed dtypes), in ``dtype``, layout kept."""
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x.mul_(16).add_(noise.mul_(16))  # in place: x owns its memory and keeps its layout
    return (x if dtype == torch.uint8 else x.sub_(64)).to(dtype)


def _general(params: LF.MixParams) -> LF.MixParams:
    """The same parameters, mixed by the general two-pass path."""
    return dataclasses.replace(params, adjacent=False)


@main_property()
@given(
    batches(),
    configs,
    st.sampled_from(DTYPES + COMPLEX),
    st.sampled_from(sorted(METHODS)),
    st.booleans(),
    st.booleans(),
)
def test_adjacent_kernel_equals_the_general_path_bit_for_bit(batch, config, dtype, method, workspace, one_pair_blocks):
    x, cut_dims = batch
    x = _noisy(x, dtype, config["seed"])
    g = torch.Generator().manual_seed(config["seed"])
    cut_sizes = tuple(x.shape[d] for d in cut_dims)
    params = LF.sample_mix_params(
        x.shape[0],
        cut_sizes,
        mode=config["mode"],
        prob=config["prob"],
        pairing="adjacent",
        generator=g,
        **METHODS[method],
    )
    assert params.adjacent
    expected = LF.mix_(x.clone(), _general(params), cut_dims=cut_dims)
    ws = LF.Workspace() if workspace else None
    # a one-byte cache budget makes every pair its own block: the block loop and its edges at every batch size
    block_bytes = 1 if one_pair_blocks else _adjacent._CPU_BLOCK_BYTES
    with mock.patch.object(_adjacent, "_CPU_BLOCK_BYTES", block_bytes):
        for _ in range(2 if workspace else 1):  # a reused workspace gives the same result again
            out = LF.mix_(x.clone(), params, cut_dims=cut_dims, workspace=ws)
            assert out.dtype == dtype and out.stride() == expected.stride()
            assert torch.equal(out, expected)
    if ws is not None and x.shape[0] > 1:
        # no batch-sized buffer of partners means the one-pass kernel ran
        assert (ws._buffer is None) != _row_gather(dtype, method, config["mode"])


class RecordingWorkspace(LF.Workspace):
    """A workspace that records the scratch blocks asked for, by name and shape."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, tuple[int, ...]]] = []

    def block(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        self.requests.append((name, tuple(shape)))
        return super().block(name, shape, dtype, device)


@pytest.mark.parametrize("batch", [40, 41])
@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("method", ["mixup", "cutmix", "both"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adjacent_kernel_equals_the_general_path_over_several_cache_blocks(dtype, method, mode, batch, monkeypatch):
    # big enough samples that the 4 MiB CPU blocks hold only part of the batch, whatever the dtype; per-sample
    # CutMix of such samples takes the host path on CPU (tests/test_host_boxes.py): kept off to test the kernel
    monkeypatch.setattr("lightning_mix.functional._host_boxes.MIN_SAMPLE_BYTES", 1 << 62)
    side = 256 if dtype.itemsize <= 2 else 128
    g = torch.Generator().manual_seed(batch)
    x = (torch.rand(batch, 3, side, side, generator=g) * 250).to(dtype)
    params = LF.sample_mix_params(batch, (side, side), mode=mode, pairing="adjacent", generator=g, **METHODS[method])
    expected = LF.mix_(x.clone(), _general(params))
    ws = RecordingWorkspace()
    out = LF.mix_(x, params, workspace=ws)
    assert out is x and torch.equal(out, expected)
    pairs = [shape[0] for name, shape in ws.requests if name == "even"]  # the copy of each block's even samples
    if _row_gather(dtype, method, mode):
        assert not pairs and ws._buffer is not None
    else:
        assert len(pairs) >= 2 and sum(pairs) == batch // 2
    if method != "mixup":
        assert not torch.equal(out, LF.mix_(x.clone(), params))  # mixing again changes the batch: it was mixed


def _row_gather(dtype: torch.dtype, method: str, mode: str) -> bool:
    """Per-sample CutMix of 1-byte batches keeps the row gather of the general path, even with adjacent pairs."""
    return dtype.itemsize == 1 and method in ("cutmix", "minmax") and mode == "elem"


VIEWS = {
    # a slice of the batch dim: contiguous, mixed in place
    "batch-slice": (lambda: torch.rand(9, 3, 8, 10), lambda t: t[2:7]),
    # a crop: gaps in memory, mixed through a dense copy
    "crop": (lambda: torch.rand(6, 3, 11, 13), lambda t: t[1:6, :, 1:9, 2:12]),
    # every other sample: gaps between samples
    "strided-batch": (lambda: torch.rand(10, 3, 8, 10), lambda t: t[::2]),
    # width before height in memory: the cut dims are permuted
    "transposed": (lambda: torch.rand(5, 3, 10, 8), lambda t: t.transpose(-1, -2)),
    # the batch is not the outermost dim in memory
    "batch-inside": (lambda: torch.rand(3, 7, 8, 10), lambda t: t.transpose(0, 1)),
    # video in channels_last_3d
    "video-channels-last": (
        lambda: torch.rand(5, 3, 4, 6, 7).contiguous(memory_format=torch.channels_last_3d),
        lambda t: t,
    ),
}


@pytest.mark.parametrize("method", ["cutmix", "both"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8])
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_adjacent_kernel_mixes_views_and_non_contiguous_batches(view, dtype, method):
    make, select = VIEWS[view]
    base = (make() * 200).to(dtype)
    before = base.clone()
    x = select(base)
    g = torch.Generator().manual_seed(7)
    params = LF.sample_mix_params(
        x.shape[0], x.shape[-2:], mode="elem", pairing="adjacent", generator=g, **METHODS[method]
    )
    expected = LF.mix_(select(before.clone()), _general(params))
    dense = LF.mix_(x.contiguous().clone(), params)
    ws = RecordingWorkspace()
    out = LF.mix_(x, params, workspace=ws)
    assert out is x and torch.equal(out, expected) and torch.equal(out, dense)
    one_pass = ws._buffer is None and any(name == "even" for name, _ in ws.requests)
    assert one_pass != _row_gather(dtype, method, "elem")  # which kernel ran
    assert not torch.equal(out, select(before))
    outside = torch.ones_like(base, dtype=torch.bool)
    select(outside).fill_(False)
    assert torch.equal(base[outside], before[outside])  # nothing outside the view was written
