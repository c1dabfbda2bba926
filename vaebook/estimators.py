"""Monte Carlo estimators on a model: its ELBO, its importance-sampled log-likelihood, and gradients.

- :func:`model_elbo` and :func:`log_likelihood` run a :class:`~vaebook.models.LatentModel`'s encoder
  and decoder and combine the results with the objectives of :mod:`vaebook.objectives`;
  :func:`rate_distortion` reads the same two terms as a distortion and a rate (chapter 12).
- :func:`score_function_gradient` and :func:`reparameterized_gradient` estimate the gradient of
  an expectation under a Gaussian ``q``, the two estimators that chapter 7 compares.
"""

from __future__ import annotations


from typing import Callable, NamedTuple

import torch
from torch import Tensor

from . import draws, likelihoods, stats
from .guards import check_callable, check_choice, check_finite, check_float_tensor, check_int, check_samples, describe
from .models import LatentModel, as_latent_model, model_batch
from .objectives import ELBO, elbo

__all__ = ["Coded", "encode_and_decode", "elbo_terms", "ImportanceSamples", "importance_samples", "model_elbo", "RateDistortion", "rate_distortion", "log_weights", "log_likelihood", "score_function_gradient", "reparameterized_gradient"]

class Coded(NamedTuple):
    """A batch as the model's data, ``q(z|x)``'s parameters, one code per example, and the decoder's output at it."""

    x: Tensor  # (b, *data_shape)
    mu: Tensor  # (b, z_dim)
    logvar: Tensor  # (b, z_dim)
    z: Tensor  # (b, z_dim)
    x_out: Tensor  # (b, *data_shape): logits or mean, as the model's likelihood reads them


def encode_and_decode(model: LatentModel, x: Tensor, eps: Tensor | None = None) -> Coded:
    """Encode ``x``, draw one code ``z = mu + sigma * eps`` per example (``eps`` fixes it), and decode it."""
    as_latent_model("model", model)
    x = model_batch(model, x)
    mu, logvar = model.encode(x)
    z = stats.reparameterize(mu, logvar, eps)
    return Coded(x, mu, logvar, z, model.decode(z))


def elbo_terms(
    model: LatentModel, coded: Coded, *, analytic_kl: bool = True, likelihood: likelihoods.Likelihood | None = None
) -> ELBO:
    """The ELBO's terms per example at the code of :func:`encode_and_decode`.

    ``likelihood`` replaces the model's own (e.g. a Gaussian with another variance); the KL term is
    the closed form when ``analytic_kl`` and the prior is standard, else ``log q(z|x) - log p(z)`` at ``z``.
    """
    lik = likelihood if likelihood is not None else likelihoods.of(model)
    x, mu, logvar, z, x_out = coded
    if analytic_kl and model.prior_is_standard:
        return elbo(x, x_out, mu, logvar, likelihood=lik)
    recon = lik.log_prob(x, x_out)  # (b,)
    kl = stats.diag_gaussian_log_prob(z, mu, logvar) - model.log_prior(z)  # (b,): log q(z|x) - log p(z)
    return ELBO(recon - kl, recon, kl)


def model_elbo(model: LatentModel, x: Tensor, eps: Tensor | None = None, analytic_kl: bool = True) -> ELBO:
    r""":func:`elbo` of a model on a batch, with one reparameterized sample per example.

    ``eps`` fixes the noise. The KL term is the closed form when the prior is :math:`\mathcal N(0, I)`
    and ``analytic_kl`` is true; otherwise (``analytic_kl=False``, or a learned prior) it is the
    single-sample estimate ``log q(z|x) - log p(z)``, which makes the result equal
    :func:`log_likelihood` with ``K=1`` and the same ``eps``.

    Book: eq-elbo
    """
    return elbo_terms(model, encode_and_decode(model, x, eps), analytic_kl=analytic_kl)


class RateDistortion(NamedTuple):
    """Per-example distortion and rate, ``(b,)`` each; with ``distortion="nats"`` their sum is the negative ELBO."""

    distortion: Tensor
    rate: Tensor

    @property
    def total(self) -> Tensor:
        """``distortion + rate``, ``(b,)``: the negative ELBO when the distortion is in nats."""
        return self.distortion + self.rate


def rate_distortion(
    model: LatentModel, x: Tensor, eps: Tensor | None = None, distortion: str = "nats", analytic_kl: bool = True
) -> RateDistortion:
    r"""The negative ELBO of each example as a distortion plus a rate (Alemi et al., 2018).

    .. math::

       D = -\mathbb E_{q(z\mid x)}\big[\log p(x\mid z)\big]

       R = \mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)

       -\mathrm{ELBO} = D + R

    with one code per example, :math:`z = \mu + \sigma\odot\epsilon` (``eps`` fixes it), and the KL
    term as in :func:`model_elbo` (closed form for the standard normal prior). ``distortion``:

    - ``"nats"``: :math:`D` as above, so that ``rate_distortion(...).total`` equals
      ``-model_elbo(...).elbo`` for the same ``eps``;
    - ``"squared_error"``: :math:`\lVert x - \mathbb E[x\mid z]\rVert^2`, summed over pixels, for the
      same code. It does not depend on a Gaussian decoder's variance :math:`c`, so decoders with
      different :math:`c` can be compared on one plane; their negative ELBO is
      :math:`\frac1{2c}(\text{squared error} + 2c\,R)` plus a constant.

    Book: eq-rate-distortion
    """
    check_choice("distortion", distortion, ("nats", "squared_error"))
    coded = encode_and_decode(model, x, eps)
    terms = elbo_terms(model, coded, analytic_kl=analytic_kl)
    if distortion == "nats":
        return RateDistortion(-terms.recon, terms.kl)
    err = (coded.x - likelihoods.of(model).mean(coded.x_out)).pow(2).flatten(1).sum(1)  # (b,)
    return RateDistortion(err, terms.kl)


class ImportanceSamples(NamedTuple):
    """Log importance weights ``(K, b)`` and, where asked for, the codes they were computed at ``(K, b, z_dim)``."""

    log_w: Tensor
    z: Tensor | None


def importance_samples(
    model: LatentModel,
    x: Tensor,
    K: int | None = None,
    *,
    proposal: str = "posterior",
    eps: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
    path_derivative: bool = False,
    keep_codes: bool = False,
    k: int | None = None,  # K's old name, for a deprecation period
) -> ImportanceSamples:
    r""":func:`log_weights`, with two options that the importance-weighted bound's gradients need.

    - ``path_derivative=True``: :math:`\log q(z_i\mid x)` is computed with the encoder's outputs held
      fixed, so the encoder's weights reach the log-weights through :math:`z_i` alone (the values are
      unchanged; the doubly reparametrized gradient of :mod:`vaebook.bounds` is built on it);
    - ``keep_codes=True``: also return the codes :math:`z_i` (else ``z`` is ``None``, and no memory holds them).
    """
    as_latent_model("model", model)
    k = check_samples(K, k)
    check_choice("proposal", proposal, ("posterior", "prior"))
    chunk = k if batch_size is None else check_int("batch_size", batch_size, min=1)
    x = model_batch(model, x)
    lik = likelihoods.of(model)
    mu, logvar = model.encode(x)  # (b, z) each
    if eps is not None:
        check_float_tensor("eps", eps, dtype=mu.dtype)
        if tuple(eps.shape) != (k, *mu.shape):
            raise ValueError(f"eps: expected shape (K, b, z_dim) = {(k, *mu.shape)}, got shape {tuple(eps.shape)}")
    if proposal == "prior":
        mu, logvar = torch.zeros_like(mu), torch.zeros_like(logvar)
    q_mu, q_logvar = (mu.detach(), logvar.detach()) if path_derivative else (mu, logvar)
    parts, codes = [], []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        e = eps[start:start + n] if eps is not None else draws.randn(
            (n, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device
        )  # (n, b, z)
        z = stats.reparameterize(mu, logvar, e)  # (n, b, z)
        lpx = lik.log_prob(x, model.decode(z))  # (n, b)
        lpz = model.log_prior(z)  # (n, b)
        lqz = stats.diag_gaussian_log_prob(z, q_mu, q_logvar)  # (n, b)
        parts.append(lpx + lpz - lqz)
        if keep_codes:
            codes.append(z)
    z_all = (codes[0] if len(codes) == 1 else torch.cat(codes, dim=0)) if keep_codes else None
    return ImportanceSamples(parts[0] if len(parts) == 1 else torch.cat(parts, dim=0), z_all)  # (K, b), (K, b, z)


def log_weights(
    model: LatentModel,
    x: Tensor,
    K: int | None = None,
    *,
    proposal: str = "posterior",
    eps: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
    k: int | None = None,
) -> Tensor:
    r"""The log importance weights of ``K`` samples per example, ``(K, b)``, with gradients.

    .. math:: \log w_i = \log p(x\mid z_i) + \log p(z_i) - \log q(z_i\mid x), \qquad z_i = \mu + \sigma\odot\epsilon_i

    The building block of :func:`log_likelihood` (their log-mean-exp) and of the importance-weighted
    bound. ``proposal="prior"`` draws :math:`z_i \sim \mathcal N(0, I)` instead of :math:`q`.
    ``eps`` (shape ``(K, b, z_dim)``) fixes the noise; ``batch_size`` decodes that many samples at a time.
    ``k=`` is ``K``'s old name, accepted with a ``FutureWarning`` for a deprecation period.

    Book: eq-importance-sampling
    """
    return importance_samples(model, x, K, proposal=proposal, eps=eps, generator=generator, batch_size=batch_size, k=k).log_w


@torch.no_grad()
def log_likelihood(
    model: LatentModel,
    x: Tensor,
    K: int | None = None,
    *,
    proposal: str = "posterior",
    batch_size: int | None = None,
    eps: Tensor | None = None,
    generator: torch.Generator | None = None,
    k: int | None = None,
) -> Tensor:
    r"""Importance-sampled estimate of :math:`\log p(x;\theta)` for each example, shape ``(b,)``.

    .. math:: \log p(x) \approx \log \frac1K \sum_{i=1}^K \frac{p(x\mid z_i)\,p(z_i)}{q(z_i\mid x)},
              \qquad z_i \sim q(z\mid x)

    computed with :func:`vaebook.stats.log_mean_exp` of :func:`log_weights`, so it never forms the
    tiny weights themselves. It is a lower bound in expectation that tightens as ``K`` grows (Burda
    et al., 2015); with ``K=1`` it equals the single-sample ELBO (:func:`model_elbo` with
    ``analytic_kl=False``) for the same ``eps``.

    - ``proposal="prior"`` samples :math:`z_i\sim p(z)` instead: the naive Monte Carlo estimate of
      :math:`\log \mathbb E_{p(z)}[p(x\mid z)]`, which needs far more samples.
    - ``eps`` (shape ``(K, b, z_dim)``) fixes the noise; ``batch_size`` bounds memory by splitting ``K``.
    - ``K`` defaults to 1000; ``k=`` is its old name, accepted with a ``FutureWarning`` for a deprecation period.

    Book: eq-importance-sampling
    """
    as_latent_model("model", model)
    check_finite("x", model_batch(model, x))
    if K is None and k is None:
        K = 1000
    lw = log_weights(model, x, K, proposal=proposal, eps=eps, generator=generator, batch_size=batch_size, k=k)
    return stats.log_mean_exp(lw, dim=0)  # (b,)


# --------------------------------------------------------------------------- gradient estimators
def _check_gradient_args(f, mu: Tensor, logvar: Tensor, eps: Tensor) -> None:
    check_callable("f", f, "a function of z, (S, d) -> (S,)")
    check_float_tensor("mu", mu, dims=1)
    check_float_tensor("logvar", logvar, dims=1, dtype=mu.dtype)
    check_float_tensor("eps", eps, dims=2, dtype=mu.dtype)
    if logvar.shape != mu.shape or eps.shape[1:] != mu.shape:
        raise ValueError(f"mu, logvar and eps: expected shapes (d,), (d,) and (S, d), got "
                         f"{tuple(mu.shape)}, {tuple(logvar.shape)} and {tuple(eps.shape)}")


def _values_of(f, z: Tensor) -> Tensor:
    fz = f(z)
    if not isinstance(fz, Tensor) or tuple(fz.shape) != (z.shape[0],):
        got = f"shape {tuple(fz.shape)}" if isinstance(fz, Tensor) else describe(fz)
        raise ValueError(f"f: expected one value per sample, shape ({z.shape[0]},), got {got}")
    return fz


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
    _check_gradient_args(f, mu, logvar, eps)
    mu = mu.detach().requires_grad_(True)
    logvar = logvar.detach().requires_grad_(True)
    z = (mu + torch.exp(0.5 * logvar) * eps).detach()  # samples carry no gradient here
    fz = _values_of(f, z).detach()  # (S,)
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
    _check_gradient_args(f, mu, logvar, eps)
    mu = mu.detach().requires_grad_(True)
    logvar = logvar.detach().requires_grad_(True)
    z = stats.reparameterize(mu.expand_as(eps), logvar.expand_as(eps), eps)  # (S, d)
    g_mu, g_logvar = torch.autograd.grad(_values_of(f, z).mean(), (mu, logvar))
    return g_mu, g_logvar
