"""The checks of the coding exercises of chapter 12 (rate and distortion), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import losses as _losses
from .core import Case, check
from .core import gen as _gen

__all__ = ["calibrated_gaussian_nll"]


def _nll_with(x: Tensor, x_mean: Tensor, c: Tensor) -> Tensor:
    """``-log N(x; x_mean, c I)`` per example for a given variance ``c`` (a scalar or ``(b, 1)``)."""
    err = (x - x_mean).pow(2).flatten(1)
    return err.sum(1) / (2 * c.flatten()) + 0.5 * err.shape[1] * torch.log(2 * math.pi * c.flatten())


def calibrated_gaussian_nll(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, x_mean)`` is ``-log p(x | z)`` per example, ``(b,)``, with the variance set to the batch's mean squared error per pixel.

    One variance for the whole batch, ``c = mean((x - x_mean)**2)`` over examples and pixels; then
    ``||x_i - x_mean_i||^2 / (2c) + (D/2) log(2 pi c)`` for each example, with ``D`` values per example.
    """
    g = _gen(50)
    x = torch.rand(6, 1, 28, 28, generator=g)
    x_mean = (x + 0.1 * torch.randn(6, 1, 28, 28, generator=g) * torch.arange(1.0, 7.0).view(6, 1, 1, 1)).clamp(0, 1)
    cases = [
        Case((x, x_mean), "6 images whose errors grow from the first to the last"),
        Case((x[:1], (x[:1] + 0.05).clamp(0, 1)), "a batch of one image"),
        Case((torch.zeros(3, 10), torch.full((3, 10), 0.5)), "3 vectors of 10 values, every error 0.5: c = 0.25"),
    ]

    def err(case):
        return (case.args[0] - case.args[1]).pow(2).flatten(1)

    hints = [
        (lambda r, case: _nll_with(case.args[0], case.args[1], err(case).mean(1)),
         "one variance for the whole batch: c is the mean over all examples *and* pixels, not each example's own mean."),
        (lambda r, case: _nll_with(case.args[0], case.args[1], err(case).sum(1).mean()),
         "c is the mean squared error per pixel: divide the summed squared error by the number of pixels too."),
        (lambda r, case: _nll_with(case.args[0], case.args[1], err(case).mean().sqrt()),
         "c is a variance, the mean of the squared errors, not its square root (the standard deviation)."),
        (lambda r, case: err(case).sum(1) / (2 * err(case).mean()),
         "the normaliser of the Gaussian counts: add (D/2) log(2 pi c), which depends on c and so on the errors."),
        (lambda r, case: -r, "a negative log-likelihood is to minimise: flip the sign of the log-density."),
    ]
    check("calibrated_gaussian_nll", fn, _losses.calibrated_gaussian_nll, cases, hints=hints, atol=1e-3, rtol=1e-5, strict=strict)
