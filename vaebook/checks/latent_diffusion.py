"""The checks of the coding exercises of chapter 16 (the VAE inside latent diffusion), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import latent_diffusion as _ld
from .core import Case, check
from .core import gen as _gen

__all__ = ["latent_scale"]


def latent_scale(fn: Callable[[Tensor], float], *, strict: bool = False) -> None:
    """Exercise: ``fn(z)`` is the latent scale 1/sigma_hat, one number for all the latents ``z``, ``(b, C, h, w)``.

    sigma_hat is the standard deviation of all the numbers of ``z`` about their common mean z_bar, with
    1/n_z (n_z: how many numbers there are) as Rombach et al. write it. A float or a one-element tensor is accepted.
    """
    g = _gen(160)
    wide = 2.0 + 3.0 * torch.randn(64, 4, 7, 7, generator=g)  # mean 2, spread 3: the root mean square is not the spread
    channels = torch.randn(32, 4, 7, 7, generator=g) * torch.tensor([0.5, 1.0, 2.0, 4.0]).view(1, 4, 1, 1)  # (b, 4, 1, 1) spreads
    tiny = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]], [[[4.0, 5.0], [6.0, 7.0]]]])  # (2, 1, 2, 2): 8 numbers, 1/n_z against 1/(n_z - 1) shows
    cases = [
        Case((wide,), "64 latents of 4 x 7 x 7 with mean 2 and spread 3"),
        Case((channels,), "channels with spreads 0.5, 1, 2 and 4: one scale for all of them"),
        Case((tiny,), "8 numbers, 0 to 7"),
    ]

    def reference(z: Tensor) -> Tensor:  # a 0-d tensor, so that an answer of another shape is named as such
        return torch.tensor(_ld.latent_scale(z), dtype=torch.float64)

    hints = [
        (lambda r, case: 1.0 / r, "the scale is 1/sigma_hat, the number that gives the latents unit variance, not sigma_hat itself."),
        (lambda r, case: 1.0 / case.args[0].double().pow(2).mean().sqrt(),
         "sigma_hat is the spread about z_bar, the mean of all the numbers: subtract it before squaring (the root mean square is not the spread)."),
        (lambda r, case: 1.0 / case.args[0].double().std(),
         "sigma_hat^2 divides by n_z, how many numbers there are, as Rombach et al. write it: torch.std divides by n_z - 1 unless told unbiased=False."),
        (lambda r, case: 1.0 / case.args[0].double().std(dim=(0, 2, 3), unbiased=False),
         "one scale for every coordinate of every position: the standard deviation of all the numbers at once, not one per channel."),
    ]
    check("latent_scale", fn, reference, cases, hints=hints, atol=0.0, rtol=1e-4, strict=strict)
