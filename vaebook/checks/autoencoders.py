"""The checks of the exercises on autoencoders and their codes (chapters 0, 1 and 4), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import objectives as _obj
from .core import Case, check
from .core import gen as _gen

__all__ = ["class_means", "reconstruction_error", "pca_reconstruction", "code_statistics"]


# --------------------------------------------------------------------------- the data (chapter 0)
def class_means(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, y)`` returns the mean image of each digit class 0-9, shape ``(10, *x.shape[1:])``."""

    def ref(x, y):
        return torch.stack([x[y == d].mean(0) for d in range(10)])

    g = _gen(0)
    y = torch.arange(40) % 10
    cases = [
        Case((torch.rand(40, 1, 28, 28, generator=g), y), "40 images, 4 per class"),
        Case((torch.rand(10, 784, generator=g), torch.arange(9, -1, -1)), "one image per class, labels in reverse"),
    ]
    hints = [(lambda r, case: r.mean(0, keepdim=True).expand_as(r), "average within each class, not over the whole batch.")]
    check("class_means", fn, ref, cases, hints=hints, strict=strict)


# --------------------------------------------------------------------------- reconstruction (chapter 1)
def reconstruction_error(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, x_hat)`` returns each example's summed squared error, shape ``(b,)``."""
    g = _gen(1)
    cases = [
        Case((torch.rand(4, 1, 28, 28, generator=g), torch.rand(4, 1, 28, 28, generator=g)), "4 images"),
        Case((torch.rand(1, 784, generator=g), torch.rand(1, 784, generator=g)), "batch of 1, flattened"),
        Case((torch.ones(2, 1, 28, 28), torch.ones(2, 1, 28, 28)), "perfect reconstruction"),
    ]
    hints = [
        (lambda r, case: r / 784, "average over pixels gives the mean; the objective sums the squared errors."),
        (lambda r, case: r.sqrt(), "the objective uses the squared norm, not the norm."),
        (lambda r, case: r.sum(), "return one value per example, shape (b,): sum over pixels only."),
    ]
    check("reconstruction_error", fn, _obj.reconstruction_error, cases, hints=hints, strict=strict)


def pca_reconstruction(fn: Callable[[Tensor, Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, mean, components)`` projects ``(n, d)`` data onto ``k`` orthonormal rows and back."""

    def ref(x, mean, components):
        return (x - mean) @ components.T @ components + mean  # (n, d)

    g = _gen(2)
    q, _ = torch.linalg.qr(torch.randn(10, 3, generator=g))
    cases = [
        Case((torch.randn(5, 10, generator=g), torch.randn(10, generator=g), q.T.contiguous()), "5 points, k=3"),
        Case((torch.randn(1, 10, generator=g), torch.zeros(10), q.T[:1].contiguous()), "batch of 1, k=1"),
    ]
    hints = [(lambda r, case: r - case.args[1], "add the mean back after projecting.")]
    check("pca_reconstruction", fn, ref, cases, hints=hints, strict=strict)


# --------------------------------------------------------------------------- codes (chapter 4)
def code_statistics(fn: Callable[[Tensor], tuple[Tensor, Tensor]], *, strict: bool = False) -> None:
    """Exercise: ``fn(z)`` returns the per-dimension mean and standard deviation (unbiased) of codes ``(n, k)``."""
    g = _gen(7)
    cases = [
        Case((3 * torch.randn(100, 4, generator=g) + 2,), "100 codes in 4-D"),
        Case((torch.tensor([[1.0, 2.0], [3.0, 6.0]]),), "two codes"),
    ]
    hints = [(lambda r, case: (r[0], r[1] ** 2), "return the standard deviation, not the variance.")]
    check("code_statistics", fn, lambda z: (z.mean(0), z.std(0)), cases, hints=hints, strict=strict)
