"""Per-sample CutMix on CPU with the boxes read on the host: slice copies that move only the pasted boxes.

On CPU there is no device to wait for: the drawn boxes are ordinary memory, and reading them gives each
sample's box as Python integers. Each pair of partners then exchanges its two boxes through a scratch copy of
one of them, so the batch moves about ``1.5 × (1 − λ)`` of its size instead of being rewritten. The loop is over
pairs, in Python, so it only pays off for large samples; below :data:`MIN_SAMPLE_BYTES` (and on every
accelerator, where reading the boxes would be a host-device sync) the vectorised kernels run instead.
"""

from __future__ import annotations

from torch import Tensor

from lightning_mix.functional._blend import BlockSource
from lightning_mix.functional.params import MixParams

MIN_SAMPLE_BYTES = 160 << 10
"""Per-sample size from which the host path beats the vectorised kernel on CPU, 1 thread (float32, α = 1,
either pairing): it loses at 3×96² (108 KiB) and 3×112² (147 KiB) and wins from 3×128² (192 KiB, 1.3 against
1.7 ms with adjacent pairs) to 3×224² (588 KiB, 3.3 against 5.2 ms; with random partners 3.0 against 11.0 ms)."""


def host_boxes_pay(y: Tensor, params: MixParams) -> bool:
    """Whether :func:`paste_boxes_on_host_` should mix ``y``: per-sample CutMix of large samples, all on CPU."""
    return (
        params.has_cutmix
        and not params.has_mixup
        and not params.shared
        and y.device.type == "cpu"
        and params.box.device.type == "cpu"
        and params.partner.device.type == "cpu"
        and y.shape[0] > 1
        and y[0].numel() * y.element_size() >= MIN_SAMPLE_BYTES
    )


def paste_boxes_on_host_(y: Tensor, params: MixParams, cuts: list[int], block: BlockSource) -> None:
    """``y[i][box_i] <- y[partner[i]][box_i]`` for every sample, with slice copies, bit for bit.

    ``y`` is the batch in memory order (batch first), ``cuts`` the dims of ``y`` the boxes span, in the order of
    ``params.box``. Partners swap (``partner[partner[i]] == i``) except, in an odd batch, one sample that borrows
    from a sample nobody borrows from it: it is pasted first, while its donor is unmixed. ``block`` gives the
    scratch for one box (reused from pair to pair).
    """
    boxes = params.box.tolist()  # CPU memory: no device to wait for
    partner = params.partner.tolist()

    def region(sample: int, box: list[list[int]]) -> Tensor:
        out = y[sample]
        for dim, (start, stop) in zip(cuts, box, strict=True):
            out = out.narrow(dim - 1, start, stop - start)  # a sample lacks the batch dim
        return out

    def area(box: list[list[int]]) -> bool:
        return all(stop > start for start, stop in box)

    pairs = []
    for i, j in enumerate(partner):
        if partner[j] != i:  # the odd one out borrows from j, whom nobody else changes yet
            if area(boxes[i]):
                region(i, boxes[i]).copy_(region(j, boxes[i]))
        elif i < j:
            pairs.append((i, j))
    for i, j in pairs:
        takes_i, takes_j = area(boxes[i]), area(boxes[j])
        saved = None
        if takes_j:  # what j takes from i, before i changes
            taken = region(i, boxes[j])
            saved = block("box", tuple(taken.shape), y.dtype, y.device).copy_(taken)
        if takes_i:
            region(i, boxes[i]).copy_(region(j, boxes[i]))
        if saved is not None:
            region(j, boxes[j]).copy_(saved)
