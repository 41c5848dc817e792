"""Batch plumbing, image grids and step seeds: the Lightning-free helpers of the callback."""

import types
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor

from lightning_mix.batch import INPUT_NAMES, TARGET_NAMES, BatchAccess, owns_memory
from lightning_mix.seeding import step_seed
from lightning_mix.visual import image_grid, send_images

X, Y = torch.zeros(2, 3, 4, 4), torch.tensor([0, 1])


@dataclass
class Pair:
    image: Tensor
    label: Tensor


@dataclass(frozen=True)
class FrozenPair:
    image: Tensor
    label: Tensor


class Slots:
    __slots__ = ("x", "y")

    def __init__(self) -> None:
        self.x, self.y = X, Y


class ReadOnly:
    @property
    def image(self) -> Tensor:
        return X

    @property
    def label(self) -> Tensor:
        return Y


@pytest.mark.parametrize(
    ("batch", "kwargs", "keys"),
    [
        ([X, Y], {}, (0, 1)),
        ([Y, X, "meta"], {"input_key": 1, "target_key": -3}, (1, -3)),
        ({"pixel_values": X, "labels": Y, "id": 3}, {}, ("pixel_values", "labels")),
        ({"img": X, "gt": Y}, {"input_key": "img", "target_key": "gt"}, ("img", "gt")),
        ({0: X, 1: Y}, {"input_key": 0, "target_key": 1}, (0, 1)),
        (Pair(X, Y), {}, ("image", "label")),
        (Slots(), {}, ("x", "y")),
    ],
)
def test_locate_get_and_set(batch: Any, kwargs: dict[str, Any], keys: tuple[Any, Any]) -> None:
    access = BatchAccess(**kwargs)
    assert access.locate(batch, with_target=True) == keys
    assert access.locate(batch, with_target=False) == (keys[0], None)
    assert access.get(batch, keys[0]) is X and access.get(batch, keys[1]) is Y
    new = torch.ones(2, 2)
    access.set(batch, keys[1], new)
    assert access.get(batch, keys[1]) is new


def test_custom_getter_and_setter_receive_role_names_or_the_given_keys() -> None:
    store: dict[str, Tensor] = {"input": X, "target": Y}
    access = BatchAccess(getter=lambda b, k: b[k], setter=lambda b, k, v: b.__setitem__(k, v))
    assert access.locate(store, with_target=True) == ("input", "target")
    access.set(store, "target", X)
    assert store["target"] is X
    assert BatchAccess(0, "y", getter=access.getter, setter=access.setter).locate(None, with_target=True) == (0, "y")


def test_tuples_are_located_but_take_no_new_items() -> None:
    batch = (X, Y)
    access = BatchAccess()
    assert access.locate(batch, with_target=True) == (0, 1) and access.frozen(batch)
    assert not BatchAccess(getter=lambda b, k: b[k], setter=lambda b, k, v: None).frozen(batch)
    access.set(batch, 1, Y)  # the same object: nothing to do
    with pytest.raises(TypeError, match=r"mutable container, but got 'tuple'\. .*`on_after_batch_transfer`"):
        access.set(batch, 1, Y.clone())


def test_default_names() -> None:
    assert "image" in INPUT_NAMES and "pixel_values" in INPUT_NAMES and "label" in TARGET_NAMES


@pytest.mark.parametrize(
    ("batch", "kwargs", "error", "match"),
    [
        (range(2), {}, TypeError, r"Expected `batch` to be a mutable container .* but got 'range'\. Lightning passes"),
        (X, {}, TypeError, r"but got 'Tensor'"),
        (types.MappingProxyType({"image": X}), {}, TypeError, r"Expected `batch` to be a mutable mapping"),
        (FrozenPair(X, Y), {}, TypeError, r"Expected `batch` to be an object whose attributes can be set.*getter"),
        (ReadOnly(), {}, TypeError, r"an object whose attributes can be set, but got 'ReadOnly'"),
        ([X, Y], {"input_key": 2}, ValueError, r"Expected `input_key` to be a position in a list batch of length 2"),
        ([X, Y], {"target_key": "label"}, TypeError, r"Expected `target_key` to be an int position for a list batch"),
        ([X], {}, ValueError, r"`target_key` to be a position in a list batch of length 1, but got 1\. For batches"),
        ({"image": X}, {}, ValueError, r"`target_key` to be set.*keys \['image'\]\. For batches without a target"),
        ({"x": X, "image": X, "y": Y}, {}, ValueError, r"`input_key` to be set, since the batch has several of"),
        ({"a": X, "b": Y}, {}, ValueError, r"none of the names .* but got None\. The batch has keys \['a', 'b'\]"),
        ({"image": X}, {"target_key": "mask"}, ValueError, r"`target_key` to be a key or attribute of the batch"),
        (Pair(X, Y), {"target_key": "mask"}, ValueError, r"but got 'mask'\. The batch has fields \['image', 'label'\]"),
    ],
)
def test_locate_errors(batch: Any, kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        BatchAccess(**kwargs).locate(batch, with_target=True)


def test_get_refuses_non_tensors() -> None:
    with pytest.raises(TypeError, match=r"Expected `batch item 'name'` to be a torch.Tensor, but got 'str'"):
        BatchAccess().get({"name": "a"}, "name")


@pytest.mark.parametrize(
    ("make", "owns"),
    [
        (lambda d: d, True),
        (lambda d: d.clone(), True),
        (lambda d: d.to(memory_format=torch.channels_last), True),
        (lambda d: d[:2], False),
        (lambda d: d[2:], False),
        (lambda d: d[:, :1], False),
        (lambda d: d.permute(0, 2, 3, 1), False),
        (lambda d: d[:1].expand(4, -1, -1, -1), False),
        (lambda d: torch.from_numpy(d.numpy()[1:]), False),  # a NumPy view: no `_base`, no offset
        (lambda d: torch.as_tensor(d.numpy().copy()), False),  # NumPy's memory
        (lambda d: d.share_memory_(), True),  # what DataLoader workers send
        (lambda d: d.view(-1).as_strided((2, 3, 4, 4), (48, 16, 4, 1), 96), False),
        (lambda d: d.as_strided(d.shape, d.stride()), False),  # the whole storage, but another tensor over it
        (lambda d: KEPT.append(d) or d, False),  # someone else holds the tensor object
        (lambda d: KEPT.append(d) or d.detach(), False),  # someone else holds a tensor over the memory
        (lambda d: torch.frombuffer(bytearray(d.numpy().tobytes()), dtype=d.dtype).view(d.shape), False),
    ],
)
def test_owns_memory(make: Any, owns: bool) -> None:
    x = make(torch.zeros(4, 3, 4, 4))  # `x` is the only reference this test accounts for
    result = owns_memory(x)  # (not inside `assert`: pytest keeps the operands of an assertion alive)
    KEPT.clear()
    assert result is owns


KEPT: list[Tensor] = []


@pytest.mark.parametrize(
    ("shape", "grid"),
    [
        ((1, 3, 4, 5), (3, 8, 9)),
        ((4, 1, 4, 4), (1, 14, 14)),
        ((5, 4, 4, 4), (1, 14, 20)),  # 4 channels: the first one, 3 x 2 layout with one blank tile
        ((20, 3, 2, 2), (3, 18, 18)),  # at most 16 images
        ((2, 3, 5, 4, 4), (3, 8, 14)),  # video: the middle frame
    ],
)
def test_image_grid_shapes(shape: tuple[int, ...], grid: tuple[int, ...]) -> None:
    out = image_grid(torch.randn(shape))
    assert out is not None and out.shape == grid
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_image_grid_places_each_image_and_rescales_it() -> None:
    batch = torch.stack([torch.full((1, 2, 2), 5.0), torch.arange(4.0).view(1, 2, 2)])
    out = image_grid(batch, padding=1)
    assert out is not None
    torch.testing.assert_close(out[0, 1:3, 1:3], torch.zeros(2, 2))  # a constant image maps to 0
    torch.testing.assert_close(out[0, 1:3, 4:6], torch.tensor([[0.0, 1 / 3], [2 / 3, 1.0]]))
    assert bool((out[0, 0] == 1).all()) and bool((out[0, :, 3] == 1).all())  # white padding


def test_image_grid_and_send_images_skip_what_is_not_an_image_batch() -> None:
    assert image_grid(torch.zeros(2, 3, 8)) is None and image_grid(torch.zeros(0, 3, 4, 4)) is None
    calls: list[Any] = []
    logger = types.SimpleNamespace(experiment=types.SimpleNamespace(add_image=lambda *a, **k: calls.append(a)))
    assert send_images([logger], "t", torch.zeros(2, 3, 8), 0) == 0
    assert send_images([types.SimpleNamespace(experiment=None)], "t", torch.zeros(2, 3, 4, 4), 0) == 0
    assert send_images([logger, logger], "t", torch.zeros(2, 3, 4, 4), 5) == 2 and len(calls) == 2


def test_step_seeds_are_distinct_and_differ_from_the_base_seed() -> None:
    seeds = {step_seed(s, r, t) for s in (0, 1, 42) for r in range(4) for t in range(200)}
    assert len(seeds) == 3 * 4 * 200
    assert all(0 <= s < 2**64 for s in seeds) and 42 not in seeds and 0 not in seeds
    assert step_seed(-1, 0, 0) == step_seed(2**64 - 1, 0, 0)
    torch.Generator().manual_seed(max(seeds))  # every value is a valid generator seed
