"""The checks of the coding exercises of chapter 15 (discrete codes, the VQ-VAE), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import vq as _vq
from .core import Case, check
from .core import gen as _gen

__all__ = ["nearest_code"]


def nearest_code(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(z_e, codebook)`` is the index of the nearest codebook entry for each row of ``z_e``, shape ``(n,)``.

    ``z_e``: ``(n, D)``; ``codebook``: ``(M, D)``. Any way of computing the squared (or plain)
    Euclidean distance is accepted: the indices are compared, on inputs without ties.
    """
    g = _gen(150)
    z = torch.randn(20, 4, generator=g)
    book = torch.randn(6, 4, generator=g)
    spread = torch.cat([0.1 * torch.randn(5, 2, generator=g), 5 + torch.randn(5, 2, generator=g)])  # entries of very different norms
    big = torch.tensor([[0.0, 0.0], [4.0, 0.0], [1.0, 1.0], [-3.0, 2.0], [6.0, 6.0]])
    cases = [
        Case((z, book), "20 vectors of 4 numbers, 6 entries"),
        Case((spread, big), "entries of very different lengths: the nearest is not the most aligned"),
        Case((book[2:3] + 1e-3, book), "one vector next to entry 2"),
    ]

    def argmin_without_entry_norm(case):
        z_e, e = case.args
        return (-2 * z_e @ e.T).argmin(1).double()

    hints = [
        (lambda r, case: argmin_without_entry_norm(case),
         "the squared distance ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2: the term ||e||^2 differs from entry to entry, so it cannot be dropped."),
        (lambda r, case: torch.cdist(case.args[0], case.args[1]).argmax(1).double(),
         "the nearest entry has the smallest distance: argmin, not argmax."),
    ]
    def reference(z_e: Tensor, codebook: Tensor) -> Tensor:  # indices as floats, so that a mismatch is shown as numbers
        return _vq.nearest_code(z_e, codebook).double()

    check("nearest_code", fn, reference, cases, hints=hints, atol=0, rtol=0, strict=strict)
