r"""Priors over the latent code: the standard normal of the lecture, and learned ones.

A prior is a small module with ``log_prob(z)`` (summed over the last dimension, any leading sample
dimensions kept) and ``sample(n, generator=None)``. A :class:`~vaebook.VAE` holds its prior as a
submodule (``VAEConfig.prior``), so a learned prior's parameters train with the rest of the model,
and :func:`vaebook.model_elbo`, :func:`vaebook.log_likelihood` and ``VAE.sample`` use it.

- :class:`StandardNormalPrior`: :math:`p(z) = \mathcal N(0, I)`, with no parameters. Only with it does
  the ELBO's KL term have the closed form :func:`vaebook.gaussian_kl`.
- :class:`MixturePrior`: a learned mixture of ``K`` diagonal Gaussians,
  :math:`p(z) = \sum_k \pi_k\,\mathcal N(z; m_k, \operatorname{diag} s_k^2)`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import draws, stats
from .guards import check_choice, check_float_tensor, check_int

__all__ = ["PRIORS", "StandardNormalPrior", "MixturePrior", "build_prior"]

PRIORS = ("standard", "mixture")


class StandardNormalPrior(nn.Module):
    r""":math:`p(z) = \mathcal N(0, I)` in ``z_dim`` dimensions.

    Book: eq-prior
    """

    is_standard = True

    def __init__(self, z_dim: int):
        super().__init__()
        self.z_dim = check_int("z_dim", z_dim, min=1)

    def log_prob(self, z: Tensor) -> Tensor:
        """``log N(z; 0, I)``, ``(...,)`` for ``z`` of shape ``(..., z_dim)``."""
        return stats.standard_normal_log_prob(z)

    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        """``n`` draws, ``(n, z_dim)``."""
        return draws.randn((check_int("n", n, min=1), self.z_dim), generator=generator, device=device)


class MixturePrior(nn.Module):
    r"""A learned mixture of ``components`` diagonal Gaussians over ``z``.

    .. math:: p(z) = \sum_{k=1}^K \pi_k\,\mathcal N(z;\, m_k, \operatorname{diag} s_k^2),
              \qquad \pi = \operatorname{softmax}(a)

    The means start spread out as draws from :math:`\mathcal N(0, I)` (fixed seed), the variances
    at 1, the weights equal: so it starts close to a broadened standard normal. Trained with the
    VAE, it can move its mass to where the codes of the data are, and so close the gap
    :math:`\mathrm{KL}(q(z)\,\|\,p(z))` between the aggregate posterior and the prior
    (:func:`vaebook.elbo_decomposition`).

    Book: eq-mixture-prior
    """

    is_standard = False

    def __init__(self, z_dim: int, components: int = 10):
        super().__init__()
        self.z_dim = check_int("z_dim", z_dim, min=1)
        k = check_int("components", components, min=1)
        g = torch.Generator().manual_seed(0)
        self.means = nn.Parameter(torch.randn(k, self.z_dim, generator=g))  # (K, z_dim)
        self.logvars = nn.Parameter(torch.zeros(k, self.z_dim))  # (K, z_dim)
        self.logits = nn.Parameter(torch.zeros(k))  # (K,)

    def log_prob(self, z: Tensor) -> Tensor:
        """``log p(z)`` by log-sum-exp over the components, ``(...,)``."""
        check_float_tensor("z", z)
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"z: expected codes of shape (..., {self.z_dim}), got shape {tuple(z.shape)}")
        log_pi = torch.log_softmax(self.logits, dim=0)  # (K,)
        zz = z.unsqueeze(-2)  # (..., 1, z_dim)
        per = stats.diag_gaussian_log_prob(zz.expand(*z.shape[:-1], len(log_pi), self.z_dim), self.means.expand(*z.shape[:-1], -1, -1), self.logvars.expand(*z.shape[:-1], -1, -1))  # (..., K)
        return torch.logsumexp(per + log_pi, dim=-1)  # (...,)

    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        """``n`` draws, ``(n, z_dim)``: a component by its weight, then a Gaussian draw from it."""
        n = check_int("n", n, min=1)
        with torch.no_grad():
            pi = torch.softmax(self.logits, dim=0).cpu()
            k = torch.multinomial(pi, n, replacement=True, generator=generator)  # (n,)
            eps = torch.randn(n, self.z_dim, generator=generator)
            z = self.means.detach().cpu()[k] + torch.exp(0.5 * self.logvars.detach().cpu()[k]) * eps
        return z.to(device)


def build_prior(kind: str, z_dim: int, components: int = 10) -> StandardNormalPrior | MixturePrior:
    """The prior named ``kind`` (one of :data:`PRIORS`) over ``z_dim`` dimensions."""
    check_choice("prior", kind, PRIORS)
    if kind == "standard":
        return StandardNormalPrior(z_dim)
    return MixturePrior(z_dim, components)
