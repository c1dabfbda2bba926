"""Batches for :func:`vaebook.fit`: the data it accepts, how it cuts a batch, and the sources it takes batches from.

- :func:`data_pair` accepts an :class:`~vaebook.ImageData`, a tensor or an ``(inputs, targets)``
  pair, and checks it at the door;
- :func:`cut_batch` cuts one batch, binarizes or corrupts it on the CPU, and moves it to the device;
- :class:`DataBatches` is what ``fit`` uses for one data set: a fresh shuffle per pass, then batches
  of one size; :class:`BatchSource` is the interface it implements, for sources of one's own (chapter
  14's batches of labelled and unlabelled images).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .data import ImageData, binarize as binarize_batch
from .guards import check_finite, check_float_tensor, describe

__all__ = ["data_pair", "cut_batch", "BatchSource", "DataBatches"]


def data_pair(data, name: str = "data") -> tuple[Tensor, Tensor | None]:
    """Accept ImageData, a tensor of inputs, or an (inputs, targets) pair; check them at the door."""
    if isinstance(data, ImageData):
        x, t = data.x, None
    elif isinstance(data, Tensor):
        x, t = data, None
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(v, Tensor) for v in data):
        x, t = data
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"{name}: expected as many targets as inputs, got {x.shape[0]} inputs and {t.shape[0]} targets")
    else:
        raise TypeError(f"{name}: expected an ImageData, a tensor of examples, or an (inputs, targets) pair of tensors; got {describe(data)}")
    check_float_tensor(f"{name} (inputs)", x)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch of examples, got shape {tuple(x.shape)}")
    check_finite(f"{name} (inputs)", x)
    if t is not None and t.is_floating_point():
        check_finite(f"{name} (targets)", t)
    elif t is not None and (t.dtype == torch.bool or not t.dtype.is_signed and t.dtype != torch.uint8):
        raise TypeError(f"{name} (targets): expected float targets or int64 class labels, got dtype {t.dtype}")
    return x, t


def cut_batch(
    x: Tensor,
    target: Tensor | None,
    idx: Tensor,
    binarize: bool,
    corrupt: Callable | None,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """One batch ``(input, target)`` on ``device``: cut, binarized and corrupted where ``x`` is (the CPU, in fit), then moved.

    A batch that is its own target is moved once, so that the loss sees the same tensor twice.
    """
    xb = x.index_select(0, idx)  # as x[idx], in half the time for a batch of MNIST digits
    if target is not None:
        return xb.to(device), target.index_select(0, idx).to(device)
    if binarize:
        xb = binarize_batch(xb, generator)
    if corrupt is None:
        xb = xb.to(device)
        return xb, xb
    return corrupt(xb, generator).to(device), xb.to(device)


class BatchSource:
    """Where :func:`fit` takes its batches from, for data that are not one set of examples cut in turn.

    ``fit`` cuts batches from one data set itself. A model that needs two kinds of example in every
    batch (chapter 14's M2 takes a few labelled images and many unlabelled ones at each step) passes
    an object of this kind as ``data`` instead, and ``fit`` calls it:

    - ``size``: the examples per step (``History.images`` counts them); ``per_epoch``: the steps of
      one pass, after which ``fit`` records the pass's mean metrics.
    - ``start(generator, device)``: once, before the first step, with the run's seeded CPU generator
      and the training device.
    - ``order()``: at the start of each pass, what ``cut`` will need (a shuffle, for instance).
    - ``cut(order, i)``: the ``i``-th batch of the pass, ``(inputs, targets)`` on the device, for the
      loss's ``loss(model, inputs, targets)``. Draw every random number from the generator, on the
      CPU, so that a seeded run repeats bit for bit.

    ``binarize``, ``corrupt`` and ``test_data`` are not used with a source; it does what it needs
    itself. The hand-derived step of :mod:`vaebook.fused` is not offered.
    """

    size: int = 0
    per_epoch: int = 0
    plain = False  # examples that are their own targets, with no corruption (what the fused step needs)

    def start(self, generator: torch.Generator, device: torch.device) -> None:
        self.generator, self.device = generator, device

    def order(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.order: a BatchSource must define order()")

    def cut(self, order: Tensor, i: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError(f"{type(self).__name__}.cut: a BatchSource must define cut(order, i)")


class DataBatches(BatchSource):
    """The training data, held on the CPU, cut into batches of one size (the last partial batch of a pass is dropped)."""

    def __init__(self, x: Tensor, target: Tensor | None, batch_size: int, binarize: bool, corrupt):
        self.x, self.target, self.binarize, self.corrupt = x, target, binarize, corrupt
        self.size = min(batch_size, x.shape[0])
        self.per_epoch = x.shape[0] // self.size  # every step sees the same number of examples
        self.plain = target is None and corrupt is None

    def order(self) -> Tensor:
        """A fresh shuffle of the examples, drawn from the run's CPU generator at the start of each pass."""
        return torch.randperm(self.x.shape[0], generator=self.generator)

    def cut(self, order: Tensor, i: int) -> tuple[Tensor, Tensor]:
        idx = order[i * self.size:(i + 1) * self.size]
        return cut_batch(self.x, self.target, idx, self.binarize, self.corrupt, self.generator, self.device)
