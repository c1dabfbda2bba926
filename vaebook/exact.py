"""Exact answers for models small enough to have them: 2-D quadrature, and EM for probabilistic PCA.

- :func:`grid_posterior` computes ``log p(x)`` and the posterior of a model with a 2-D latent
  space by quadrature on a grid: the ground truth that the ELBO and importance-sampling chapters
  measure the approximations against. :func:`grid_kl` and :func:`best_diagonal_gaussian` compare a
  Gaussian ``q`` with that posterior.
- :func:`ppca_elbo` and :func:`ppca_em_step`: the ELBO of a linear-Gaussian model in closed form,
  and EM, which climbs it exactly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from . import likelihoods, stats
from .guards import check_finite, check_float_tensor, check_int, check_positive, check_same_shape, describe
from .models import LatentModel, LinearGaussian, as_latent_model, model_batch

__all__ = ["GridPosterior", "grid_posterior", "grid_kl", "best_diagonal_gaussian", "ppca_elbo", "ppca_em_step"]

class GridPosterior(NamedTuple):
    """Quadrature on a 2-D latent grid: ``log p(x)`` per example and the posterior on the grid."""

    log_px: Tensor  # (b,)
    log_posterior: Tensor  # (b, n, n): log p(z | x) at the grid points (a density)
    z1: Tensor  # (n,) grid coordinates along z_1
    z2: Tensor  # (n,) grid coordinates along z_2


@torch.no_grad()
def grid_posterior(model: LatentModel, x: Tensor, lim: float = 4.0, n: int = 161) -> GridPosterior:
    r"""Compute :math:`\log p(x)` by quadrature over a 2-D latent grid, and the exact posterior there.

    .. math::

        \begin{aligned}
        p(x) &= \int p(x\mid z)\,p(z)\,dz \approx \sum_{g} p(x\mid z_g)\,p(z_g)\,\Delta^2, \\
        p(z_g\mid x) &= \frac{p(x\mid z_g)\,p(z_g)}{p(x)}
        \end{aligned}

    on an ``n x n`` grid over ``[-lim, lim]^2``. Exact to quadrature error for a 2-D latent: this is
    the ground truth the ELBO and importance-sampling chapters compare against.

    Book: eq-marginal
    """
    as_latent_model("model", model)
    if model.z_dim != 2:
        raise ValueError(f"model: expected a 2-D latent space for grid quadrature, got z_dim={model.z_dim}")
    lim = check_positive("lim", lim)
    n = check_int("n (grid points per axis)", n, min=2)
    x = check_finite("x", model_batch(model, x))
    g = torch.linspace(-lim, lim, n, device=x.device, dtype=x.dtype)
    z1, z2 = torch.meshgrid(g, g, indexing="ij")
    z = torch.stack([z1.flatten(), z2.flatten()], dim=-1)  # (n*n, 2)
    delta = (g[1] - g[0]).item()
    parts = []
    for zc in z.split(4096):
        x_out = model.decode(zc)  # (m, *data_shape): each grid point is decoded once, for all examples
        lpx = likelihoods.of(model).log_prob_all_pairs(x, x_out)  # (m, b)
        parts.append(lpx + model.log_prior(zc).unsqueeze(1))  # (m, b)
    log_joint = torch.cat(parts, dim=0).T  # (b, n*n)
    log_px = torch.logsumexp(log_joint, dim=1) + 2 * math.log(delta)  # (b,)
    log_post = (log_joint - log_px.unsqueeze(1)).view(-1, n, n)  # (b, n, n)
    return GridPosterior(log_px, log_post, g, g)


def _grid_points(grid: GridPosterior) -> tuple[Tensor, float]:
    """The grid's codes ``(n, n, 2)`` (``[i, j] = (z1[i], z2[j])``) and the area of one cell."""
    z1, z2 = torch.meshgrid(grid.z1, grid.z2, indexing="ij")
    return torch.stack([z1, z2], dim=-1), (grid.z1[1] - grid.z1[0]).item() ** 2


def grid_kl(grid: GridPosterior, mu: Tensor, logvar: Tensor) -> Tensor:
    r"""``KL(N(mu, diag exp(logvar)) || p(z | x))`` for each example, by quadrature on the grid of :func:`grid_posterior`.

    .. math:: \mathrm{KL}(q\,\|\,p(z\mid x)) \approx \sum_g q(z_g)\,\big(\log q(z_g) - \log p(z_g\mid x)\big)\,\Delta^2

    ``mu``, ``logvar``: ``(b, 2)``, one Gaussian per example of ``grid`` (or any number of them
    against a grid of one example). Differentiable in ``mu`` and ``logvar``. Returns ``(b,)`` nats.

    Book: eq-kl-divergence
    """
    if not isinstance(grid, GridPosterior):
        raise TypeError(f"grid: expected the GridPosterior of vb.grid_posterior, got {describe(grid)}")
    check_float_tensor("mu", mu)
    check_float_tensor("logvar", logvar, dtype=mu.dtype)
    check_same_shape("mu", mu, "logvar", logvar)
    b_grid = grid.log_posterior.shape[0]
    if mu.dim() != 2 or mu.shape[1] != 2 or b_grid not in (1, mu.shape[0]):
        raise ValueError(
            f"mu: expected shape (b, 2) with b = {b_grid}, the grid's number of examples (or a grid of one), "
            f"got shape {tuple(mu.shape)}"
        )
    z, cell = _grid_points(grid)
    log_q = stats.diag_gaussian_log_prob(z.unsqueeze(2).expand(-1, -1, len(mu), 2), mu, logvar)  # (n, n, b)
    log_q = log_q.permute(2, 0, 1)  # (b, n, n)
    return (log_q.exp() * (log_q - grid.log_posterior)).flatten(1).sum(1) * cell  # (b,)


def best_diagonal_gaussian(grid: GridPosterior, steps: int = 100, lr: float = 0.05) -> tuple[Tensor, Tensor]:
    """The diagonal Gaussian closest to each example's posterior on the grid: ``(mu, logvar)``, each ``(b, 2)``.

    Minimises :func:`grid_kl` by Adam, starting from the posterior's own mean and variances (its
    moments on the grid). It tells the limit of the variational family apart from an encoder's
    misses: the family can do no better than this, the encoder can do worse.
    """
    if not isinstance(grid, GridPosterior):
        raise TypeError(f"grid: expected the GridPosterior of vb.grid_posterior, got {describe(grid)}")
    steps = check_int("steps", steps, min=0)
    lr = check_positive("lr", lr)
    z, cell = _grid_points(grid)
    post = grid.log_posterior.exp()  # (b, n, n)
    m = (post.unsqueeze(-1) * z).sum((1, 2)) * cell  # (b, 2): posterior means
    v = (post.unsqueeze(-1) * (z - m[:, None, None]) ** 2).sum((1, 2)) * cell  # (b, 2): posterior variances
    mu, logvar = m.clone().requires_grad_(), v.log().requires_grad_()
    opt = torch.optim.Adam([mu, logvar], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            grid_kl(grid, mu, logvar).sum().backward()
            opt.step()
    return mu.detach(), logvar.detach()


# --------------------------------------------------------------------------- EM for probabilistic PCA
def _check_ppca(model, x: Tensor) -> None:
    if not isinstance(model, LinearGaussian):
        raise TypeError(f"model: expected a vaebook.LinearGaussian, got {describe(model)}")
    model._check_x(x)
    check_finite("x", x)


def ppca_elbo(model: LinearGaussian, x: Tensor, q_mean: Tensor, q_cov: Tensor) -> Tensor:
    r"""The ELBO of a linear-Gaussian model for a full-covariance Gaussian ``q(z|x) = N(q_mean, q_cov)``, in closed form.

    .. math:: \mathrm{ELBO} = \mathbb E_q[\log p(x\mid z)] + \mathbb E_q[\log p(z)] + \mathcal H[q]

    ``q_mean``: ``(b, k)``; ``q_cov``: ``(k, k)``, shared by all examples. Returns ``(b,)``.

    Book: eq-em
    """
    _check_ppca(model, x)
    d, k = model.W.shape
    check_float_tensor("q_mean", q_mean, dims=2, dtype=model.W.dtype)
    check_float_tensor("q_cov", q_cov, dims=2, dtype=model.W.dtype)
    if q_mean.shape != (x.shape[0], k) or q_cov.shape != (k, k):
        raise ValueError(f"q_mean and q_cov: expected shapes ({x.shape[0]}, {k}) and ({k}, {k}), "
                         f"got {tuple(q_mean.shape)} and {tuple(q_cov.shape)}")
    if not torch.allclose(q_cov, q_cov.T, atol=1e-6) or not bool(torch.linalg.eigvalsh(q_cov).min() > 0):
        raise ValueError("q_cov: expected a symmetric positive-definite covariance, got one with eigenvalues "
                         f"{torch.linalg.eigvalsh(0.5 * (q_cov + q_cov.T)).tolist()}")
    W, b, c = model.W, model.b, model.c
    r = x - b - q_mean @ W.T  # (b, d) residual at the posterior mean
    tr_wsw = torch.trace(W @ q_cov @ W.T)
    e_log_px = -0.5 * (r.pow(2).sum(-1) + tr_wsw) / c - 0.5 * d * math.log(2 * math.pi * c)
    e_log_pz = -0.5 * (q_mean.pow(2).sum(-1) + torch.trace(q_cov)) - 0.5 * k * math.log(2 * math.pi)
    entropy = 0.5 * torch.logdet(q_cov) + 0.5 * k * (1 + math.log(2 * math.pi))
    return e_log_px + e_log_pz + entropy  # (b,)


@torch.no_grad()
def ppca_em_step(model: LinearGaussian, x: Tensor, update_c: bool = True) -> tuple[Tensor, Tensor]:
    r"""One EM iteration for probabilistic PCA (Tipping & Bishop, 1999), in place.

    EM is coordinate ascent on the ELBO: the **E-step** sets ``q(z|x)`` to the exact posterior,
    which makes the KL gap zero so the ELBO touches ``log p(x)``; the **M-step** maximises the
    ELBO over ``(W, b, c)`` jointly with ``q`` held fixed, in closed form: ``(W, b)`` is the
    least-squares regression of ``x`` on the expected code ``E_q[(z, 1)]``, then ``c`` is the
    expected squared residual per dimension.

    Returns the data set's summed ELBO after the E-step and after the M-step (both scalars): the
    second is never below the first, and the first equals ``sum log p(x)``.

    Book: eq-em
    """
    _check_ppca(model, x)
    if not isinstance(update_c, bool):
        raise TypeError(f"update_c: expected True or False, got {describe(update_c)}")
    n, d = x.shape
    if n < 2:
        raise ValueError(f"x: expected at least two examples for an M-step, got {n}")
    k = model.z_dim
    # E-step: q(z | x_i) = p(z | x_i) = N(m_i, S)
    m, S = model.posterior(x)  # (n, k), (k, k)
    elbo_e = ppca_elbo(model, x, m, S).sum()
    # M-step over (W, b) together: append a constant 1 to the code, so that W z + b = [W, b] (z, 1)
    m1 = torch.cat([m, torch.ones(n, 1, dtype=m.dtype, device=m.device)], dim=1)  # (n, k+1): E_q[(z, 1)]
    Ezz = m1.T @ m1  # (k+1, k+1): sum_i E_q[(z, 1)(z, 1)^T] ...
    Ezz[:k, :k] += n * S  # ... whose z z^T block also holds the posterior covariance
    Wb = torch.linalg.solve(Ezz, m1.T @ x).T  # (d, k+1): the normal equations [W, b] Ezz = x^T m1
    W, b = Wb[:, :k], Wb[:, k]
    if update_c:
        # c = (1 / nd) sum_i E_q ||x_i - W z - b||^2 = (sum_i ||x_i - W m_i - b||^2 + n tr(W S W^T)) / nd
        r = x - m @ W.T - b  # (n, d)
        c = ((r.pow(2).sum() + n * torch.trace(W @ S @ W.T)) / (n * d)).item()
        model.set_c(max(c, 1e-8))
    model.W.copy_(W)
    model.b.copy_(b)
    elbo_m = ppca_elbo(model, x, m, S).sum()
    return elbo_e, elbo_m
