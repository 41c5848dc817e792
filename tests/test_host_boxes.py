"""Per-sample CutMix with the boxes read on the host (CPU, large samples): the same result, bit for bit."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lightning_mix.functional._host_boxes as host_boxes
from lightning_mix.functional import box_mask, mix_, sample_mix_params
from lightning_mix.functional.mixing import default_cut_dims

LAYOUTS = {  # shape of one sample, cut dims
    "signal": ((2, 9), (-1,)),
    "image": ((3, 5, 7), (-2, -1)),
    "video": ((2, 3, 4, 6), (-2, -1)),
    "volume": ((1, 4, 5, 3), (-3, -2, -1)),
}


def expected(x: torch.Tensor, params: object, dims: tuple[int, ...]) -> torch.Tensor:
    """The paper's paste, from the box mask: an independent reference of every pixel."""
    mask = box_mask(params, x.shape, dims).expand(x.shape)  # type: ignore[arg-type]
    return torch.where(mask, x[params.partner], x)  # type: ignore[attr-defined]


@settings(deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(2, 9),
    layout=st.sampled_from(sorted(LAYOUTS)),
    pairing=st.sampled_from(["adjacent", "random"]),
    dtype=st.sampled_from([torch.float32, torch.uint8, torch.int64, torch.float16]),
    channels_last=st.booleans(),
    minmax=st.sampled_from([None, (0.2, 0.8)]),
    prob=st.sampled_from([1.0, 0.5]),
)
def test_the_host_path_pastes_every_box_as_the_paper_does(
    seed: int,
    batch: int,
    layout: str,
    pairing: str,
    dtype: torch.dtype,
    channels_last: bool,
    minmax: tuple[float, float] | None,
    prob: float,
) -> None:
    sample, dims = LAYOUTS[layout]
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, *sample, generator=g) * 200).to(dtype)
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    cut_sizes = tuple(x.shape[d] for d in dims)
    params = sample_mix_params(
        batch, cut_sizes, cutmix_alpha=1.0, mode="elem", pairing=pairing, cutmix_minmax=minmax, prob=prob, generator=g
    )
    before = x.clone()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(host_boxes, "MIN_SAMPLE_BYTES", 0)  # small samples take the host path too
        assert host_boxes.host_boxes_pay(x, params)
        out = mix_(x, params, cut_dims=dims)
    assert out is x and x.stride() == before.stride()
    assert torch.equal(x, expected(before, params, dims))


def test_the_host_path_is_taken_for_large_per_sample_cutmix_on_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    large = torch.rand(4, 3, 224, 224, generator=g)
    small = torch.rand(4, 3, 32, 32, generator=g)
    per_sample = sample_mix_params(4, (224, 224), cutmix_alpha=1.0, mode="elem", generator=g)
    assert host_boxes.host_boxes_pay(large, per_sample)
    assert not host_boxes.host_boxes_pay(small, sample_mix_params(4, (32, 32), cutmix_alpha=1.0, mode="elem"))
    both = sample_mix_params(4, (224, 224), mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", generator=g)
    per_batch = sample_mix_params(4, (224, 224), cutmix_alpha=1.0, mode="batch", generator=g)
    assert not host_boxes.host_boxes_pay(large, both)  # MixUp samples blend: the vectorised kernel
    assert not host_boxes.host_boxes_pay(large, per_batch)  # one box for all: moved without any loop
    on_meta = per_sample.to("meta")
    assert not host_boxes.host_boxes_pay(large.to("meta"), on_meta)  # an accelerator: reading would sync
    calls: list[int] = []
    real = host_boxes.paste_boxes_on_host_

    def spy(*args: object) -> None:
        calls.append(1)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("lightning_mix.functional.mixing.paste_boxes_on_host_", spy)
    before = large.clone()
    mix_(large, per_sample)
    assert calls == [1]
    assert torch.equal(large, expected(before, per_sample, default_cut_dims(4)))
