r"""Where a VAE fails, measured: the aggregate posterior, the ELBO's decomposition, active units, mutual information.

All of these take the encoder's outputs on a data set, ``mu`` and ``logvar`` of shape ``(N, z_dim)``,
one Gaussian :math:`q(z\mid x_n)` per example, and treat the ``N`` examples as the data distribution:

- :func:`log_aggregate_posterior`: :math:`\log q(z)`, the density of the average of the ``N`` posteriors,
  at any codes; :func:`aggregate_posterior_grid` evaluates it on a 2-D grid (the codes of the
  chapters' 2-D model), where it can be drawn and integrated;
- :func:`elbo_decomposition`: the average ELBO split into reconstruction, the mutual information
  :math:`I_q(x; z)` and the gap :math:`\mathrm{KL}(q(z)\,\|\,p(z))` between the aggregate
  posterior and the prior (Hoffman & Johnson, 2016), by quadrature on that grid;
- :func:`mutual_information`: a Monte Carlo estimate of :math:`I_q(x; z)` in any dimension;
- :func:`kl_per_dimension`, :func:`unit_activity` and :func:`active_units`: which latent
  coordinates carry information (Burda et al., 2015).

They sit beside :mod:`vaebook.exact` (quadrature) and take tensors, not models.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from . import draws, stats
from .guards import check_callable, check_finite, check_float_tensor, check_int, check_number, check_positive, check_same_shape

__all__ = [
    "AggregatePosterior",
    "ELBODecomposition",
    "log_aggregate_posterior",
    "aggregate_posterior_grid",
    "elbo_decomposition",
    "mutual_information",
    "kl_per_dimension",
    "unit_activity",
    "active_units",
]

_CHUNK = 2**22  # entries of a (codes, N, z_dim) block evaluated at once: bounds memory


def _check_posteriors(mu: Tensor, logvar: Tensor, dims: int | None = None) -> tuple[Tensor, Tensor]:
    """``mu`` and ``logvar``: finite float tensors of the same shape ``(N, z_dim)``, N >= 1."""
    check_float_tensor("mu", mu, dims=2)
    check_float_tensor("logvar", logvar, dims=2, dtype=mu.dtype)
    check_same_shape("mu", mu, "logvar", logvar)
    if mu.shape[0] == 0:
        raise ValueError(f"mu: expected the posteriors of at least one example, shape (N, z_dim), got shape {tuple(mu.shape)}")
    if dims is not None and mu.shape[1] != dims:
        raise ValueError(f"mu: expected {dims}-D codes for a grid over the latent plane, shape (N, {dims}), got shape {tuple(mu.shape)}")
    check_finite("mu", mu)
    check_finite("logvar", logvar)
    return mu, logvar


# --------------------------------------------------------------------------- the aggregate posterior
def log_aggregate_posterior(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    r"""The log-density of the aggregate posterior at the codes ``z``: ``(...,)`` for ``z`` of shape ``(..., z_dim)``.

    .. math:: q(z) = \frac1N \sum_{n=1}^N q(z\mid x_n), \qquad
              \log q(z) = \operatorname{logsumexp}_n \log q(z\mid x_n) - \log N

    with :math:`q(z\mid x_n) = \mathcal N(\mu_n, \operatorname{diag}\sigma_n^2)` from ``mu`` and
    ``logvar``, ``(N, z_dim)``: the distribution of codes that the encoder produces for the data.
    Computed in blocks of codes, so ``N`` and the number of codes may both be large.

    Book: eq-aggregate-posterior
    """
    mu, logvar = _check_posteriors(mu, logvar)
    check_float_tensor("z", z, dtype=mu.dtype)
    if z.dim() < 1 or z.shape[-1] != mu.shape[1]:
        raise ValueError(f"z: expected codes of shape (..., {mu.shape[1]}) like mu's, got shape {tuple(z.shape)}")
    flat = z.reshape(-1, mu.shape[1])  # (M, z_dim)
    step = max(1, _CHUNK // (mu.numel()))
    parts = []
    for zc in flat.split(step):
        log_qn = stats.diag_gaussian_log_prob(zc.unsqueeze(1).expand(-1, *mu.shape), mu, logvar)  # (m, N)
        parts.append(torch.logsumexp(log_qn, dim=1) - math.log(mu.shape[0]))  # (m,)
    out = torch.cat(parts) if parts else flat.new_zeros(0)
    return out.reshape(z.shape[:-1])  # (...,)


class AggregatePosterior(NamedTuple):
    """The aggregate posterior on a 2-D grid: ``log_q[i, j] = log q(z1[i], z2[j])``."""

    log_q: Tensor  # (n, n) log-density at the grid points
    z1: Tensor  # (n,) grid coordinates along z_1
    z2: Tensor  # (n,) grid coordinates along z_2

    @property
    def cell(self) -> float:
        """The area of one grid cell, :math:`\\Delta^2`."""
        return (self.z1[1] - self.z1[0]).item() * (self.z2[1] - self.z2[0]).item()

    def points(self) -> Tensor:
        """The grid's codes, ``(n, n, 2)``, with ``[i, j] = (z1[i], z2[j])``."""
        a, b = torch.meshgrid(self.z1, self.z2, indexing="ij")
        return torch.stack([a, b], dim=-1)  # (n, n, 2)


def _axis_densities(g: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """``N(g_i; mu_n, sigma_n^2)`` along one axis, ``(N, n)``, in float64."""
    d = g.unsqueeze(0) - mu.unsqueeze(1)  # (N, n)
    return torch.exp(-0.5 * (d.pow(2) * torch.exp(-logvar).unsqueeze(1) + logvar.unsqueeze(1) + stats.LOG_2PI))


def _grid_density(mu: Tensor, logvar: Tensor, lim: float, n: int) -> tuple[Tensor, Tensor]:
    """The grid's coordinates ``(n,)`` and the aggregate posterior's density on it ``(n, n)``, both float64."""
    g = torch.linspace(-lim, lim, n, dtype=torch.float64, device=mu.device)
    m64, lv64 = mu.double(), logvar.double()
    a = _axis_densities(g, m64[:, 0], lv64[:, 0])  # (N, n) along z_1
    b = _axis_densities(g, m64[:, 1], lv64[:, 1])  # (N, n) along z_2
    return g, a.T @ b / mu.shape[0]  # (n, n): the mean over the examples of the product densities


def aggregate_posterior_grid(mu: Tensor, logvar: Tensor, lim: float = 5.0, n: int = 201) -> AggregatePosterior:
    r"""The aggregate posterior :math:`q(z) = \frac1N\sum_n q(z\mid x_n)` of 2-D codes on an ``n x n`` grid over ``[-lim, lim]^2``.

    A diagonal Gaussian in two dimensions is a product of two 1-D densities, so the average over
    the ``N`` examples is one matrix product, :math:`q = \frac1N A^\top B` with
    :math:`A_{ni} = \mathcal N(z_{1,i}; \mu_{n1}, \sigma_{n1}^2)` and :math:`B_{nj}` likewise, computed in
    float64 so that the density stays positive far into the tails (``log_q`` is :math:`-\infty` only
    where every posterior underflows). ``log_q`` comes back in ``mu``'s dtype. On a grid that
    covers the codes, :math:`\sum_g q(z_g)\,\Delta^2 = 1`.

    Book: eq-aggregate-posterior
    """
    mu, logvar = _check_posteriors(mu, logvar, dims=2)
    lim = check_positive("lim", lim)
    n = check_int("n (grid points per axis)", n, min=2)
    g, q = _grid_density(mu, logvar, lim, n)
    grid = g.to(mu.dtype)
    return AggregatePosterior(torch.log(q).to(mu.dtype), grid, grid.clone())


# --------------------------------------------------------------------------- the decomposition
class ELBODecomposition(NamedTuple):
    """The average ELBO over a data set and its three terms: ``elbo = recon - mutual_info - marginal_kl``.

    ``kl`` is the average KL term :math:`\\frac1N\\sum_n \\mathrm{KL}(q(z|x_n)\\,\\|\\,p(z))`, computed on its
    own (closed form for the standard normal prior), so that ``kl = mutual_info + marginal_kl`` is
    a check of the quadrature, not a definition. All are scalar tensors, in nats per example.
    """

    elbo: Tensor  # recon - kl
    recon: Tensor  # the average reconstruction term E_q[log p(x | z)]
    mutual_info: Tensor  # I_q(x; z): how much the codes tell about which example they came from
    marginal_kl: Tensor  # KL(q(z) || p(z)): the gap between the aggregate posterior and the prior
    kl: Tensor  # the average KL(q(z | x_n) || p(z))


def _entropy_gaussian(logvar: Tensor) -> Tensor:
    """``H[N(mu, diag exp(logvar))] = 1/2 sum_j (1 + log 2 pi + logvar_j)``, ``(N,)``."""
    return 0.5 * (1.0 + stats.LOG_2PI + logvar).sum(dim=-1)


def elbo_decomposition(
    recon: Tensor,
    mu: Tensor,
    logvar: Tensor,
    *,
    log_prior: Callable[[Tensor], Tensor] | None = None,
    lim: float = 5.0,
    n: int = 201,
) -> ELBODecomposition:
    r"""Split the average ELBO of ``N`` examples into reconstruction, mutual information and the marginal KL.

    .. math::

        \begin{aligned}
        \frac1N \sum_n \mathrm{ELBO}(x_n) &= \underbrace{\frac1N \sum_n \mathbb E_{q(z\mid x_n)}[\log p(x_n\mid z)]}_{\text{recon}} \\
          &\quad - I_q(x; z) - \mathrm{KL}\big(q(z)\,\|\,p(z)\big), \\
        I_q(x; z) &= \mathcal H[q(z)] - \frac1N \sum_n \mathcal H[q(z\mid x_n)]
        \end{aligned}

    (Hoffman & Johnson, 2016), for 2-D codes, by quadrature on the grid of
    :func:`aggregate_posterior_grid`: the entropy :math:`\mathcal H[q(z)]` and the gap
    :math:`\mathrm{KL}(q(z)\,\|\,p(z))` are sums over the grid, the entropies of the Gaussians
    :math:`q(z\mid x_n)` have a closed form. ``recon``: ``(N,)``, each example's reconstruction
    term (e.g. ``vb.model_elbo(...).recon``); ``mu``, ``logvar``: ``(N, 2)``. ``log_prior`` maps
    codes ``(..., 2)`` to :math:`\log p(z)` (a learned prior's ``log_prob``); ``None`` is
    :math:`\mathcal N(0, I)`, whose average KL term then comes from its closed form; another prior's
    comes from quadrature against each :math:`q(z\mid x_n)`. The grid must hold the codes: ``lim``
    a few posterior widths beyond the largest ``|mu|``, and a spacing ``2 lim / (n - 1)`` no wider
    than the narrowest posterior.

    Book: eq-elbo-decomposition
    """
    mu, logvar = _check_posteriors(mu, logvar, dims=2)
    check_float_tensor("recon", recon, dims=1, dtype=mu.dtype)
    if recon.shape[0] != mu.shape[0]:
        raise ValueError(f"recon: expected one reconstruction term per example, shape ({mu.shape[0]},) like mu's rows, got shape {tuple(recon.shape)}")
    check_finite("recon", recon)
    if log_prior is not None:
        check_callable("log_prior", log_prior, "a function of codes, (..., 2) -> (...,), such as a prior's log_prob")
    lim = check_positive("lim", lim)
    n = check_int("n (grid points per axis)", n, min=2)
    g, q = _grid_density(mu, logvar, lim, n)  # float64
    cell = (g[1] - g[0]).item() ** 2
    z1, z2 = torch.meshgrid(g, g, indexing="ij")
    z = torch.stack([z1, z2], dim=-1)  # (n, n, 2)
    if log_prior is None:
        lp = stats.standard_normal_log_prob(z)  # (n, n)
    else:
        lp = log_prior(z.to(mu.dtype))
        if not isinstance(lp, Tensor) or tuple(lp.shape) != tuple(z.shape[:2]):
            got = f"shape {tuple(lp.shape)}" if isinstance(lp, Tensor) else type(lp).__name__
            raise ValueError(f"log_prior: expected one log-density per grid code, shape {tuple(z.shape[:2])}, got {got}")
        lp = lp.detach().to(torch.float64)
    log_q = torch.log(q)
    held = (q.sum() * cell).item()
    if abs(held - 1.0) > 1e-3:
        raise ValueError(f"lim, n: expected a grid that holds the aggregate posterior (mass 1), got mass {held:.4f}; "
                         "widen lim to cover every code, or raise n so the spacing resolves the narrowest posterior")
    safe = torch.where(q > 0, log_q, torch.zeros_like(log_q))  # q log q -> 0 where q underflows
    entropy_q = -(q * safe).sum() * cell  # H[q(z)]
    marginal_kl = (q * (safe - lp)).sum() * cell  # KL(q(z) || p(z))
    entropy_n = _entropy_gaussian(logvar.double())  # (N,): H[q(z | x_n)], closed form
    mutual_info = entropy_q - entropy_n.mean()
    if log_prior is None:
        kl = stats.gaussian_kl(mu.double(), logvar.double())  # (N,), closed form
    else:  # E_{q_n}[log p] = a_n^T L b_n cell, with q_n(z1_i, z2_j) = a_n(i) b_n(j): one matrix product
        a = _axis_densities(g, mu.double()[:, 0], logvar.double()[:, 0])  # (N, n)
        b = _axis_densities(g, mu.double()[:, 1], logvar.double()[:, 1])  # (N, n)
        expected_lp = ((a @ lp) * b).sum(dim=1) * cell  # (N,)
        kl = -entropy_n - expected_lp
    dtype = mu.dtype
    r = recon.mean()
    return ELBODecomposition(
        (r.double() - kl.mean()).to(dtype), r, mutual_info.to(dtype), marginal_kl.to(dtype), kl.mean().to(dtype)
    )


def mutual_information(
    mu: Tensor, logvar: Tensor, *, eps: Tensor | None = None, generator: torch.Generator | None = None
) -> Tensor:
    r"""A Monte Carlo estimate of the mutual information :math:`I_q(x; z)` between the examples and their codes.

    .. math::

        \begin{aligned}
        I_q(x; z) &= \frac1N \sum_{n=1}^N \mathrm{KL}\big(q(z\mid x_n)\,\|\,q(z)\big) \\
        &\approx \frac1N \sum_n \big(\log q(z_n\mid x_n) - \log q(z_n)\big),
        \qquad z_n \sim q(z\mid x_n)
        \end{aligned}

    with the aggregate posterior :math:`q(z)` of :func:`log_aggregate_posterior`, exact for the
    ``N`` examples, in any dimension. Between 0 (every :math:`q(z\mid x_n)` the same: the codes say
    nothing about the example) and :math:`\log N` (posteriors that do not overlap). One code per
    example, drawn with ``eps`` (``(N, z_dim)``) or ``generator``. Returns a scalar tensor, in nats.

    Book: eq-mutual-information
    """
    mu, logvar = _check_posteriors(mu, logvar)
    if eps is None:
        eps = draws.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    check_float_tensor("eps", eps, dtype=mu.dtype)
    if eps.shape != mu.shape:
        raise ValueError(f"eps: expected one standard normal draw per example, shape {tuple(mu.shape)} like mu's, got shape {tuple(eps.shape)}")
    z = stats.reparameterize(mu, logvar, eps)  # (N, z_dim): z_n ~ q(z | x_n)
    log_qn = stats.diag_gaussian_log_prob(z, mu, logvar)  # (N,): log q(z_n | x_n)
    return (log_qn - log_aggregate_posterior(z, mu, logvar)).mean()


# --------------------------------------------------------------------------- active units
def kl_per_dimension(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""The KL term of each latent coordinate, :math:`\mathrm{KL}(q(z_j\mid x)\,\|\,\mathcal N(0, 1))`, shape ``(b, z_dim)``.

    .. math:: \mathrm{KL}_j = \tfrac12\left(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\right)

    The terms of the closed form :func:`vaebook.gaussian_kl`, which is their sum over ``j``.
    A coordinate whose term is 0 for every example carries no information about it.

    Book: eq-gaussian-kl
    """
    check_float_tensor("mu", mu, dims=2)
    check_float_tensor("logvar", logvar, dims=2, dtype=mu.dtype)
    check_same_shape("mu", mu, "logvar", logvar)
    spread = (torch.expm1(logvar) - logvar).clamp_min(0.0)  # sigma^2 - 1 - log sigma^2, exact near 0
    return 0.5 * (mu.pow(2) + spread)  # (b, z_dim)


def unit_activity(mu: Tensor) -> Tensor:
    r"""How much each latent coordinate's posterior mean varies over the data: :math:`A_j = \operatorname{Var}_x(\mu_j(x))`, ``(z_dim,)``.

    ``mu``: ``(N, z_dim)``, the posterior means of ``N >= 2`` examples (the unbiased variance).

    Book: eq-active-units
    """
    check_float_tensor("mu", mu, dims=2)
    if mu.shape[0] < 2:
        raise ValueError(f"mu: expected the posterior means of at least two examples, got shape {tuple(mu.shape)}")
    check_finite("mu", mu)
    return mu.var(dim=0)  # (z_dim,)


def active_units(mu: Tensor, threshold: float = 0.01) -> int:
    r"""The number of active latent coordinates (Burda et al., 2015): those with :math:`\operatorname{Var}_x(\mu_j(x)) > 0.01`.

    .. math:: \text{active units} = \#\{\, j : A_j > \delta \,\}, \qquad A_j = \operatorname{Var}_x\big(\mathbb E_{q(z\mid x)}[z_j]\big)

    An inactive coordinate's posterior mean is (nearly) the same for every input: it tells the
    decoder nothing. ``mu``: ``(N, z_dim)``; ``threshold``: :math:`\delta`, 0.01 as Burda et al.

    Book: eq-active-units
    """
    threshold = check_number("threshold", threshold, min=0.0)
    return int((unit_activity(mu) > threshold).sum().item())
