"""Segmentation masks, multi-label, video and 1-D targets mixed with the image's parameters."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_mix import functional as LF
from sync_guard import forbid_syncs

IGNORE = 255


@st.composite
def segmentation(draw: st.DrawFn):
    batch = draw(st.integers(1, 6))
    spatial = draw(
        st.sampled_from(
            [
                (draw(st.integers(1, 12)), draw(st.integers(1, 12))),  # image mask (B, H, W)
                (draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8))),  # video mask (B, T, H, W)
                (draw(st.integers(1, 30)),),  # 1-D labels (B, L)
            ]
        )
    )
    classes = draw(st.integers(1, 5))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    mask = torch.randint(classes, (batch, *spatial), generator=g)
    mask[torch.rand(mask.shape, generator=g) < 0.2] = IGNORE
    image = torch.rand(batch, 2, *spatial, generator=g)
    return image, mask, classes, g


@given(segmentation(), st.sampled_from(["batch", "elem"]))
def test_cutmix_pastes_the_same_box_into_image_and_mask(case, mode):
    image, mask, _, g = case
    dims = LF.default_cut_dims(image.ndim)
    params = LF.sample_mix_params(
        image.shape[0], [image.shape[d] for d in dims], cutmix_alpha=1.0, mode=mode, generator=g
    )
    original_image, original_mask = image.clone(), mask.clone()
    LF.mix_(image, params, cut_dims=dims)
    out = LF.paste_mask_(mask, params, cut_dims=dims)
    assert out.dtype == torch.long
    image_from_partner = (image != original_image).any(dim=1)  # pixel source, read from the image
    partner_mask = original_mask[params.partner]
    differs = original_image[params.partner].ne(original_image).any(dim=1)
    # wherever the image took the partner's pixel, the mask took the partner's label, and nowhere else
    box = LF.box_mask(params, mask.shape, dims)
    assert torch.equal(out, torch.where(box, partner_mask, original_mask))
    assert torch.equal(image_from_partner, box & differs)
    assert set(out.unique().tolist()) <= set(original_mask.unique().tolist())  # ignore labels copied, never blended


@given(segmentation(), st.sampled_from(["batch", "elem"]), st.floats(0.0, 0.3))
def test_soft_mask_targets_follow_pixel_weights_and_ignore(case, mode, smoothing):
    image, mask, classes, g = case
    dims = LF.default_cut_dims(image.ndim)
    params = LF.sample_mix_params(
        image.shape[0],
        [image.shape[d] for d in dims],
        mixup_alpha=1.0,
        cutmix_alpha=1.0,
        mode=mode,
        prob=0.8,
        generator=g,
    )
    soft = LF.mix_mask_target(
        mask, params, num_classes=classes, cut_dims=dims, ignore_index=IGNORE, label_smoothing=smoothing
    )
    assert soft.shape == (mask.shape[0], classes, *mask.shape[1:]) and soft.dtype == torch.float32
    valid = (mask != IGNORE).float()
    weight = LF.pixel_weight(params, mask.shape, dims)  # partner's share per pixel
    mass = (1 - weight) * valid + weight * valid[params.partner]
    torch.testing.assert_close(soft.sum(1), mass)  # ignored pixels carry no weight
    assert bool((soft >= 0).all())
    both_ignored = (mask == IGNORE) & (mask[params.partner] == IGNORE)
    assert bool((soft.sum(1)[both_ignored | ((weight == 0) & (mask == IGNORE))] == 0).all())
    # a CutMix pixel is a hard (possibly smoothed) label: its largest entry is the whole non-smoothed share
    cut = (params.cutmix & params.mixed).view(-1, *[1] * (mask.ndim - 1)).expand_as(mask) & (mass == 1)
    if bool(cut.any()):
        top = soft.amax(1)[cut]
        torch.testing.assert_close(top, torch.full_like(top, 1 - smoothing + smoothing / classes))


def test_soft_mask_targets_without_ignore_are_probabilities():
    g = torch.Generator().manual_seed(0)
    mask = torch.randint(4, (3, 6, 7), generator=g)
    params = LF.sample_mix_params(3, (6, 7), mixup_alpha=1.0, mode="elem", generator=g)
    soft = LF.mix_mask_target(mask, params, num_classes=4)
    torch.testing.assert_close(soft.sum(1), torch.ones(3, 6, 7))
    lam = params.lam.view(3, 1, 1)
    own = soft.gather(1, mask.unsqueeze(1)).squeeze(1)
    partner_same = (mask == mask[params.partner]).float()
    torch.testing.assert_close(own, lam + (1 - lam) * partner_same)


def test_multi_hot_targets_mix_with_the_per_sample_lambda():
    g = torch.Generator().manual_seed(1)
    multi_hot = torch.rand(8, 5, generator=g) < 0.4
    params = LF.sample_mix_params(8, (4, 4), mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", generator=g)
    soft = LF.mix_target(multi_hot, params)
    lam = params.lam[:, None]
    torch.testing.assert_close(soft, lam * multi_hot.float() + (1 - lam) * multi_hot[params.partner].float())


def test_dense_path_is_sync_free():
    g = torch.Generator().manual_seed(2)
    mask = torch.randint(3, (4, 8, 8), generator=g)
    with forbid_syncs():
        params = LF.sample_mix_params(4, (8, 8), mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", generator=g)
        LF.mix_mask_target(mask, params, num_classes=3, ignore_index=IGNORE, validate_args=False)
        cut_only = LF.sample_mix_params(4, (8, 8), cutmix_alpha=1.0, mode="elem", generator=g)
        LF.paste_mask_(mask, cut_only)


def test_dense_errors():
    g = torch.Generator().manual_seed(3)
    params = LF.sample_mix_params(2, (4, 4), mixup_alpha=1.0, cutmix_alpha=1.0, generator=g)
    cut_only = LF.sample_mix_params(2, (4, 4), cutmix_alpha=1.0, generator=g)
    mask = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(
        ValueError, match=r"Expected `params.has_mixup` to be False for an integer mask.*mix_mask_target"
    ):
        LF.paste_mask_(mask, params)
    with pytest.raises(
        TypeError, match=r"Expected `mask` to be an integer tensor of class indices, but got torch.float32"
    ):
        LF.paste_mask_(mask.float(), cut_only)
    with pytest.raises(
        ValueError,
        match=r"Expected `mask.shape` to be \(B, \*spatial\) matching the input's \(2, 4, 4\), but got \(2, 4, 5\)",
    ):
        LF.check_mask(torch.zeros(2, 4, 5, dtype=torch.long), torch.zeros(2, 3, 4, 4))
    with pytest.raises(
        ValueError, match=r"Expected `mask` to be labels in \[0, 3\) or 255, but got 'values such as \[7\]'"
    ):
        LF.mix_mask_target(
            torch.tensor([[[0, 7]], [[1, 255]]]),
            LF.sample_mix_params(2, (1, 2), mixup_alpha=1.0),
            num_classes=3,
            ignore_index=255,
        )
    with pytest.raises(
        ValueError, match=r"Expected `the sizes of mask dims \(-2, -1\)` to be the sizes the boxes were drawn for"
    ):
        LF.mix_mask_target(torch.zeros(2, 5, 4, dtype=torch.long), params, num_classes=3)
    with pytest.raises(ValueError, match=r"Expected `mask.ndim` to be >= 2"):
        LF.check_mask(torch.zeros(2, dtype=torch.long))


def test_dense_float_targets_outside_the_unit_interval_are_refused_when_validated():
    params = LF.sample_mix_params(2, (4, 4), mixup_alpha=1.0, generator=torch.Generator().manual_seed(0))
    regression = torch.tensor([[0.5, 3.0], [1.0, -1.0]])
    per_pixel = torch.full((2, 3, 4, 4), 7.0)
    message = r"Expected `target` to be class targets with values in \[0, 1\].*but got 'values from {} to {}'"
    with pytest.raises(ValueError, match=message.format(-1, 3)):
        LF.mix_target(regression, params)
    with pytest.raises(ValueError, match=message.format(7, 7)):
        LF.mix_any_target(per_pixel, params, input_shape=(2, 3, 4, 4), cut_dims=(-2, -1))
    with pytest.raises(ValueError, match=r"values from nan to nan"):
        LF.mix_target(torch.full((2, 2), float("nan")), params)
    assert LF.mix_target(regression, params, validate_args=False).shape == (2, 2)  # unchecked: mixed linearly
    LF.mix_target(torch.tensor([[0.0, 1.0], [1.0, 1.0]]), params)  # one-hot and multi-hot rows pass
