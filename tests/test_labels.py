"""MixedLabels: what keeps the mix, what sees plain labels, and every loss against the interpolation oracle."""

from __future__ import annotations

import copy
import functools
import io
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import lightning_mix
from lightning_mix import MixedAccuracy, MixedLabels, SoftTargetBCELoss, SoftTargetLoss, register_loss
from lightning_mix.functional import (
    mix_mask_target,
    mix_target,
    mixed_accuracy,
    sample_mix_params,
    soft_target_binary_cross_entropy,
    soft_target_cross_entropy,
)
from sync_guard import forbid_syncs

B, C = 6, 5


def draw(seed: int = 0, shape: tuple[int, ...] = (B,), classes: int = C) -> tuple[Tensor, Tensor, Tensor]:
    """Own labels, partner labels (a permutation of them) and a per-sample λ."""
    g = torch.Generator().manual_seed(seed)
    own = torch.randint(classes, shape, generator=g)
    partner = own[torch.randperm(shape[0], generator=g)]
    lam = torch.rand(shape[0], generator=g)
    lam[0] = 1.0  # an unmixed sample
    return own, partner, lam


def mixed(own: Tensor, partner: Tensor, lam: Tensor, **kwargs: Any) -> MixedLabels:
    return MixedLabels(own, partner, lam.view(-1, *([1] * (own.ndim - 1))), **kwargs)


def oracle(loss: Callable[..., Tensor], x: Tensor, own: Tensor, partner: Tensor, lam: Tensor) -> Tensor:
    """``λ·L_none(x, a) + (1 − λ)·L_none(x, b)`` per element, from plain tensors."""
    a, b = loss(x, own), loss(x, partner)
    w = lam.view(-1, *([1] * (a.ndim - 1)))
    return w * a + (1 - w) * b


# ---------------------------------------------------------------------------------------------------- the type


def test_the_labels_look_like_the_own_labels() -> None:
    own, partner, lam = draw()
    y = mixed(own, partner, lam)
    assert isinstance(y, Tensor) and isinstance(y, MixedLabels)
    assert (y.shape, y.dtype, y.device, y.ndim, len(y)) == (own.shape, own.dtype, own.device, 1, B)
    assert y.tolist() == own.tolist() and torch.equal(y.labels, own) and type(y.labels) is Tensor
    assert torch.equal(y.partner_labels, partner) and torch.equal(y.lam, lam)
    assert y.lam.dtype == torch.float32 and y.label_smoothing == 0.0 and not y.read
    assert repr(y).startswith("MixedLabels(tensor([") and "partner_labels=tensor([" in repr(y)


@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda y: y + 1, id="add"),
        pytest.param(lambda y: y == 2, id="eq"),
        pytest.param(lambda y: torch.zeros(B, C).argmax(-1) == y, id="argmax-eq"),
        pytest.param(lambda y: y[1:3], id="slice"),
        pytest.param(lambda y: y[torch.tensor([0, 2])], id="index"),
        pytest.param(lambda y: y.sum(), id="sum"),
        pytest.param(lambda y: torch.stack([y, y]), id="stack"),
        pytest.param(lambda y: F.one_hot(y, C), id="one_hot"),
        pytest.param(lambda y: y.unique(), id="unique"),
        pytest.param(lambda y: torch.tensor(y.tolist()), id="tensor"),
        pytest.param(lambda y: y.expand(2, B), id="expand"),
        pytest.param(lambda y: y.permute(0), id="permute"),
    ],
)
def test_every_other_operation_gives_a_plain_tensor_of_the_own_labels(op: Callable[[Tensor], Any]) -> None:
    own, partner, lam = draw()
    out = op(mixed(own, partner, lam))
    assert type(out) is Tensor
    torch.testing.assert_close(out, op(own))


@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda y: y.view(-1), id="view"),
        pytest.param(lambda y: y.view(2, -1), id="view-2d"),
        pytest.param(lambda y: y.view_as(torch.empty(3, 2)), id="view_as"),
        pytest.param(lambda y: y.reshape(3, 2), id="reshape"),
        pytest.param(lambda y: torch.reshape(y, (2, 3)), id="torch.reshape"),
        pytest.param(lambda y: y.reshape_as(torch.empty(1, B)), id="reshape_as"),
        pytest.param(lambda y: y.unsqueeze(1).flatten(), id="flatten"),
        pytest.param(lambda y: torch.flatten(y.unsqueeze(0)), id="torch.flatten"),
        pytest.param(lambda y: y.unsqueeze(-1), id="unsqueeze"),
        pytest.param(lambda y: torch.unsqueeze(y, 0), id="torch.unsqueeze"),
        pytest.param(lambda y: y.unsqueeze(1).squeeze(1), id="squeeze"),
        pytest.param(lambda y: torch.squeeze(y.unsqueeze(0)), id="torch.squeeze"),
        pytest.param(lambda y: y.float(), id="float"),
        pytest.param(lambda y: y.double(), id="double"),
        pytest.param(lambda y: y.half(), id="half"),
        pytest.param(lambda y: y.bfloat16(), id="bfloat16"),
        pytest.param(lambda y: y.float().long(), id="long"),
        pytest.param(lambda y: y.int(), id="int"),
        pytest.param(lambda y: y.bool(), id="bool"),
        pytest.param(lambda y: y.to(torch.float32), id="to-dtype"),
        pytest.param(lambda y: y.to("cpu", torch.float64), id="to-device-dtype"),
        pytest.param(lambda y: y.to(torch.zeros(1)), id="to-tensor"),
        pytest.param(lambda y: y.type_as(torch.zeros(1)), id="type_as"),
        pytest.param(lambda y: y.cpu(), id="cpu"),
        pytest.param(lambda y: y.contiguous(), id="contiguous"),
        pytest.param(lambda y: y.clone(), id="clone"),
        pytest.param(lambda y: torch.clone(y), id="torch.clone"),
        pytest.param(lambda y: y.detach(), id="detach"),
        pytest.param(lambda y: torch.detach(y), id="torch.detach"),
    ],
)
def test_reshapes_casts_and_copies_keep_the_mix(op: Callable[[Tensor], Tensor]) -> None:
    own, partner, lam = draw()
    y = mixed(own, partner, lam, label_smoothing=0.1)
    out = op(y)
    assert isinstance(out, MixedLabels)
    torch.testing.assert_close(out.labels, op(own), rtol=0, atol=0)
    torch.testing.assert_close(out.partner_labels, op(partner), rtol=0, atol=0)
    assert out.lam.dtype == torch.float32 and out.lam.shape == out.shape  # λ stays float32 whatever the cast
    torch.testing.assert_close(out.lam.reshape(-1), lam.reshape(-1))
    assert out.label_smoothing == 0.1
    F.cross_entropy(torch.zeros(B, C), y)
    assert out.read  # the read flag is shared with the labels it came from


def test_masks_keep_a_per_sample_weight_through_reshapes() -> None:
    own, partner, lam = draw(shape=(B, 3, 4))
    y = mixed(own, partner, lam)
    assert y.lam.shape == (B, 3, 4) and y.lam.stride() == (1, 0, 0)  # an expanded view: nothing per pixel
    flat = y.view(-1)
    torch.testing.assert_close(flat.lam, lam[:, None].expand(B, 12).reshape(-1))
    assert torch.equal(flat.partner_labels, partner.view(-1))


def test_the_constructor_checks_its_arguments() -> None:
    own, partner, lam = draw()
    with pytest.raises(TypeError, match=r"Expected `partner_labels` to be a torch.Tensor, but got 'list'"):
        MixedLabels(own, [0] * B, lam)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected `partner_labels` to be torch.int64 of shape \(6,\), but got"):
        MixedLabels(own, partner.float(), lam)
    with pytest.raises(TypeError, match=r"Expected `lam` to be a floating tensor, but got torch.int64"):
        MixedLabels(own, partner, own)
    with pytest.raises(ValueError, match=r"Expected `lam.shape` to be broadcastable to the labels' shape \(6,\)"):
        MixedLabels(own, partner, lam[:2])
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` to be a float in \[0, 1\]"):
        MixedLabels(own, partner, lam, label_smoothing=2.0)


def test_pickle_torch_save_and_deepcopy_keep_the_mix() -> None:
    own, partner, lam = draw()
    y = mixed(own, partner, lam, label_smoothing=0.2)
    buffer = io.BytesIO()
    torch.save({"y": y}, buffer)
    for restored in (
        pickle.loads(pickle.dumps(y)),
        copy.deepcopy(y),
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)["y"],
    ):
        assert isinstance(restored, MixedLabels)
        assert torch.equal(restored.labels, own) and torch.equal(restored.partner_labels, partner)
        assert torch.equal(restored.lam, lam) and restored.label_smoothing == 0.2 and not restored.read
    with pytest.raises(pickle.UnpicklingError, match=r"MixedLabels"):  # torch's own error names the class
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    with torch.serialization.safe_globals([MixedLabels]):
        assert isinstance(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)["y"], MixedLabels)


# --------------------------------------------------------------------------------------------------- the losses


REDUCTIONS = ["mean", "sum", "none"]


def reduce(values: Tensor, reduction: str, mass: Tensor | None = None) -> Tensor:
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    return values.mean() if mass is None else values.sum() / mass.sum()


def index_mass(y: Tensor, weight: Tensor | None, ignore_index: int) -> Tensor:
    keep = y != ignore_index
    w = torch.ones(C) if weight is None else weight
    return w[y.masked_fill(~keep, 0)] * keep


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize(("smoothing", "nll"), [(0.0, False), (0.2, False), (0.0, True)])  # NLL has no smoothing
def test_cross_entropy_and_nll_equal_the_interpolation_with_the_losses_own_mean(
    reduction: str, weighted: bool, ignore: bool, smoothing: float, nll: bool
) -> None:
    own, partner, lam = draw(seed=3)
    if ignore:
        own[1], partner[2] = 255, 255  # an ignored own label, an ignored partner label
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5, 3.0]) if weighted else None
    x = torch.randn(B, C, generator=torch.Generator().manual_seed(1))
    if nll:
        fn = functools.partial(F.nll_loss, weight=weight, ignore_index=255)
        x = F.log_softmax(x, 1)
    else:
        fn = functools.partial(F.cross_entropy, weight=weight, ignore_index=255, label_smoothing=smoothing)
    values = oracle(functools.partial(fn, reduction="none"), x, own, partner, lam)
    mass = lam * index_mass(own, weight, 255) + (1 - lam) * index_mass(partner, weight, 255)
    got = fn(x, mixed(own, partner, lam), reduction=reduction)
    torch.testing.assert_close(got, reduce(values, reduction, mass))
    # the modules call the same functional
    module = (nn.NLLLoss if nll else functools.partial(nn.CrossEntropyLoss, label_smoothing=smoothing))(
        weight=weight, ignore_index=255, reduction=reduction
    )
    torch.testing.assert_close(module(x, mixed(own, partner, lam)), got)
    if not ignore:  # without ignored labels the plain labels give back the plain loss
        same = mixed(own, own, lam)
        torch.testing.assert_close(fn(x, same, reduction=reduction), fn(x, own, reduction=reduction))


@pytest.mark.parametrize("batch", [1, 4, 5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    spatial=st.sampled_from([(), (3, 2)]),
    smoothing=st.sampled_from([0.0, 0.1]),
    nll=st.booleans(),
    lam=st.sampled_from([1.0, 0.5, 0.3125, 0.0]),
)
def test_one_lambda_for_the_batch_interpolates_as_per_sample(
    batch: int,
    weighted: bool,
    ignore: bool,
    reduction: str,
    seed: int,
    spatial: tuple[int, ...],
    smoothing: float,
    nll: bool,
    lam: float,
) -> None:
    """The callback's per-batch labels (one host λ; partners swap when the batch is even) take the scalar path.

    Whatever path the loss takes, it equals the per-element oracle with the loss's own mass rule: a swap pairing
    (even batch) and any other pairing (odd batch: the last sample borrows), ignored labels on either side,
    class weights, smoothing, an unmixed batch (λ = 1), 2-D and segmentation-shaped inputs.
    """
    g = torch.Generator().manual_seed(seed)
    own = torch.randint(C, (batch, *spatial), generator=g)
    if ignore:  # the last sample (in an odd batch nobody borrows it, so the two sides' masses differ) and more
        own[-1] = 255
        own.view(-1)[torch.randint(own.numel(), (own.numel() // 4,), generator=g)] = 255
    partner_index = torch.arange(batch).bitwise_xor(1).clamp(max=max(batch - 2, 0) if batch % 2 else batch)
    partner = own[partner_index]
    weight = torch.rand(C, generator=g) + 0.5 if weighted else None
    x = torch.randn(batch, C, *spatial, generator=g) * 2
    if nll:
        x = F.log_softmax(x, 1)
    labels = lightning_mix.labels._make(
        own,
        partner,
        torch.full(own.shape, lam),
        lightning_mix.labels._Mix(smoothing, uniform=lam, balanced=batch % 2 == 0),
    )
    plain = F.nll_loss if nll and smoothing == 0 else functools.partial(F.cross_entropy, label_smoothing=smoothing)
    fn = functools.partial(plain, weight=weight, ignore_index=255)
    values = oracle(functools.partial(fn, reduction="none"), x, own, partner, torch.full((batch,), lam))
    mass = lam * index_mass(own, weight, 255) + (1 - lam) * index_mass(partner, weight, 255)
    got = (F.nll_loss if nll else F.cross_entropy)(x, labels, weight=weight, ignore_index=255, reduction=reduction)
    expected = reduce(values, reduction, mass)
    if reduction == "mean" and float(mass.sum()) == 0:  # everything ignored: torch's 0/0
        assert got.isnan() and expected.isnan()
    else:
        torch.testing.assert_close(got, expected)
    assert labels.read


def test_cross_entropy_of_mixed_labels_equals_cross_entropy_of_the_soft_targets() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(C, (B,), generator=g)
    params = sample_mix_params(B, (), mixup_alpha=1.0, mode="elem", generator=g)
    x = torch.randn(B, C, generator=g)
    labels = MixedLabels(y, y[params.partner], params.lam)
    torch.testing.assert_close(F.cross_entropy(x, labels), F.cross_entropy(x, mix_target(y, params, num_classes=C)))
    torch.testing.assert_close(
        F.cross_entropy(x, labels, label_smoothing=0.1),
        F.cross_entropy(x, mix_target(y, params, num_classes=C), label_smoothing=0.1),
    )


@given(st.integers(0, 2**31 - 1), st.integers(1, 9), st.integers(2, 6), st.sampled_from(REDUCTIONS))
def test_cross_entropy_interpolates_for_any_batch(seed: int, batch: int, classes: int, reduction: str) -> None:
    g = torch.Generator().manual_seed(seed)
    own, partner = torch.randint(classes, (2, batch), generator=g)
    lam, x = torch.rand(batch, generator=g), torch.randn(batch, classes, generator=g) * 3
    fn = functools.partial(F.cross_entropy, reduction="none")
    torch.testing.assert_close(
        F.cross_entropy(x, MixedLabels(own, partner, lam), reduction=reduction),
        reduce(oracle(fn, x, own, partner, lam), reduction),
    )


def test_cross_entropy_with_probability_targets_keeps_torchs_mean_over_samples() -> None:
    g = torch.Generator().manual_seed(0)
    own, partner = torch.rand(2, B, C, generator=g).softmax(-1)
    lam, x, weight = torch.rand(B, generator=g), torch.randn(B, C, generator=g), torch.rand(C, generator=g)
    fn = functools.partial(F.cross_entropy, weight=weight, label_smoothing=0.1)
    for reduction in REDUCTIONS:
        values = oracle(functools.partial(fn, reduction="none"), x, own, partner, lam)
        torch.testing.assert_close(
            fn(x, MixedLabels(own, partner, lam[:, None]), reduction=reduction), reduce(values, reduction)
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("form", ["float", "bool", "column", "multi-hot"])
@pytest.mark.parametrize("logits", [True, False])
def test_binary_cross_entropy_interpolates_per_element(reduction: str, form: str, logits: bool) -> None:
    g = torch.Generator().manual_seed(2)
    shape = {"float": (B,), "bool": (B,), "column": (B, 1), "multi-hot": (B, C)}[form]
    own = torch.randint(2, shape, generator=g)
    partner = own[torch.randperm(B, generator=g)]
    lam = torch.rand(B, generator=g)
    if form in ("float", "column"):
        own, partner = own.float(), partner.float()
    elif form == "bool":
        own, partner = own.bool(), partner.bool()
    y = mixed(own, partner, lam).float()  # BCE modules cast their labels: the mix stays
    z = torch.randn(shape, generator=g)
    width = shape[-1] if len(shape) == 2 else 1
    weight, pos_weight = torch.rand(width, generator=g) + 0.5, torch.rand(width, generator=g) + 0.5
    if logits:
        fn = functools.partial(F.binary_cross_entropy_with_logits, weight=weight, pos_weight=pos_weight)
        module: nn.Module = nn.BCEWithLogitsLoss(weight=weight, pos_weight=pos_weight, reduction=reduction)
    else:
        z = z.sigmoid()
        fn = functools.partial(F.binary_cross_entropy, weight=weight)
        module = nn.BCELoss(weight=weight, reduction=reduction)
    values = oracle(functools.partial(fn, reduction="none"), z, own.float(), partner.float(), lam)
    torch.testing.assert_close(fn(z, y, reduction=reduction), reduce(values, reduction))
    torch.testing.assert_close(module(z, y), reduce(values, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_segmentation_masks_mix_per_pixel_with_ignored_pixels_per_partner(reduction: str) -> None:
    g = torch.Generator().manual_seed(4)
    own = torch.randint(C, (B, 3, 4), generator=g)
    own[own == 0] = 255  # ignored pixels
    params = sample_mix_params(B, (3, 4), mixup_alpha=1.0, mode="elem", generator=g)
    partner, x = own[params.partner], torch.randn(B, C, 3, 4, generator=g)
    y = MixedLabels(own, partner, params.lam[:, None, None])
    fn = functools.partial(F.cross_entropy, ignore_index=255, reduction="none")
    mass = params.lam[:, None, None] * (own != 255) + (1 - params.lam[:, None, None]) * (partner != 255)
    expected = reduce(oracle(fn, x, own, partner, params.lam), reduction, mass)
    torch.testing.assert_close(F.cross_entropy(x, y, ignore_index=255, reduction=reduction), expected)
    # SoftTargetLoss reads the same mix, and equals it on the per-pixel soft targets of the "soft" form
    criterion = SoftTargetLoss(ignore_index=255, reduction=reduction)
    torch.testing.assert_close(criterion(x, y), expected)
    soft = mix_mask_target(own, params, num_classes=C, ignore_index=255)
    torch.testing.assert_close(SoftTargetLoss(reduction=reduction)(x, soft), expected)


def test_soft_target_losses_read_the_mix_with_their_own_rules() -> None:
    g = torch.Generator().manual_seed(5)
    own, partner, lam = draw(seed=5)
    own[0] = partner[3] = -100
    x, weight = torch.randn(B, C, generator=g), torch.rand(C, generator=g) + 0.1
    fn = functools.partial(soft_target_cross_entropy, weight=weight, label_smoothing=0.1)
    mass = lam * index_mass(own, weight, -100) + (1 - lam) * index_mass(partner, weight, -100)
    values = oracle(functools.partial(fn, reduction="none"), x, own, partner, lam)
    torch.testing.assert_close(
        SoftTargetLoss(weight=weight, label_smoothing=0.1)(x, mixed(own, partner, lam)), reduce(values, "mean", mass)
    )
    everything_ignored = MixedLabels(torch.full((2,), -100), torch.full((2,), -100), torch.rand(2))
    assert float(SoftTargetLoss()(x[:2], everything_ignored)) == 0.0  # its mean over no mass is 0, not NaN
    # dense rows: the mass of the row
    rows_a, rows_b = torch.rand(2, B, C, generator=g)
    values = oracle(functools.partial(fn, reduction="none"), x, rows_a, rows_b, lam)
    got = soft_target_cross_entropy(x, MixedLabels(rows_a, rows_b, lam[:, None]), weight=weight, label_smoothing=0.1)
    torch.testing.assert_close(
        got, soft_target_cross_entropy(x, torch.lerp(rows_b, rows_a, lam[:, None]), weight=weight, label_smoothing=0.1)
    )
    assert got.shape == () and values.shape == (B,)
    multi_a, multi_b = torch.randint(2, (2, B, C), generator=g)
    bce = functools.partial(soft_target_binary_cross_entropy, pos_weight=weight, reduction="none")
    torch.testing.assert_close(
        SoftTargetBCELoss(pos_weight=weight)(x, MixedLabels(multi_a, multi_b, lam[:, None]).float()),
        oracle(bce, x, multi_a.float(), multi_b.float(), lam).mean(),
    )


def test_label_smoothing_carried_by_the_labels_composes_with_the_losses_own() -> None:
    own, partner, lam = draw(seed=6)
    x = torch.randn(B, C, generator=torch.Generator().manual_seed(6))
    y = mixed(own, partner, lam, label_smoothing=0.1)
    plain = functools.partial(F.cross_entropy, reduction="none")
    torch.testing.assert_close(
        F.cross_entropy(x, y), oracle(functools.partial(plain, label_smoothing=0.1), x, own, partner, lam).mean()
    )
    total = 1 - 0.9 * 0.8  # smoothing twice: ε and then ε'
    torch.testing.assert_close(
        F.cross_entropy(x, y, label_smoothing=0.2),
        oracle(functools.partial(plain, label_smoothing=total), x, own, partner, lam).mean(),
    )
    torch.testing.assert_close(  # NLL is cross-entropy of log-probabilities
        F.nll_loss(F.log_softmax(x, 1), y),
        oracle(functools.partial(plain, label_smoothing=0.1), x, own, partner, lam).mean(),
    )
    z, bits = torch.randn(B), (own % 2).float()
    yb = MixedLabels(bits, bits.flip(0), lam, label_smoothing=0.1)
    bce = functools.partial(F.binary_cross_entropy_with_logits, reduction="none")
    torch.testing.assert_close(
        F.binary_cross_entropy_with_logits(z, yb),
        oracle(bce, z, bits * 0.9 + 0.05, bits.flip(0) * 0.9 + 0.05, lam).mean(),
    )


def test_a_loss_that_gets_the_labels_as_another_argument_is_a_plain_call() -> None:
    own, partner, lam = draw()
    y = mixed(own, partner, lam)
    x = torch.randn(B, C)
    weight = MixedLabels(torch.ones(C), torch.ones(C), torch.ones(C))
    torch.testing.assert_close(F.cross_entropy(x, own, weight=weight), F.cross_entropy(x, own))
    assert not y.read


def test_legacy_reduction_flags_are_honoured() -> None:
    own, partner, lam = draw()
    x = torch.randn(B, C)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        got = F.cross_entropy(x, mixed(own, partner, lam), size_average=False)
    torch.testing.assert_close(got, F.cross_entropy(x, mixed(own, partner, lam), reduction="sum"))


# ------------------------------------------------------------------------------------------------ registration


def reduce_by(loss: Tensor, reduction: str) -> Tensor:
    return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()


def focal_terms(logits: Tensor, target: Tensor, gamma: float) -> Tensor:
    log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    return -((1 - log_p.exp()) ** gamma) * log_p


def test_register_loss_as_a_decorator_and_as_a_function_with_other_names() -> None:
    @register_loss
    def focal(logits: Tensor, target: Tensor, gamma: float = 2.0, reduction: str = "mean") -> Tensor:
        return reduce_by(focal_terms(logits, target, gamma), reduction)

    def focal_named(scores: Tensor, labels: Tensor, *, how: str = "mean") -> Tensor:
        return reduce_by(focal_terms(scores, labels, 2.0), how)

    named = lightning_mix.register_loss(focal_named, target="labels", reduction="how")
    assert named.__wrapped__ is focal_named and named.__name__ == "focal_named"  # type: ignore[attr-defined]
    own, partner, lam = draw(seed=7)
    x = torch.randn(B, C, generator=torch.Generator().manual_seed(7))
    expected = oracle(functools.partial(focal_terms, gamma=2.0), x, own, partner, lam)
    for reduction in REDUCTIONS:
        y = mixed(own, partner, lam)
        torch.testing.assert_close(focal(x, y, reduction=reduction), reduce_by(expected, reduction))
        torch.testing.assert_close(named(x, labels=y, how=reduction), reduce_by(expected, reduction))
        assert y.read
    assert torch.equal(focal(x, own), focal_terms(x, own, 2.0).mean())  # plain labels: the function itself
    with pytest.raises(ValueError, match=r"Expected `the label smoothing of the labels given to focal` to be 0"):
        focal(x, mixed(own, partner, lam, label_smoothing=0.1))


def test_register_loss_of_a_module_class_wraps_its_forward() -> None:
    @register_loss
    class Focal(nn.Module):
        def __init__(self, reduction: str = "mean") -> None:
            super().__init__()
            self.reduction = reduction

        def forward(self, input: Tensor, target: Tensor) -> Tensor:
            return reduce_by(focal_terms(input, target, 2.0), self.reduction)

    class Child(Focal):
        pass

    assert register_loss(Focal) is Focal  # registering again re-wraps the original forward
    own, partner, lam = draw(seed=8)
    x = torch.randn(B, C, generator=torch.Generator().manual_seed(8))
    expected = oracle(functools.partial(focal_terms, gamma=2.0), x, own, partner, lam)
    for reduction in REDUCTIONS:
        for module in (Focal(reduction), Child(reduction)):
            torch.testing.assert_close(module(x, mixed(own, partner, lam)), reduce_by(expected, reduction))
            assert module.reduction == reduction  # restored

    class NoReduction(nn.Module):
        def forward(self, input: Tensor, target: Tensor) -> Tensor:
            return focal_terms(input, target, 2.0)

    register_loss(NoReduction)
    with pytest.raises(TypeError, match=r"Expected `NoReduction.reduction` to be an attribute that selects the"):
        NoReduction()(x, mixed(own, partner, lam))


def test_register_loss_checks_what_it_is_given() -> None:
    with pytest.raises(TypeError, match=r"Expected `fn` to be a loss function or an nn.Module subclass, but got 'int'"):
        register_loss(3)
    with pytest.raises(TypeError, match=r"nn.Module subclass, but got 'dict'"):
        register_loss(dict)
    with pytest.raises(ValueError, match=r"Expected `the parameters of target` to be to include \['reduction'\]"):
        register_loss(lambda logits, target: logits)
    with pytest.raises(ValueError, match=r"to include \['y'\].*Pass `target=` and `reduction=`"):
        register_loss(lambda logits, target, reduction="mean": logits, target="y")


def test_a_registered_loss_whose_losses_do_not_fit_the_labels_is_a_clear_error() -> None:
    wrong = register_loss(lambda x, target, reduction="mean": x.sum(0))  # one loss per class, not per sample
    with pytest.raises(ValueError, match=r"Expected `the unreduced loss` to be of a shape that starts with"):
        wrong(torch.randn(B, C), mixed(*draw()))


# ---------------------------------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("mode", ["credit", "argmax"])
@pytest.mark.parametrize("top_k", [1, 2])
def test_mixed_accuracy_gives_lambda_credit_equal_to_the_dense_targets(mode: str, top_k: int) -> None:
    g = torch.Generator().manual_seed(9)
    own = torch.randint(C, (B, 3), generator=g)
    own[0, 0] = 255
    params = sample_mix_params(B, (3,), mixup_alpha=1.0, mode="elem", generator=g)
    params.lam[1] = 0.5  # a tie: the lower class index is dominant in "argmax"
    preds = torch.randn(B, C, 3, generator=g)
    y = MixedLabels(own, own[params.partner], params.lam[:, None])
    dense = mix_mask_target(own, params, num_classes=C, cut_dims=(-1,), ignore_index=255)
    expected = mixed_accuracy(preds, dense, top_k=top_k, mode=mode)  # type: ignore[arg-type]
    torch.testing.assert_close(mixed_accuracy(preds, y, top_k=top_k, mode=mode, ignore_index=255), expected)  # type: ignore[arg-type]
    metric = MixedAccuracy(top_k=top_k, mode=mode, ignore_index=255)  # type: ignore[arg-type]
    metric.update(preds, y)
    torch.testing.assert_close(metric.compute(), expected)


# --------------------------------------------------------------------------------------------------- no syncs


def test_losses_and_the_metric_read_nothing_on_the_host() -> None:
    own, partner, lam = draw()
    x = torch.randn(B, C)
    metric = MixedAccuracy(validate_args=False)
    bits = F.one_hot(own, C)  # one_hot reads the values: outside the guard
    with forbid_syncs():
        y = mixed(own, partner, lam).view(-1).long()
        F.cross_entropy(x, y, weight=torch.rand(C), label_smoothing=0.1)
        F.binary_cross_entropy_with_logits(x, MixedLabels(bits, bits.flip(0), lam[:, None]).float())
        SoftTargetLoss(ignore_index=0)(x, y)
        metric.update(x, y)
        _ = (x.argmax(-1) == y).float().mean()


def test_a_view_as_another_dtype_is_a_plain_tensor() -> None:
    own, partner, lam = draw()
    out = mixed(own, partner, lam).view(torch.float64)
    assert type(out) is Tensor and torch.equal(out, own.view(torch.float64))
