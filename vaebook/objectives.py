"""Objectives: reconstruction error, the ELBO, the importance-sampled log-likelihood, and friends.

Every objective returns a per-example tensor of shape ``(b,)``; the caller reduces it. The ELBO is
returned as the bound itself (higher is better) with its two terms; training minimises
``-elbo.mean()``. Functions named ``model_*`` (and :func:`log_likelihood`) take a model and call its
``encode``/``decode``; the others take tensors only.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import stats
from .models import VAE, Autoencoder, DigitClassifier, LinearGaussian, SuperResolver

__all__ = [
    "ELBO",
    "LossOutput",
    "reconstruction_error",
    "log_px_given_z",
    "elbo",
    "model_elbo",
    "log_likelihood",
    "GridPosterior",
    "grid_posterior",
    "grid_kl",
    "best_diagonal_gaussian",
    "training_loss",
    "score_function_gradient",
    "reparameterized_gradient",
    "ppca_em_step",
    "ppca_elbo",
]


class ELBO(NamedTuple):
    """The evidence lower bound of each example, ``elbo = recon - kl``, all of shape ``(b,)``."""

    elbo: Tensor
    recon: Tensor  # E_q[log p(x | z)], the expected log-likelihood ("reconstruction") term
    kl: Tensor  # KL(q(z | x) || p(z))


class LossOutput(NamedTuple):
    """A scalar loss to minimise, and per-batch metrics (floats) to log."""

    loss: Tensor
    metrics: dict[str, Tensor]


# --------------------------------------------------------------------------- autoencoders
def reconstruction_error(x: Tensor, x_hat: Tensor) -> Tensor:
    r"""Squared reconstruction error of each example, :math:`\lVert x_i - f_\theta(x_i)\rVert_2^2`, shape ``(b,)``.

    Summed over pixels (not averaged), as in the lecture's objective
    :math:`\min_\theta \sum_i \lVert x_i - f_\theta(x_i)\rVert_2^2`. With a denoising or
    super-resolution pair, ``x`` is the clean target and ``x_hat`` the output on the corrupted input.

    Book: eq-ae-objective
    """
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    if x.dim() < 2:
        raise ValueError(f"x must have a batch dimension, shape (b, ...), got {tuple(x.shape)}")
    return (x - x_hat).pow(2).flatten(1).sum(dim=1)  # (b,)


# --------------------------------------------------------------------------- ELBO
def log_px_given_z(x: Tensor, x_out: Tensor, likelihood: str = "bernoulli", c: float = 1.0) -> Tensor:
    r"""The decoder's log-likelihood :math:`\log p(x\mid z;\theta)` for either of the lecture's decoders.

    ``x_out`` is the decoder output: Bernoulli logits or the Gaussian mean. Shapes as in
    :func:`vaebook.stats.bernoulli_log_prob`: ``x_out`` may carry leading sample dimensions.

    Book: eq-bernoulli-decoder
    """
    if likelihood == "bernoulli":
        return stats.bernoulli_log_prob(x, x_out)
    if likelihood == "gaussian":
        return stats.gaussian_log_prob(x, x_out, c)
    raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")


def elbo(
    x: Tensor,
    x_out: Tensor,
    mu: Tensor,
    logvar: Tensor,
    *,
    likelihood: str = "bernoulli",
    c: float = 1.0,
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
            f"x_out gives a reconstruction term of shape {tuple(recon.shape)} but mu gives a KL of shape "
            f"{tuple(kl.shape)}: pass one sample per example"
        )
    return ELBO(recon - kl, recon, kl)


def _latent_model_parts(model):
    for attr in ("encode", "decode", "likelihood", "data_shape"):
        if not hasattr(model, attr):
            raise TypeError(
                f"{type(model).__name__} is not a latent variable model: it has no {attr!r} "
                "(expected a vaebook.VAE or vaebook.LinearGaussian)"
            )
    return model


def _as_data(model, x: Tensor) -> Tensor:
    shape = tuple(model.data_shape)
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x))}")
    if x.dim() >= 2 and x[0].numel() == math.prod(shape):
        return x.reshape(x.shape[0], *shape)  # (b, ...) -> (b, *data_shape)
    raise ValueError(f"x must hold examples of shape {shape} (or flattened), got {tuple(x.shape)}")


def model_elbo(model, x: Tensor, eps: Tensor | None = None, analytic_kl: bool = True) -> ELBO:
    """:func:`elbo` of a model on a batch, with one reparameterized sample per example.

    ``eps`` fixes the noise. ``analytic_kl=False`` uses the single-sample KL estimate, which makes the
    result equal :func:`log_likelihood` with ``k=1`` and the same ``eps``.

    Book: eq-elbo
    """
    _latent_model_parts(model)
    x = _as_data(model, x)
    mu, logvar = model.encode(x)
    z = stats.reparameterize(mu, logvar, eps)
    x_out = model.decode(z)
    return elbo(x, x_out, mu, logvar, likelihood=model.likelihood, c=model.c, z=None if analytic_kl else z)


@torch.no_grad()
def log_likelihood(
    model,
    x: Tensor,
    k: int = 1000,
    *,
    proposal: str = "posterior",
    batch_size: int | None = None,
    eps: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Importance-sampled estimate of :math:`\log p(x;\theta)` for each example, shape ``(b,)``.

    .. math:: \log p(x) \approx \log \frac1k \sum_{i=1}^k \frac{p(x\mid z_i)\,p(z_i)}{q(z_i\mid x)},
              \qquad z_i \sim q(z\mid x)

    computed with :func:`vaebook.stats.log_mean_exp`, so it never forms the tiny weights themselves.
    It is a lower bound in expectation that tightens as ``k`` grows (Burda et al., 2015); with
    ``k=1`` it equals the single-sample ELBO (:func:`model_elbo` with ``analytic_kl=False``) for
    the same ``eps``.

    - ``proposal="prior"`` samples :math:`z_i\sim p(z)` instead: the naive Monte Carlo estimate of
      :math:`\log \mathbb E_{p(z)}[p(x\mid z)]`, which needs far more samples.
    - ``eps`` (shape ``(k, b, z_dim)``) fixes the noise; ``batch_size`` bounds memory by splitting ``k``.

    Book: eq-importance-sampling
    """
    _latent_model_parts(model)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if proposal not in ("posterior", "prior"):
        raise ValueError(f"proposal must be 'posterior' or 'prior', got {proposal!r}")
    x = _as_data(model, x)
    mu, logvar = model.encode(x)  # (b, z) each
    if eps is not None and tuple(eps.shape) != (k, *mu.shape):
        raise ValueError(f"eps must have shape (k, b, z_dim) = {(k, *mu.shape)}, got {tuple(eps.shape)}")
    if proposal == "prior":
        mu, logvar = torch.zeros_like(mu), torch.zeros_like(logvar)
    chunk = batch_size or k
    log_w = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        e = eps[start:start + n] if eps is not None else torch.randn(
            (n, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device
        )  # (n, b, z)
        z = stats.reparameterize(mu, logvar, e)  # (n, b, z)
        lpx = log_px_given_z(x, model.decode(z), model.likelihood, model.c)  # (n, b)
        lpz = stats.standard_normal_log_prob(z)  # (n, b)
        lqz = stats.diag_gaussian_log_prob(z, mu, logvar)  # (n, b)
        log_w.append(lpx + lpz - lqz)
    return stats.log_mean_exp(torch.cat(log_w, dim=0), dim=0)  # (b,)


class GridPosterior(NamedTuple):
    """Quadrature on a 2-D latent grid: ``log p(x)`` per example and the posterior on the grid."""

    log_px: Tensor  # (b,)
    log_posterior: Tensor  # (b, n, n): log p(z | x) at the grid points (a density)
    z1: Tensor  # (n,) grid coordinates along z_1
    z2: Tensor  # (n,) grid coordinates along z_2


def _log_px_given_z_all_pairs(x: Tensor, x_out: Tensor, likelihood: str, c: float) -> Tensor:
    """``log p(x_i | z_g)`` for every decoded grid point ``g`` (``x_out``: ``(m, ...)``) and example ``i``: ``(m, b)``.

    The Bernoulli term is linear in ``x``, so all pairs come from one matrix product instead of an
    ``(m, b, D)`` tensor; the Gaussian one is computed pair by pair (expanding the square would lose
    precision), in chunks that bound memory.
    """
    if likelihood == "bernoulli":
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                f"Bernoulli targets x must lie in [0, 1], got values in [{x.min().item():.3g}, {x.max().item():.3g}]"
            )
        logits = x_out.flatten(1)  # (m, D)
        # sum_j x_j l_j - softplus(l_j)  (the stable form of stats.bernoulli_log_prob), for all pairs
        return logits @ x.flatten(1).T - F.softplus(logits).sum(1, keepdim=True)  # (m, b)
    step = max(1, 2**22 // (x.shape[0] * x[0].numel()))  # bounds the (m', b, D) tensor below
    parts = [
        log_px_given_z(x, out.unsqueeze(1).expand(-1, *x.shape), likelihood, c)  # (m', b)
        for out in x_out.split(step)
    ]
    return torch.cat(parts, dim=0)  # (m, b)


@torch.no_grad()
def grid_posterior(model, x: Tensor, lim: float = 4.0, n: int = 161) -> GridPosterior:
    r"""Compute :math:`\log p(x)` by quadrature over a 2-D latent grid, and the exact posterior there.

    .. math:: p(x) = \int p(x\mid z)\,p(z)\,dz \approx \sum_{g} p(x\mid z_g)\,p(z_g)\,\Delta^2,
              \qquad p(z_g\mid x) = \frac{p(x\mid z_g)\,p(z_g)}{p(x)}

    on an ``n x n`` grid over ``[-lim, lim]^2``. Exact to quadrature error for a 2-D latent: this is
    the ground truth the ELBO and importance-sampling chapters compare against.

    Book: eq-marginal
    """
    _latent_model_parts(model)
    z_dim = model.config.z_dim if hasattr(model, "config") else model.z_dim
    if z_dim != 2:
        raise ValueError(f"grid quadrature needs a 2-D latent space, the model has z_dim={z_dim}")
    if n < 2 or lim <= 0:
        raise ValueError(f"need n >= 2 grid points and lim > 0, got n={n}, lim={lim}")
    x = _as_data(model, x)
    param = next(model.parameters())
    g = torch.linspace(-lim, lim, n, device=param.device, dtype=param.dtype)
    z1, z2 = torch.meshgrid(g, g, indexing="ij")
    z = torch.stack([z1.flatten(), z2.flatten()], dim=-1)  # (n*n, 2)
    delta = (g[1] - g[0]).item()
    log_joint = []
    for zc in z.split(4096):
        x_out = model.decode(zc)  # (m, *data_shape): each grid point is decoded once, for all examples
        lpx = _log_px_given_z_all_pairs(x, x_out, model.likelihood, model.c)  # (m, b)
        log_joint.append(lpx + stats.standard_normal_log_prob(zc).unsqueeze(1))  # (m, b)
    log_joint = torch.cat(log_joint, dim=0).T  # (b, n*n)
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
    stats._check_float("mu", mu)
    stats._check_float("logvar", logvar)
    stats._check_same_shape("mu", mu, "logvar", logvar)
    b_grid = grid.log_posterior.shape[0]
    if mu.dim() != 2 or mu.shape[1] != 2 or b_grid not in (1, mu.shape[0]):
        raise ValueError(
            f"mu must have shape (b, 2) with b = {b_grid}, the grid's number of examples (or a grid of one), "
            f"got {tuple(mu.shape)}"
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
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
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


# --------------------------------------------------------------------------- training losses
def _ae_loss(model, x, target) -> LossOutput:
    x_hat = model(x)
    err = reconstruction_error(target.reshape(x_hat.shape), x_hat)  # (b,)
    return LossOutput(err.mean(), {"mse": err.mean().detach() / x_hat[0].numel()})


def _vae_loss(model, x, target) -> LossOutput:
    if target is not x and not torch.equal(target, x):
        raise ValueError("a VAE is trained to reproduce its input: pass data without separate targets")
    terms = model_elbo(model, x)
    beta = getattr(model, "beta", 1.0)  # KL weight, set by the KLWarmup callback
    loss = -(terms.recon - beta * terms.kl).mean()
    return LossOutput(
        loss,
        {"elbo": terms.elbo.mean().detach(), "recon": terms.recon.mean().detach(), "kl": terms.kl.mean().detach()},
    )


def _classifier_loss(model, x, target) -> LossOutput:
    logits = model(x)
    loss = F.cross_entropy(logits, target)
    acc = (logits.argmax(-1) == target).float().mean()
    return LossOutput(loss, {"cross_entropy": loss.detach(), "accuracy": acc.detach()})


_LOSSES: dict[type, Callable[..., LossOutput]] = {
    Autoencoder: _ae_loss,
    SuperResolver: _ae_loss,
    VAE: _vae_loss,
    DigitClassifier: _classifier_loss,
}


def training_loss(model, x: Tensor, target: Tensor) -> LossOutput:
    """The default objective that :func:`vaebook.fit` minimises for each of the library's models.

    - :class:`~vaebook.Autoencoder`, :class:`~vaebook.SuperResolver`: the mean over the batch of
      :func:`reconstruction_error` against ``target`` (the clean image for denoising pairs).
    - :class:`~vaebook.VAE`: ``-elbo.mean()`` (with the KL term weighted by ``model.beta`` if set).
    - :class:`~vaebook.DigitClassifier`: cross-entropy against integer labels.
    """
    for cls, fn in _LOSSES.items():
        if isinstance(model, cls):
            return fn(model, x, target)
    raise TypeError(
        f"no default loss for {type(model).__name__}; pass loss=fn(model, x, target) -> LossOutput to fit"
    )


# --------------------------------------------------------------------------- gradient estimators
def score_function_gradient(
    f: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, eps: Tensor
) -> tuple[Tensor, Tensor]:
    r"""The score-function (REINFORCE) estimate of :math:`\nabla_{\mu,\log\sigma^2}\,\mathbb E_{q}[f(z)]`.

    .. math:: \nabla_\phi \mathbb E_{q_\phi}[f(z)] = \mathbb E_{q_\phi}\big[f(z)\,\nabla_\phi \log q_\phi(z)\big]
              \approx \frac1S \sum_{s} f(z_s)\,\nabla_\phi \log q_\phi(z_s)

    ``mu``, ``logvar``: ``(d,)``; ``eps``: ``(S, d)`` standard normal draws, ``z_s = mu + sigma * eps_s``.
    ``f`` maps ``(S, d)`` to ``(S,)``. It needs only values of ``f``, never its gradient. Returns the
    gradient with respect to ``mu`` and to ``logvar``, each ``(d,)``.

    Book: eq-score-function
    """
    mu = mu.detach().requires_grad_(True)
    logvar = logvar.detach().requires_grad_(True)
    z = (mu + torch.exp(0.5 * logvar) * eps).detach()  # samples carry no gradient here
    fz = f(z).detach()  # (S,)
    log_q = stats.diag_gaussian_log_prob(z, mu, logvar)  # (S,)
    surrogate = (fz * log_q).mean()
    g_mu, g_logvar = torch.autograd.grad(surrogate, (mu, logvar))
    return g_mu, g_logvar


def reparameterized_gradient(
    f: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, eps: Tensor
) -> tuple[Tensor, Tensor]:
    r"""The reparameterization estimate of :math:`\nabla_{\mu,\log\sigma^2}\,\mathbb E_{q}[f(z)]`.

    .. math:: \nabla_\phi \mathbb E_{p(\epsilon)}[f(\mu + \sigma\odot\epsilon)]
              \approx \frac1S \sum_s \nabla_\phi f(\mu + \sigma\odot\epsilon_s)

    Same arguments as :func:`score_function_gradient`; ``f`` must be differentiable.

    Book: eq-grad-phi
    """
    mu = mu.detach().requires_grad_(True)
    logvar = logvar.detach().requires_grad_(True)
    z = stats.reparameterize(mu.expand_as(eps), logvar.expand_as(eps), eps)  # (S, d)
    g_mu, g_logvar = torch.autograd.grad(f(z).mean(), (mu, logvar))
    return g_mu, g_logvar


# --------------------------------------------------------------------------- EM for probabilistic PCA
def ppca_elbo(model: LinearGaussian, x: Tensor, q_mean: Tensor, q_cov: Tensor) -> Tensor:
    r"""The ELBO of a linear-Gaussian model for a full-covariance Gaussian ``q(z|x) = N(q_mean, q_cov)``, in closed form.

    .. math:: \mathrm{ELBO} = \mathbb E_q[\log p(x\mid z)] + \mathbb E_q[\log p(z)] + \mathcal H[q]

    ``q_mean``: ``(b, k)``; ``q_cov``: ``(k, k)``, shared by all examples. Returns ``(b,)``.

    Book: eq-em
    """
    d, k = model.W.shape
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
    n, d = x.shape
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
        model.c_value = max(c, 1e-8)
    model.W.copy_(W)
    model.b.copy_(b)
    elbo_m = ppca_elbo(model, x, m, S).sum()
    return elbo_e, elbo_m
