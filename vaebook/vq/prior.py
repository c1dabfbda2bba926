r"""A prior over the grids of codes of :mod:`vaebook.vq`, fitted by counting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import draws
from ..guards import check_float_tensor, check_int, check_int_tuple, check_number, check_tensor


# --------------------------------------------------------------------------- a prior over codes
class CodePrior:
    r"""A categorical distribution over the :math:`M` entries at each grid position, independent across positions.

    Fitted by counting the codes of training images, with ``alpha`` added to every count (Laplace
    smoothing, so that no code has probability 0):

    .. math:: p_{ij}(k) = \frac{\#\{\text{images with code } k \text{ at } (i, j)\} + \alpha}{n + M\alpha}

    ``log_prob(indices)`` is the sum over positions, ``(b,)``; ``sample(n, generator)`` draws grids.
    :meth:`uniform` is the VAE's fixed prior, :math:`1/M` everywhere.

    Book: eq-code-prior
    """

    def __init__(self, probs: Tensor):
        check_float_tensor("probs", probs, dims=3)
        if (probs < 0).any() or not torch.allclose(probs.sum(-1), torch.ones((), dtype=probs.dtype), atol=1e-5):
            raise ValueError("probs: expected probabilities (h, w, M), non-negative and summing to 1 over M at each position")
        self.probs = probs

    @classmethod
    def fit(cls, indices: Tensor, codebook_size: int, alpha: float = 1.0) -> CodePrior:
        m = check_int("codebook_size", codebook_size, min=2)
        alpha = check_number("alpha", alpha, min=0.0, min_open=True)
        check_tensor("indices", indices, dims=3)
        if indices.is_floating_point() or len(indices) == 0:
            raise ValueError(f"indices: expected integer codes of shape (n, h, w) with n >= 1, got {indices.dtype} "
                             f"of shape {tuple(indices.shape)}")
        if indices.min() < 0 or indices.max() >= m:
            raise ValueError(f"indices: expected values from 0 to {m - 1}, got values from {indices.min().item()} to {indices.max().item()}")
        counts = F.one_hot(indices.long(), m).sum(0).double()  # (h, w, M)
        return cls(((counts + alpha) / (len(indices) + m * alpha)).float())

    @classmethod
    def uniform(cls, grid: tuple[int, int], codebook_size: int) -> CodePrior:
        h, w = check_int_tuple("grid", grid, length=2)
        m = check_int("codebook_size", codebook_size, min=2)
        return cls(torch.full((h, w, m), 1.0 / m))

    def log_prob(self, indices: Tensor) -> Tensor:
        check_tensor("indices", indices, dims=3)
        if indices.is_floating_point() or tuple(indices.shape[1:]) != tuple(self.probs.shape[:2]):
            raise ValueError(f"indices: expected integer codes of shape (b, {self.probs.shape[0]}, {self.probs.shape[1]}), "
                             f"got {indices.dtype} of shape {tuple(indices.shape)}")
        logp = self.probs.log().expand(len(indices), *self.probs.shape)  # (b, h, w, M)
        return logp.gather(-1, indices.long().unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)  # (b,)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_int("n", n, min=1)
        h, w, m = self.probs.shape
        u = draws.rand((n, h, w, 1), generator=generator)  # inverse CDF: the same draws on every device
        cdf = self.probs.cumsum(-1)  # (h, w, M)
        return (u > cdf).sum(-1).clamp_max(m - 1)  # (n, h, w)
