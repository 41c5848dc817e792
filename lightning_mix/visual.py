"""A grid of images for loggers, built with plain tensor ops (no torchvision needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["image_grid", "send_images"]


def image_grid(batch: Tensor, *, max_images: int = 16, padding: int = 2) -> Tensor | None:
    """Tile the first images of a batch into one ``(C, H, W)`` float image with values in [0, 1].

    Each image is rescaled to [0, 1] on its own (batches are usually normalised). Images with 1 or 3 channels
    are kept as they are, others show their first channel; video ``(B, C, T, H, W)`` shows its middle frame.

    Args:
        batch: ``(B, C, H, W)`` images or ``(B, C, T, H, W)`` video.
        max_images: at most this many images, in a near-square grid.
        padding: pixels of white between images.

    Returns:
        The grid, on the batch's device, or None if ``batch`` is not an image or video batch.

    Example:
        >>> image_grid(torch.rand(5, 3, 8, 8)).shape  # 3 x 2 images of 8 pixels with 2 pixels between
        torch.Size([3, 22, 32])
        >>> image_grid(torch.rand(5, 3, 8)) is None
        True
    """
    if batch.ndim == 5:
        batch = batch[:, :, batch.shape[2] // 2]
    if batch.ndim != 4 or batch.shape[0] == 0:
        return None
    images = batch[:max_images].detach().float()
    if images.shape[1] not in (1, 3):
        images = images[:, :1]
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    high = images.amax(dim=(1, 2, 3), keepdim=True)
    images = (images - low) / (high - low).clamp_min(1e-12)
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    blank = images.new_ones(rows * cols - n, c, h, w)
    tiles = torch.nn.functional.pad(torch.cat((images, blank)), (padding, 0, padding, 0), value=1.0)
    tiles = tiles.view(rows, cols, c, h + padding, w + padding).permute(2, 0, 3, 1, 4)
    grid = tiles.reshape(c, rows * (h + padding), cols * (w + padding))
    return torch.nn.functional.pad(grid, (0, padding, 0, padding), value=1.0)


def send_images(loggers: Sequence[Any], tag: str, images: Tensor, step: int) -> int:
    """Send a grid of ``images`` to every logger whose ``experiment`` has ``add_image`` (TensorBoard's API).

    Args:
        loggers: Lightning loggers (``trainer.loggers``); others are skipped.
        tag: the image's name.
        images: the batch to show, see :func:`image_grid`.
        step: the global step to file the image under.

    Returns:
        How many loggers took the grid: 0 when none accepts images or ``images`` is not an image batch.

    Example:
        >>> class Experiment:
        ...     def add_image(self, tag, image, global_step): print(tag, tuple(image.shape), global_step)
        >>> class Logger:
        ...     experiment = Experiment()
        >>> send_images([Logger(), object()], "mix/images", torch.rand(4, 3, 8, 8), step=7)
        mix/images (3, 22, 22) 7
        1
    """
    sinks = [fn for lg in loggers if callable(fn := getattr(getattr(lg, "experiment", None), "add_image", None))]
    grid = image_grid(images) if sinks else None
    if grid is None:
        return 0
    grid = grid.cpu()  # reads device memory: a host sync, acceptable once in a while
    for add_image in sinks:
        add_image(tag, grid, global_step=step)
    return len(sinks)
