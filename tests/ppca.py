"""Small models the tests share: a probabilistic-PCA model with a known posterior, and draws from it.

A plain module, imported by the tests that need it (conftest.py holds pytest's hooks only).
"""

import math

import torch

import vaebook as vb


def make_ppca(d: int = 6, k: int = 2, c: float = 0.2, seed: int = 0) -> vb.LinearGaussian:
    """A probabilistic-PCA model in float64 with random W and b (fixed by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d, k, generator=g, dtype=torch.float64)
    b = torch.randn(d, generator=g, dtype=torch.float64)
    return vb.LinearGaussian(W, b, c)


def sample_ppca(model: vb.LinearGaussian, n: int = 8, seed: int = 1) -> torch.Tensor:
    """``n`` draws of x from the model: z ~ N(0, I), x = W z + b + sqrt(c) noise."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.z_dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        return model.decode(z) + math.sqrt(model.c) * torch.randn(n, model.W.shape[0], generator=g, dtype=torch.float64)
