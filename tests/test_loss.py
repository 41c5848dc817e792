"""SoftTargetLoss, SoftTargetBCELoss and mixed_loss: parity with torch and timm, the weight, smoothing and ignore
rules, autocast, and every error message."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from lightning_mix import SoftTargetBCELoss, SoftTargetLoss
from lightning_mix import functional as LF
from sync_guard import forbid_syncs

ce = LF.soft_target_cross_entropy
bce = LF.soft_target_binary_cross_entropy
SHAPES = [(6, 5), (3, 4, 5, 2)]  # (B, C) and (B, C, H, W)


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g) * 3
    soft = torch.softmax(torch.randn(shape, generator=g) * 2, dim=1)
    index = torch.randint(shape[1], (shape[0], *shape[2:]), generator=g)
    weight = torch.rand(shape[1], generator=g) + 0.1
    return logits, soft, index, weight


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# --- hand-computed values -----------------------------------------------------------------------------------


def test_hand_computed_soft_target():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # softmax rows (3/4, 1/4) and (1/2, 1/2)
    target = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    per_sample = torch.tensor([-(0.5 * math.log(0.75) + 0.5 * math.log(0.25)), math.log(2.0)])
    _close(ce(logits, target, reduction="none"), per_sample)
    _close(ce(logits, target), per_sample.mean())
    _close(ce(logits, target, reduction="sum"), per_sample.sum())
    # weight (2, 1): row 0 is weighted 0.5·2 + 0.5·1 = 1.5, row 1 weighs 2; "mean" divides by 3.5
    weighted = torch.tensor([-(1.0 * math.log(0.75) + 0.5 * math.log(0.25)), 2 * math.log(2.0)])
    _close(ce(logits, target, weight=torch.tensor([2.0, 1.0]), reduction="none"), weighted)
    _close(ce(logits, target, weight=torch.tensor([2.0, 1.0])), weighted.sum() / 3.5)
    # smoothing ε = 0.5 over C = 2 classes: (1, 0) -> (0.75, 0.25)
    _close(ce(logits, target, label_smoothing=0.5, reduction="none")[1], torch.tensor(math.log(2.0)))
    _close(ce(logits, target, label_smoothing=0.5, reduction="none")[0], per_sample[0])


# --- parity with torch and timm -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
def test_index_targets_match_torch(shape, reduction, label_smoothing, weighted, ignore):
    logits, _, index, weight = _data(shape)
    if ignore:
        index.view(-1)[::3] = 7  # an ignore_index outside [0, C)
    kwargs = {"weight": weight if weighted else None, "label_smoothing": label_smoothing, "reduction": reduction}
    ignore_index = 7 if ignore else -100
    _close(
        ce(logits, index, ignore_index=ignore_index, **kwargs),
        F.cross_entropy(logits, index, ignore_index=ignore_index, **kwargs),
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_soft_targets_match_torch(shape, reduction, label_smoothing):
    logits, soft, _, weight = _data(shape)
    kwargs = {"label_smoothing": label_smoothing, "reduction": reduction}
    _close(ce(logits, soft, **kwargs), F.cross_entropy(logits, soft, **kwargs))
    if reduction != "mean":  # the weighted mean is normalised differently, see the next test
        _close(ce(logits, soft, weight=weight, **kwargs), F.cross_entropy(logits, soft, weight=weight, **kwargs))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_weighted_mean_divides_by_weighted_target_mass(shape, label_smoothing):
    logits, soft, index, weight = _data(shape)
    total = F.cross_entropy(logits, soft, weight=weight, label_smoothing=label_smoothing, reduction="sum")
    mass = (soft * weight.view(-1, *([1] * (len(shape) - 2)))).sum()
    _close(ce(logits, soft, weight=weight, label_smoothing=label_smoothing), total / mass)
    # so a one-hot float target gives the weighted mean torch computes for its class index
    one_hot = F.one_hot(index, shape[1]).movedim(-1, 1).float()
    expected = F.cross_entropy(logits, index, weight=weight, label_smoothing=label_smoothing)
    _close(ce(logits, one_hot, weight=weight, label_smoothing=label_smoothing), expected)


def test_soft_targets_match_timm():
    timm_loss = pytest.importorskip("timm.loss")
    logits, soft, _, _ = _data((16, 10), seed=3)
    _close(ce(logits, soft), timm_loss.SoftTargetCrossEntropy()(logits, soft))
    _close(SoftTargetLoss()(logits, soft), timm_loss.SoftTargetCrossEntropy()(logits, soft))


@given(
    batch=st.integers(1, 6),
    classes=st.integers(1, 7),
    extra=st.lists(st.integers(1, 3), max_size=2),
    label_smoothing=st.floats(0.0, 1.0),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    seed=st.integers(0, 2**16),
)
def test_property_soft_and_index_parity(batch, classes, extra, label_smoothing, reduction, seed):
    shape = (batch, classes, *extra)
    logits, soft, index, weight = _data(shape, seed)
    kwargs = {"label_smoothing": label_smoothing, "reduction": reduction}
    _close(ce(logits, soft, **kwargs), F.cross_entropy(logits, soft, **kwargs))
    _close(ce(logits, index, weight=weight, **kwargs), F.cross_entropy(logits, index, weight=weight, **kwargs))


# --- the ignore contract for dense targets ----------------------------------------------------------------


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_zero_mass_pixels_are_ignored(label_smoothing, weighted):
    logits, _, index, weight = _data((3, 4, 5, 6), seed=1)
    weight = weight if weighted else None
    ignored = torch.zeros(3, 5, 6, dtype=torch.bool)
    ignored[0, :2] = ignored[2, :, 4:] = True
    index[ignored] = -100
    dense = F.one_hot(index.clamp_min(0), 4).movedim(-1, 1).float() * (~ignored).unsqueeze(1)
    kwargs = {"weight": weight, "label_smoothing": label_smoothing}
    # a zero target vector behaves exactly like ignore_index on class indices, for every reduction
    for reduction in ("mean", "sum", "none"):
        _close(
            ce(logits, dense, reduction=reduction, **kwargs),
            F.cross_entropy(logits, index, reduction=reduction, **kwargs),
        )
    assert torch.all(ce(logits, dense, reduction="none", **kwargs)[ignored] == 0)
    # "mean" averages over the kept pixels only, and ignored pixels get no gradient
    logits.requires_grad_(True)
    ce(logits, dense, **kwargs).backward()
    assert torch.all(logits.grad.movedim(1, -1)[ignored] == 0)
    assert torch.all(logits.grad.movedim(1, -1)[~ignored].abs().sum(-1) > 0)


def test_mixed_segmentation_targets_average_over_target_mass():
    g = torch.Generator().manual_seed(4)
    logits, mask = torch.randn(4, 3, 6, 5, generator=g), torch.randint(3, (4, 6, 5), generator=g)
    mask[0, :2] = mask[1, :, 3:] = mask[2, 4:, 1:] = 255  # partners may be ignored where a sample is not
    params = LF.sample_mix_params(4, (6, 5), mixup_alpha=1.0, mode="elem", generator=g)
    soft = LF.mix_mask_target(mask, params, num_classes=3, ignore_index=255)
    per_pixel = F.cross_entropy(logits, mask, ignore_index=255, reduction="none")
    partner = F.cross_entropy(logits, mask[params.partner], ignore_index=255, reduction="none")
    lam, own, other = params.lam.view(4, 1, 1), (mask != 255).float(), (mask[params.partner] != 255).float()
    expected = (lam * per_pixel + (1 - lam) * partner).sum() / (lam * own + (1 - lam) * other).sum()
    _close(ce(logits, soft), expected)


@pytest.mark.parametrize("weighted", [False, True])
def test_everything_ignored_gives_zero_not_nan(weighted):
    logits, _, _, weight = _data((2, 3, 4), seed=2)
    weight = weight if weighted else None
    logits.requires_grad_(True)
    for target in (torch.zeros(2, 3, 4), torch.full((2, 4), -100)):
        loss = ce(logits, target, weight=weight, label_smoothing=0.1)
        assert loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.all(grad == 0)


# --- dtypes, autocast and numerical safety -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_computes_in_float32_under_autocast(dtype):
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(8, 5), torch.randn(4, 8)
    _, soft, index, weight = _data((4, 5))
    with torch.autocast("cpu", dtype=dtype):
        logits = layer(x)
        losses = [ce(logits, soft), ce(logits, index, weight=weight), bce(logits, soft)]
    assert logits.dtype == dtype
    for loss in losses:
        assert loss.dtype == torch.float32
    _close(losses[0], F.cross_entropy(logits.float(), soft))
    _close(losses[1], F.cross_entropy(logits.float(), index, weight=weight))
    _close(losses[2], F.binary_cross_entropy_with_logits(logits.float(), soft))
    losses[0].backward()
    assert torch.isfinite(layer.weight.grad).all()
    half = torch.tensor([[60000.0, -60000.0, 0.0]], dtype=dtype)
    assert ce(half, torch.tensor([[0.0, 1.0, 0.0]])).dtype == torch.float32


def test_extreme_finite_logits_never_give_nan():
    logits = torch.tensor([[3e38, -3e38, 0.0], [1e30, 0.0, -1e30]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]])
    for kwargs in ({}, {"label_smoothing": 0.1}, {"weight": torch.tensor([1.0, 2.0, 3.0])}):
        loss = ce(logits, target, **kwargs)
        assert not torch.isnan(loss)
        (grad,) = torch.autograd.grad(loss, logits)
        assert not torch.isnan(grad).any()
    assert torch.isfinite(bce(logits, target))


# --- binary form --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_matches_torch(shape, reduction):
    logits, soft, _, weight = _data(shape)
    multi_hot = (soft > 0.2).float()
    pos_weight = weight.flip(0) * 2
    per_class = (-1, *([1] * (len(shape) - 2)))
    for target in (soft, multi_hot):
        _close(
            bce(logits, target, weight=weight, pos_weight=pos_weight, reduction=reduction),
            F.binary_cross_entropy_with_logits(
                logits,
                target,
                weight=weight.view(per_class),
                pos_weight=pos_weight.view(per_class),
                reduction=reduction,
            ),
        )
    _close(
        bce(logits, multi_hot.bool(), reduction=reduction),
        F.binary_cross_entropy_with_logits(logits, multi_hot, reduction=reduction),
    )


def test_binary_label_smoothing_pulls_towards_half():
    logits, _, _, _ = _data((4, 3))
    target = torch.tensor([[1.0, 0.0, 1.0]]).expand(4, 3)
    expected = F.binary_cross_entropy_with_logits(logits, target * 0.8 + 0.1)
    _close(bce(logits, target, label_smoothing=0.2), expected)
    _close(SoftTargetBCELoss(label_smoothing=0.2)(logits, target), expected)


# --- loss interpolation ---------------------------------------------------------------------------------------


def test_mixed_loss_is_per_sample():
    per_sample = functools.partial(F.cross_entropy, reduction="none")
    logits, _, y_a, _ = _data((4, 3))
    y_b = y_a.roll(1)
    lam = torch.tensor([1.0, 0.0, 0.25, 0.5])
    la, lb = per_sample(logits, y_a), per_sample(logits, y_b)
    expected = lam * la + (1 - lam) * lb
    _close(LF.mixed_loss(per_sample, logits, y_a, y_b, lam, reduction="none"), expected)
    _close(LF.mixed_loss(per_sample, logits, y_a, y_b, lam), expected.mean())
    _close(LF.mixed_loss(per_sample, logits, y_a, y_b, lam, reduction="sum"), expected.sum())
    # not λ times an already-averaged loss
    batch_level = lam.mean() * la.mean() + (1 - lam.mean()) * lb.mean()
    assert not torch.isclose(LF.mixed_loss(per_sample, logits, y_a, y_b, lam), batch_level)
    # one λ for the batch, as a float or a 0-d tensor
    _close(LF.mixed_loss(per_sample, logits, y_a, y_b, 0.3), (0.3 * la + 0.7 * lb).mean())
    _close(LF.mixed_loss(per_sample, logits, y_a, y_b, torch.tensor(0.3)), (0.3 * la + 0.7 * lb).mean())


def test_mixed_loss_broadcasts_over_dense_losses():
    per_pixel = functools.partial(F.cross_entropy, reduction="none")
    logits, _, y_a, _ = _data((3, 4, 5, 2))
    y_b, lam = y_a.flip(0), torch.tensor([0.2, 0.5, 0.9])
    expected = lam.view(3, 1, 1) * per_pixel(logits, y_a) + (1 - lam.view(3, 1, 1)) * per_pixel(logits, y_b)
    _close(LF.mixed_loss(per_pixel, logits, y_a, y_b, lam, reduction="none"), expected)


def test_target_mixing_equals_loss_mixing_only_for_linear_losses():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(8, 5, generator=g), torch.randint(5, (8,), generator=g)
    params = LF.sample_mix_params(8, (), mixup_alpha=1.0, mode="elem", generator=g)
    y_b, soft = y[params.partner], LF.mix_target(y, params, num_classes=5)
    per_sample = functools.partial(F.cross_entropy, reduction="none")
    _close(LF.mixed_loss(per_sample, logits, y, y_b, params.lam), ce(logits, soft))

    def per_sample_bce(x, t):
        return F.binary_cross_entropy_with_logits(x, F.one_hot(t, 5).float(), reduction="none").mean(1)

    _close(LF.mixed_loss(per_sample_bce, logits, y, y_b, params.lam), bce(logits, soft))

    def focal(x, t, gamma=2.0):  # sigmoid focal loss: its modulating factor depends on the target
        p = torch.sigmoid(x)
        p_t = p * t + (1 - p) * (1 - t)
        return (F.binary_cross_entropy_with_logits(x, t, reduction="none") * (1 - p_t) ** gamma).mean(1)

    def per_sample_focal(x, t):
        return focal(x, F.one_hot(t, 5).float())

    assert not torch.isclose(LF.mixed_loss(per_sample_focal, logits, y, y_b, params.lam), focal(logits, soft).mean())


# --- modules --------------------------------------------------------------------------------------------------


def test_modules_delegate_and_keep_weights_as_buffers():
    logits, soft, index, weight = _data((6, 5))
    loss = SoftTargetLoss(weight=weight.tolist(), label_smoothing=0.1, ignore_index=2)
    _close(loss(logits, soft), ce(logits, soft, weight=weight, label_smoothing=0.1))
    _close(loss(logits, index), F.cross_entropy(logits, index, weight=weight, label_smoothing=0.1, ignore_index=2))
    assert list(loss.state_dict()) == ["weight"]
    assert loss.weight is not None
    assert loss.weight.dtype == torch.float32
    assert "label_smoothing=0.1" in repr(loss)
    assert SoftTargetLoss(reduction="none")(logits, soft).shape == (6,)
    assert list(SoftTargetLoss().state_dict()) == []
    binary = SoftTargetBCELoss(weight=weight, pos_weight=[2.0] * 5, reduction="sum")
    _close(binary(logits, soft), bce(logits, soft, weight=weight, pos_weight=torch.full((5,), 2.0), reduction="sum"))
    assert sorted(binary.state_dict()) == ["pos_weight", "weight"]
    assert "reduction='sum'" in repr(binary)


def test_no_host_sync():
    logits, soft, index, weight = _data((4, 3, 5))
    with forbid_syncs():
        ce(logits, soft, weight=weight, label_smoothing=0.1)
        ce(logits, index, weight=weight, label_smoothing=0.1)
        ce(logits, index)
        bce(logits, soft, pos_weight=weight)
        LF.mixed_loss(functools.partial(F.cross_entropy, reduction="none"), logits, index, index.flip(0), torch.rand(4))


# --- errors ---------------------------------------------------------------------------------------------------


def test_errors():
    logits, soft, index, _ = _data((4, 3))
    with pytest.raises(TypeError, match=r"Expected `logits` to be a floating tensor, but got torch.int64"):
        ce(index.view(2, 2), index)
    with pytest.raises(
        ValueError, match=r"Expected `logits` to be a tensor of shape \(B, C, \*d\), but got \(3,\)\..*unsqueeze"
    ):
        ce(logits[0], index[0])
    with pytest.raises(
        TypeError, match=r"Expected `target` to be .*but got 'torch.int64 of shape \(4, 3\)'\. Cast one-hot"
    ):
        ce(logits, soft.long())
    with pytest.raises(TypeError, match=r"shape \(4,\)'\. Class indices must be an integer tensor"):
        ce(logits, index.float())
    with pytest.raises(
        ValueError,
        match=r"integer class indices of shape \(4,\) or floating.*but got 'torch.float32 of shape \(4, 2\)\'",
    ):
        ce(logits, soft[:, :2])
    with pytest.raises(ValueError, match=r"Expected `target` to be floating/bool targets of the logits' shape"):
        bce(logits, index)
    with pytest.raises(TypeError, match=r"Expected `target` to be a torch.Tensor, but got 'list'"):
        ce(logits, [0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"Expected `weight.shape` to be \(3,\), one entry per class, but got \(2,\)"):
        ce(logits, soft, weight=torch.ones(2))
    with pytest.raises(TypeError, match=r"Expected `pos_weight` to be None or a floating tensor, but got torch.int64"):
        bce(logits, soft, pos_weight=torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `reduction` to be one of 'mean', 'sum', 'none', but got 'avg'"):
        ce(logits, soft, reduction="avg")
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be a float in \[0, 1\], but got 1.5"):
        bce(logits, soft, label_smoothing=1.5)
    with pytest.raises(TypeError, match=r"Expected `ignore_index` to be an int, but got 1.0"):
        ce(logits, index, ignore_index=1.0)


def test_mixed_loss_errors():
    logits, _, index, _ = _data((4, 3))
    per_sample = functools.partial(F.cross_entropy, reduction="none")
    message = r"Expected `loss_fn\(logits, y_a\).shape` to be \(4, \.\.\.\), one loss per sample, but got \(\)\."
    with pytest.raises(ValueError, match=message + r" Pass an unreduced loss, .*reduction=\"none\""):
        LF.mixed_loss(F.cross_entropy, logits, index, index, 0.5)
    with pytest.raises(
        ValueError, match=r"Expected `lam.shape` to be \(\) or \(4,\), one λ per sample, but got \(3,\)"
    ):
        LF.mixed_loss(per_sample, logits, index, index, torch.ones(3))
    with pytest.raises(TypeError, match=r"Expected `lam` to be a float or a floating tensor, but got torch.int64"):
        LF.mixed_loss(per_sample, logits, index, index, torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `lam` to be a float in \[0, 1\], but got 2.0"):
        LF.mixed_loss(per_sample, logits, index, index, 2.0)
    with pytest.raises(ValueError, match=r"Expected `reduction` to be one of"):
        LF.mixed_loss(per_sample, logits, index, index, 0.5, reduction="mean_per_class")


def test_module_errors():
    with pytest.raises(ValueError, match=r"Expected `weight` to be finite and non-negative, but got \[1.0, -1.0\]"):
        SoftTargetLoss(weight=[1.0, -1.0])
    with pytest.raises(TypeError, match=r"Expected `weight` to be None, a tensor or a list of floats, but got 'abc'"):
        SoftTargetLoss(weight="abc")
    with pytest.raises(
        TypeError, match=r"Expected `pos_weight` to be None, a tensor or a list of floats, but got \[1, True\]"
    ):
        SoftTargetBCELoss(pos_weight=[1, True])
    with pytest.raises(
        ValueError, match=r"Expected `weight.shape` to be \(C,\), one entry per class, but got \(2, 2\)"
    ):
        SoftTargetLoss(weight=torch.ones(2, 2))
    with pytest.raises(TypeError, match=r"Expected `ignore_index` to be an int, but got True"):
        SoftTargetLoss(ignore_index=True)
    with pytest.raises(
        ValueError, match=r"Expected `reduction` to be one of 'mean', 'sum', 'none', but got 'batchmean'"
    ):
        SoftTargetBCELoss(reduction="batchmean")
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be a float in \[0, 1\], but got -0.1"):
        SoftTargetLoss(label_smoothing=-0.1)
