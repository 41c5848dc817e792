"""Sampling of the per-sample mixing parameters: partner, λ, op, whether to mix, and the CutMix box.

Per-sample draws (``mode="elem"``) are made with one explicit :class:`torch.Generator` on the generator's device,
as tensors: no value is ever read back to the host, so sampling never synchronises with an accelerator. A
per-batch draw (``mode="batch"``) is a handful of scalars: given a :class:`random.Random` it is made on the host,
which reads nothing from the device either, and the kernels then know the box and λ without asking the device.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lightning_mix.functional._checks import (
    check_alpha,
    check_choice,
    check_int,
    check_minmax,
    check_probability,
    expected,
)

__all__ = ["BatchDraw", "MixParams", "Pairing", "sample_mix_params", "sample_partners"]

Mode = Literal["batch", "elem"]
Pairing = Literal["random", "adjacent"]


@dataclass(frozen=True)
class BatchDraw:
    """The host-side values of one per-batch draw (``mode="batch"`` with a :class:`random.Random`).

    The same values as the ``(B,)`` tensors of :class:`MixParams`, as Python scalars, so a kernel can move only
    the pasted box, or blend with a scalar weight, without reading the device.

    Attributes:
        mixed: whether the batch is mixed at all.
        cutmix: whether the batch is mixed by CutMix (False: MixUp).
        lam: λ of every sample, a float32 value (1.0 when the batch is not mixed).
        box: the pasted box as one half-open ``(start, stop)`` range per cut dimension; empty ranges
            ``(0, 0)`` when the batch is not mixed by CutMix.

    Example:
        >>> p = sample_mix_params(4, (8, 8), cutmix_alpha=1.0, generator=random.Random(0))
        >>> p.draw is not None and p.draw.lam == p.lam[0].item()
        True
    """

    mixed: bool
    cutmix: bool
    lam: float
    box: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class MixParams:
    """The parameters of one mixing step, one entry per sample.

    Attributes:
        lam: ``(B,)`` float32, the weight of the sample's own pixels and own target. For CutMix it is
            ``1 - pasted_area / total_area`` when ``correct_lam`` is on; 1 for samples left unmixed.
        partner: ``(B,)`` int64, the index of the sample whose pixels and target are mixed in.
        cutmix: ``(B,)`` bool, True where the sample was (or would have been) mixed by CutMix, False for MixUp.
        mixed: ``(B,)`` bool, True where the sample is mixed at all (``prob`` and batch size 1 decide).
        box: ``(B, D, 2)`` int64, the pasted CutMix box as half-open ``[start, stop)`` ranges along the D cut
            dimensions; empty (``start == stop == 0``) where the sample is not mixed by CutMix.
        cut_sizes: sizes of the cut dimensions the boxes were drawn for.
        has_mixup: whether the configuration can produce MixUp samples (a static, host-side flag).
        has_cutmix: whether the configuration can produce CutMix samples (a static, host-side flag).
        shared: whether every sample has the same ``lam``, ``cutmix``, ``mixed`` and ``box`` (``mode="batch"``),
            so that the kernels may read them from the first sample only (a static, host-side flag).
        adjacent: whether ``partner`` is the adjacent pairing of :func:`sample_partners` (``2k`` and ``2k + 1``
            swap; the last sample of an odd batch takes the one before it), so that the kernels may mix each
            pair in one pass (a static, host-side flag). If you replace ``partner``, set it to False.
        draw: the host-side scalars of a per-batch draw (:class:`BatchDraw`), or None. With them the kernels move
            only the box (CutMix) or blend with a scalar λ (MixUp). If you replace ``lam``, ``cutmix``, ``mixed``
            or ``box``, set it to None.

    The tensors are read-only: they may be shared between calls (the adjacent partner index is cached per batch
    size and device, as are the constant flags of a per-batch draw).
    """

    lam: Tensor
    partner: Tensor
    cutmix: Tensor
    mixed: Tensor
    box: Tensor
    cut_sizes: tuple[int, ...]
    has_mixup: bool
    has_cutmix: bool
    shared: bool = False
    adjacent: bool = False
    draw: BatchDraw | None = None

    @property
    def batch_size(self) -> int:
        """The number of samples the parameters were drawn for."""
        return int(self.lam.shape[0])

    @classmethod
    def identity(
        cls,
        batch_size: int,
        cut_sizes: Sequence[int] = (),
        *,
        has_mixup: bool = False,
        has_cutmix: bool = False,
        device: torch.device | str | None = None,
    ) -> MixParams:
        """Parameters that leave a batch as it is: nobody mixed, λ = 1, every sample its own partner.

        Useful to keep one code path (and one target format) for steps that are not mixed.

        Example:
            >>> p = MixParams.identity(3, (4, 4), has_cutmix=True)
            >>> p.lam.tolist(), p.partner.tolist(), p.mixed.any().item()
            ([1.0, 1.0, 1.0], [0, 1, 2], False)
        """
        no = torch.zeros(batch_size, dtype=torch.bool, device=device)
        return cls(
            lam=torch.ones(batch_size, device=device),
            partner=torch.arange(batch_size, device=device),
            cutmix=no,
            mixed=no,
            box=torch.zeros(batch_size, len(cut_sizes), 2, dtype=torch.long, device=device),
            cut_sizes=tuple(int(s) for s in cut_sizes),
            has_mixup=has_mixup,
            has_cutmix=has_cutmix,
        )

    def to(self, device: torch.device | str) -> MixParams:
        """Return the parameters on ``device`` (non-blocking copies)."""
        move = {
            name: getattr(self, name).to(device, non_blocking=True)
            for name in ("lam", "partner", "cutmix", "mixed", "box")
        }
        return dataclasses.replace(self, **move)


def sample_partners(
    batch_size: int,
    *,
    pairing: Pairing = "random",
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Draw a pairing of the batch in which partners swap.

    With ``pairing="random"`` the samples are shuffled and paired two by two, so the pairing does not depend
    on the loader's order. With ``pairing="adjacent"`` sample ``2k`` swaps with ``2k + 1``: no randomness is
    drawn, and the pairing is as random as the order the loader put the samples in, which for a shuffling
    loader (``shuffle=True``, a ``DistributedSampler`` with ``shuffle=True``) is exactly as random. The kernels
    mix adjacent pairs in one pass over the batch.

    Either way ``partner[partner[i]] == i`` for every sample but, when the batch size is odd, the last one
    (in shuffled order for ``"random"``), which borrows from the first (``"random"``) or from the one before it
    (``"adjacent"``). Nobody is paired with itself unless ``batch_size == 1``.

    Args:
        batch_size: number of samples, at least 1.
        pairing: ``"random"`` or ``"adjacent"``.
        generator: source of randomness; its device is used when ``device`` is None.
        device: where to build the index.

    Returns:
        ``(batch_size,)`` int64 partner indices.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> partner = sample_partners(6, generator=g)
        >>> bool((partner[partner] == torch.arange(6)).all()), bool((partner != torch.arange(6)).all())
        (True, True)
        >>> sample_partners(5, pairing="adjacent").tolist()
        [1, 0, 3, 2, 3]
    """
    check_int("batch_size", batch_size, 1)
    check_choice("pairing", pairing, ("random", "adjacent"))
    device = device if device is not None else (generator.device if generator is not None else None)
    if pairing == "adjacent":
        return _adjacent_partners(batch_size, device)
    return _random_partners(batch_size, generator, device)


def _adjacent_partners(batch_size: int, device: torch.device | None) -> Tensor:
    partner = torch.arange(batch_size, device=device).bitwise_xor_(1)
    return partner.clamp_(max=max(batch_size - 2, 0)) if batch_size % 2 else partner


@functools.lru_cache(maxsize=32)
def _cached_adjacent_partners(batch_size: int, device: torch.device) -> Tensor:
    """The adjacent pairing, built once per batch size and device (read-only: it is shared)."""
    with torch.inference_mode(False):  # a plain tensor even if first asked for in inference mode
        return _adjacent_partners(batch_size, device)


@functools.lru_cache(maxsize=64)
def _cached_flag(batch_size: int, value: bool, device: torch.device) -> Tensor:
    """A ``(batch_size,)`` bool tensor filled with ``value``, built once per device (read-only: it is shared)."""
    with torch.inference_mode(False):
        return torch.full((batch_size,), value, dtype=torch.bool, device=device)


@functools.lru_cache(maxsize=16)
def _cached_empty_box(dims: int, device: torch.device) -> Tensor:
    """A ``(1, dims, 2)`` box of empty ranges, built once per device (read-only: it is shared)."""
    with torch.inference_mode(False):
        return torch.zeros((1, dims, 2), dtype=torch.long, device=device)


def _random_partners(batch_size: int, generator: torch.Generator | None, device: torch.device | None) -> Tensor:
    order = torch.randperm(batch_size, generator=generator, device=device)
    if batch_size % 2 == 0:
        swapped = order.view(-1, 2).flip(1).view(-1)  # 2k <-> 2k + 1 in shuffled order
    else:  # the odd one out borrows from the first sample in shuffled order
        swapped = torch.cat((order[:-1].view(-1, 2).flip(1).view(-1), order[:1]))
    return torch.empty_like(order).scatter_(0, order, swapped)


def _float32(value: float) -> float:
    """``value`` rounded to the nearest float32, as a Python float."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def _host_box(
    lam: float, cut_sizes: tuple[int, ...], minmax: tuple[float, float] | None, rng: random.Random
) -> tuple[tuple[int, int], ...]:
    """One box drawn on the host with the rules of :func:`_paper_boxes` or :func:`_minmax_boxes`."""
    box = []
    if minmax is None:
        ratio = (1.0 - lam) ** (1.0 / len(cut_sizes))
        for size in cut_sizes:
            cut = round(ratio * size)
            start = round(rng.random() * size - 0.5 * cut)  # a continuous centre, the start to the nearest pixel
            box.append((min(max(start, 0), size), min(max(start + cut, 0), size)))
    else:
        lo, hi = minmax
        for size in cut_sizes:
            cut = min(max(round((lo + rng.random() * (hi - lo)) * size), 1), size)
            start = math.floor(rng.random() * (size - cut + 1))
            box.append((start, start + cut))
    return tuple(box)


def host_batch_params(
    batch_size: int,
    cut_sizes: tuple[int, ...],
    mixup_alpha: float,
    cutmix_alpha: float,
    prob: float,
    switch_prob: float,
    correct_lam: bool,
    minmax: tuple[float, float] | None,
    pairing: Pairing,
    rng: random.Random,
    device: torch.device,
) -> MixParams:
    """One per-batch draw made on the host with ``rng``: scalars for the kernels, ``(B,)`` tensors for the rest.

    The arguments are those of :func:`sample_mix_params`, already checked (``cut_sizes`` positive when CutMix
    is on): :class:`~lightning_mix.MixCallback` calls it directly once it has checked its configuration.
    """
    has_mixup, has_cutmix = mixup_alpha > 0, cutmix_alpha > 0 or minmax is not None
    u_mix, u_op = rng.random(), rng.random()
    mixed = batch_size > 1 and u_mix < prob  # a batch of one has nobody to mix with
    cutmix = u_op < switch_prob if has_mixup and has_cutmix else has_cutmix
    lam, box = 1.0, ((0, 0),) * len(cut_sizes)
    if mixed and cutmix:
        lam = _float32(rng.betavariate(cutmix_alpha, cutmix_alpha)) if minmax is None else 1.0
        box = _host_box(lam, cut_sizes, minmax, rng)
        if minmax is not None or correct_lam:
            lam = _float32(1.0 - math.prod(stop - start for start, stop in box) / math.prod(cut_sizes))
    elif mixed:
        lam = _float32(rng.betavariate(mixup_alpha, mixup_alpha))
    if pairing == "adjacent":
        partner = _cached_adjacent_partners(batch_size, device)
    else:  # a pairing from a device generator seeded on the host
        seeded = torch.Generator(device=device).manual_seed(rng.getrandbits(64))
        partner = _random_partners(batch_size, seeded, device)
    if mixed and cutmix:  # eight bytes per bound, read by the tensor in place: cheaper than a list
        flat = torch.frombuffer(
            bytearray(struct.pack(f"{2 * len(box)}q", *(v for pair in box for v in pair))), dtype=torch.long
        )
        if device.type != "cpu":
            flat = flat.to(device, non_blocking=True)
        box_tensor = flat.as_strided((batch_size, len(box), 2), (0, 2, 1))  # the one box, seen by every sample
    else:
        box_tensor = _cached_empty_box(len(cut_sizes), device).expand(batch_size, -1, -1)
    return MixParams(
        lam=torch.full((batch_size,), lam, dtype=torch.float32, device=device),
        partner=partner,
        cutmix=_cached_flag(batch_size, cutmix, device),
        mixed=_cached_flag(batch_size, mixed, device),
        box=box_tensor,
        cut_sizes=cut_sizes,
        has_mixup=has_mixup,
        has_cutmix=has_cutmix,
        shared=True,
        adjacent=pairing == "adjacent",
        draw=BatchDraw(mixed=mixed, cutmix=cutmix, lam=lam, box=box),
    )


def _beta(alpha: Tensor, generator: torch.Generator | None) -> Tensor:
    """One λ ~ Beta(α, α) per entry of ``alpha`` (float64 ``(n, 2)``, both columns equal), as float32."""
    # float64: in float32 the sampler cannot get closer to 1 than 6e-8, where Beta(0.2, 0.2) still has 2% mass
    return torch._sample_dirichlet(alpha, generator=generator)[:, 0].to(torch.float32)


def _sizes(cut_sizes: Sequence[int], device: torch.device | None) -> Tensor:
    sizes = torch.tensor(cut_sizes, dtype=torch.float32)
    return sizes if device is None else sizes.to(device, non_blocking=True)


def _paper_boxes(
    lam: Tensor, cut_sizes: Sequence[int], generator: torch.Generator | None, device: torch.device | None
) -> Tensor:
    """Boxes of side ``S * (1 - lam) ** (1 / D)`` centred at ``r ~ U(0, S)``, clipped to the image.

    The centre is continuous, as in the paper, and the start is rounded to the nearest pixel boundary, so every
    pixel is equally likely to hold the centre and the coverage is mirror-symmetric for even and odd sides
    alike (an integer centre with ``start = c - side // 2`` shifts even-sided boxes half a pixel left).
    """
    sizes = _sizes(cut_sizes, device)
    ratio = (1.0 - lam).pow_(1.0 / len(cut_sizes))  # λ is in [0, 1]
    cut = torch.round(ratio[:, None] * sizes)
    centre = torch.rand(lam.shape[0], len(cut_sizes), generator=generator, device=device).mul_(sizes)
    start = torch.sub(centre, cut, alpha=0.5).round_()
    box = torch.stack((start, start + cut), dim=-1).clamp_(min=0.0)
    return torch.minimum(box, sizes[:, None]).long()


def _minmax_boxes(
    n: int,
    minmax: tuple[float, float],
    cut_sizes: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | None,
) -> Tensor:
    """Boxes whose side ratios are uniform in ``[lo, hi]`` per dimension, placed fully inside the image."""
    lo, hi = minmax
    sizes = _sizes(cut_sizes, device)
    draws = torch.rand(2, n, len(cut_sizes), generator=generator, device=device)
    cut = torch.minimum(torch.round(draws[0].mul_(hi - lo).add_(lo).mul_(sizes)).clamp_(min=1.0), sizes)
    start = torch.floor(draws[1].mul_(sizes - cut + 1.0))
    return torch.stack((start, start + cut), dim=-1).long()


def sample_mix_params(
    batch_size: int,
    cut_sizes: Sequence[int],
    *,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    prob: float = 1.0,
    switch_prob: float = 0.5,
    mode: Mode = "batch",
    correct_lam: bool = True,
    cutmix_minmax: tuple[float, float] | None = None,
    pairing: Pairing = "random",
    generator: torch.Generator | random.Random | None = None,
    device: torch.device | str | None = None,
) -> MixParams:
    """Draw the mixing parameters of one batch.

    In ``mode="batch"`` one λ, one box, one op and one apply decision serve the whole batch, as in the papers;
    in ``mode="elem"`` every sample draws its own. λ ~ Beta(α, α) with the α of the chosen op. A CutMix box
    has side ``S * sqrt(1 - λ)`` along each of two cut dimensions (``S * (1 - λ)`` along one, the cube root
    along three), a centre ``r ~ U(0, S)`` (every pixel, edges included, equally likely to hold it), and is
    clipped to the image; with
    ``correct_lam`` the reported λ is ``1 - kept_box_area / area``. With ``cutmix_minmax=(lo, hi)`` the side
    ratios are drawn uniformly from ``[lo, hi]`` instead, the box stays inside the image, and λ is always the
    corrected one.

    Args:
        batch_size: number of samples B (any B >= 1; B = 1 is never mixed and reports λ = 1).
        cut_sizes: sizes of the dimensions CutMix cuts along, e.g. ``(H, W)``; may be empty when CutMix is off.
        mixup_alpha: Beta concentration for MixUp; 0 disables MixUp.
        cutmix_alpha: Beta concentration for CutMix; 0 disables CutMix unless ``cutmix_minmax`` is set.
        prob: probability of mixing, per batch in ``"batch"`` mode and per sample in ``"elem"`` mode.
        switch_prob: probability of CutMix rather than MixUp when both are enabled.
        mode: ``"batch"`` or ``"elem"``.
        correct_lam: report the λ of the box actually kept after clipping (always on with ``cutmix_minmax``).
        cutmix_minmax: optional ``(lo, hi)`` bounds for box side ratios; enables CutMix on its own.
        pairing: how partners are chosen, see :func:`sample_partners`. ``"adjacent"`` is faster and as random
            as the loader's order: use it when the loader shuffles.
        generator: the source of randomness: a :class:`torch.Generator` (default: PyTorch's global generator of
            ``device``) or a :class:`random.Random`. With a ``random.Random`` and ``mode="batch"`` the draw is made
            on the host (Python's Beta and uniform samplers, the same rules), which reads nothing from the device,
            and the result carries it as :attr:`MixParams.draw`: the kernels then move only the pasted box, or
            blend with a scalar λ. In ``mode="elem"`` a ``random.Random`` seeds a device generator, since
            per-sample draws are made on the device as tensors. A random pairing is always drawn on the device.
        device: where to create the parameters; defaults to the generator's device (CPU for a ``random.Random``).

    Returns:
        A :class:`MixParams`.

    Raises:
        ValueError: if an argument is out of range or no method is enabled.
        TypeError: if an argument has the wrong type.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> p = sample_mix_params(4, (32, 32), cutmix_alpha=1.0, mode="elem", generator=g)
        >>> p.lam.shape, p.box.shape, p.lam.dtype
        (torch.Size([4]), torch.Size([4, 2, 2]), torch.float32)
        >>> area = (p.box[..., 1] - p.box[..., 0]).prod(dim=1)
        >>> torch.allclose(p.lam, 1 - area / 1024)
        True
        >>> import random
        >>> q = sample_mix_params(4, (32, 32), cutmix_alpha=1.0, pairing="adjacent", generator=random.Random(0))
        >>> q.shared, q.draw.mixed, q.lam.tolist() == [q.draw.lam] * 4
        (True, True, True)
    """
    check_int("batch_size", batch_size, 1)
    mixup_alpha = check_alpha("mixup_alpha", mixup_alpha)
    cutmix_alpha = check_alpha("cutmix_alpha", cutmix_alpha)
    prob = check_probability("prob", prob)
    switch_prob = check_probability("switch_prob", switch_prob)
    check_choice("mode", mode, ("batch", "elem"))
    minmax = check_minmax("cutmix_minmax", cutmix_minmax)
    check_choice("pairing", pairing, ("random", "adjacent"))
    has_mixup = mixup_alpha > 0
    has_cutmix = cutmix_alpha > 0 or minmax is not None
    if not (has_mixup or has_cutmix):
        raise ValueError(
            expected("mixup_alpha or cutmix_alpha", "> 0", (mixup_alpha, cutmix_alpha), "Enable at least one method.")
        )
    cut_sizes = tuple(int(s) for s in cut_sizes)
    if has_cutmix and (not cut_sizes or min(cut_sizes) < 1):
        raise ValueError(expected("cut_sizes", "one or more positive sizes when CutMix is enabled", cut_sizes))

    if isinstance(generator, random.Random):
        host = torch.device(device if device is not None else "cpu")
        if mode == "batch":
            args = (mixup_alpha, cutmix_alpha, prob, switch_prob, correct_lam, minmax, pairing, generator, host)
            return host_batch_params(batch_size, cut_sizes, *args)
        generator = torch.Generator(device=host).manual_seed(generator.getrandbits(64))
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(expected("generator", "None, a torch.Generator or a random.Random", type(generator).__name__))
    dev = torch.device(device) if device is not None else (generator.device if generator is not None else None)
    n = batch_size if mode == "elem" else 1

    draws = torch.rand(2, n, generator=generator, device=dev)
    mixed = draws[0] < (prob if batch_size > 1 else 0.0)  # a batch of one has nobody to mix with
    cutmix = draws[1] < (switch_prob if has_mixup and has_cutmix else float(has_cutmix))

    paper = has_cutmix and minmax is None
    if has_mixup or paper:  # one Beta draw per sample, with the α of its op
        precise = torch.float32 if dev is not None and dev.type == "mps" else torch.float64  # MPS has no float64
        alpha = torch.full((n, 2), mixup_alpha if has_mixup else cutmix_alpha, dtype=precise, device=dev)
        if has_mixup and paper:
            alpha.masked_fill_(cutmix[:, None], cutmix_alpha)
        lam = _beta(alpha, generator)
    else:
        lam = torch.ones(n, device=dev)
    if has_cutmix:
        if minmax is None:
            box = _paper_boxes(lam, cut_sizes, generator, dev)
        else:
            box = _minmax_boxes(n, minmax, cut_sizes, generator, dev)
        lam_cut = lam
        if minmax is not None or correct_lam:
            area = (box[..., 1] - box[..., 0]).prod(dim=1).to(torch.float32)
            lam_cut = area.div_(-float(torch.Size(cut_sizes).numel())).add_(1.0)
        if has_mixup:
            lam = torch.where(cutmix, lam_cut, lam)
            box = box * (mixed & cutmix)[:, None, None]
        else:
            lam = lam_cut
            box = box * mixed[:, None, None]
    else:
        box = torch.zeros((n, len(cut_sizes), 2), dtype=torch.long, device=dev)
    lam = torch.where(mixed, lam, 1.0)

    if pairing == "adjacent" and dev is not None:
        partner = _cached_adjacent_partners(batch_size, dev)
    else:
        partner = sample_partners(batch_size, pairing=pairing, generator=generator, device=dev)
    if n != batch_size:  # one draw for the whole batch
        mixed, cutmix, lam, box = (t.expand(batch_size, *t.shape[1:]) for t in (mixed, cutmix, lam, box))
    return MixParams(
        lam=lam.contiguous(),
        partner=partner,
        cutmix=cutmix.contiguous(),
        mixed=mixed.contiguous(),
        box=box.contiguous(),
        cut_sizes=cut_sizes,
        has_mixup=has_mixup,
        has_cutmix=has_cutmix,
        shared=n != batch_size,
        adjacent=pairing == "adjacent",
    )
