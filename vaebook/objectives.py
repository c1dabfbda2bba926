"""Objectives as functions of tensors: the reconstruction error, the decoder's log-likelihood, the ELBO.

Every objective returns a per-example tensor of shape ``(b,)``; the caller reduces it. The ELBO is
returned as the bound itself (higher is better) with its two terms; training minimises
``-elbo.mean()``. These take tensors, never models: the estimators that run a model's encoder and
decoder are in :mod:`vaebook.estimators`, the training losses built on these in :mod:`vaebook.losses`.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from . import likelihoods, stats
from .guards import check_float_tensor

__all__ = ["ELBO", "reconstruction_error", "log_px_given_z", "elbo", "LIKELIHOODS"]

LIKELIHOODS = likelihoods.NAMES  # the decoders' names, as vaebook.likelihoods gives them


class ELBO(NamedTuple):
    """The evidence lower bound of each example, ``elbo = recon - kl``, all of shape ``(b,)``."""

    elbo: Tensor
    recon: Tensor  # E_q[log p(x | z)], the expected log-likelihood ("reconstruction") term
    kl: Tensor  # KL(q(z | x) || p(z))


# --------------------------------------------------------------------------- autoencoders
def reconstruction_error(x: Tensor, x_hat: Tensor) -> Tensor:
    r"""Squared reconstruction error of each example, :math:`\lVert x_i - f_\theta(x_i)\rVert_2^2`, shape ``(b,)``.

    Summed over pixels (not averaged), as in the lecture's objective
    :math:`\min_\theta \sum_i \lVert x_i - f_\theta(x_i)\rVert_2^2`. With a denoising or
    super-resolution pair, ``x`` is the clean target and ``x_hat`` the output on the corrupted input.

    Book: eq-ae-objective
    """
    check_float_tensor("x", x)
    check_float_tensor("x_hat", x_hat, dtype=x.dtype)
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat: expected the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    if x.dim() < 2:
        raise ValueError(f"x: expected a batch of examples, shape (b, ...), got shape {tuple(x.shape)}")
    return (x - x_hat).pow(2).flatten(1).sum(dim=1)  # (b,)


# --------------------------------------------------------------------------- ELBO
def log_px_given_z(
    x: Tensor, x_out: Tensor, likelihood: str | likelihoods.Likelihood = "bernoulli", c: float | Tensor = 1.0
) -> Tensor:
    r"""The decoder's log-likelihood :math:`\log p(x\mid z;\theta)` for either of the lecture's decoders.

    ``x_out`` is the decoder output: Bernoulli (or continuous Bernoulli) logits, or the Gaussian mean. Shapes as in
    :func:`vaebook.stats.bernoulli_log_prob`: ``x_out`` may carry leading sample dimensions. ``likelihood`` is a
    :class:`~vaebook.likelihoods.Likelihood` (a model's, which carries its own ``c``), or its name, with the
    Gaussian's variance ``c``.

    Book: eq-bernoulli-decoder
    """
    return likelihoods.likelihood(likelihood, c).log_prob(x, x_out)


def elbo(
    x: Tensor,
    x_out: Tensor,
    mu: Tensor,
    logvar: Tensor,
    *,
    likelihood: str | likelihoods.Likelihood = "bernoulli",
    c: float | Tensor = 1.0,
    z: Tensor | None = None,
) -> ELBO:
    r"""The single-sample ELBO of each example, with its reconstruction and KL terms, shape ``(b,)``.

    .. math:: \mathrm{ELBO}(x;\theta,\phi) = \mathbb E_{q(z\mid x;\phi)}[\log p(x\mid z;\theta)]
              - \mathrm{KL}\big(q(z\mid x;\phi)\,\|\,p(z)\big)

    ``x_out = d_theta(z)`` is the decoder output at one sample ``z ~ q`` (the Monte Carlo estimate of
    the first term). The KL term is the closed form :func:`vaebook.stats.gaussian_kl`, unless ``z``
    is given: then it is the single-sample estimate ``log q(z|x) - log p(z)``, which makes the ELBO
    exactly ``log p(x, z) - log q(z | x)`` at that ``z``.

    Book: eq-elbo
    """
    recon = log_px_given_z(x, x_out, likelihood, c)  # (b,)
    if z is None:
        kl = stats.gaussian_kl(mu, logvar)  # (b,)
    else:
        kl = stats.diag_gaussian_log_prob(z, mu, logvar) - stats.standard_normal_log_prob(z)  # (b,)
    if recon.shape != kl.shape:
        raise ValueError(
            f"x_out and mu: expected one sample per example, but x_out gives a reconstruction term of shape "
            f"{tuple(recon.shape)} and mu a KL term of shape {tuple(kl.shape)}"
        )
    return ELBO(recon - kl, recon, kl)
