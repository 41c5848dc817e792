"""Pure tensor kernels for CutMix and MixUp: sampling, in-place mixing and target construction.

Nothing here imports Lightning. The callback, the loss and the metric are built on these functions, and they
can be used on their own in any training loop.

Example:
    >>> import torch
    >>> from lightning_mix import functional as LF
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.rand(8, 3, 32, 32), torch.randint(10, (8,), generator=g)
    >>> params = LF.sample_mix_params(8, x.shape[-2:], cutmix_alpha=1.0, mode="elem", generator=g)
    >>> x = LF.mix_(x, params)
    >>> soft = LF.mix_target(y, params, num_classes=10)
    >>> soft.shape
    torch.Size([8, 10])
"""

from lightning_mix.functional.accuracy import mixed_accuracy
from lightning_mix.functional.dense import check_mask, mix_any_target, mix_mask_target, paste_mask_
from lightning_mix.functional.loss import mixed_loss, soft_target_binary_cross_entropy, soft_target_cross_entropy
from lightning_mix.functional.mixing import Workspace, box_mask, default_cut_dims, mix_, pixel_weight
from lightning_mix.functional.params import BatchDraw, MixParams, sample_mix_params, sample_partners
from lightning_mix.functional.targets import mix_target, one_hot

__all__ = [
    "BatchDraw",
    "MixParams",
    "Workspace",
    "box_mask",
    "check_mask",
    "default_cut_dims",
    "mix_",
    "mix_any_target",
    "mix_mask_target",
    "mix_target",
    "mixed_accuracy",
    "mixed_loss",
    "one_hot",
    "paste_mask_",
    "pixel_weight",
    "sample_mix_params",
    "sample_partners",
    "soft_target_binary_cross_entropy",
    "soft_target_cross_entropy",
]
