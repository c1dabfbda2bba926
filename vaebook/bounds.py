r"""Tighter bounds: the importance-weighted bound :math:`\mathcal L_K`, its gradient estimators, and their noise.

- :func:`iwae_bound` turns log-weights ``(K, b)`` into the bound of each example, ``(b,)``: tensors in,
  tensors out, like :mod:`vaebook.objectives`.
- :func:`iwae_objective` runs a model (through :func:`vaebook.log_weights`) and returns the bound
  with the gradient of the chosen estimator: ``"iwae"``, the plain reparametrized gradient of
  Burda et al. (2015), or ``"dreg"``, the doubly reparametrized gradient of Tucker et al. (2019).
- :class:`IWAELoss` is that objective as a training loss for :func:`vaebook.fit`.
- :func:`bound_gradients` draws independent gradient estimates at fixed weights, and
  :func:`gradient_snr` turns them into signal-to-noise ratios (Rainforth et al., 2018).
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from . import stats
from .estimators import importance_samples
from .guards import check_choice, check_finite, check_float_tensor, check_int, check_samples, describe, value_checks_enabled
from .losses import LossOutput, check_reconstruction_target
from .models import LatentModel, as_latent_model, model_batch

__all__ = ["ESTIMATORS", "iwae_bound", "iwae_objective", "IWAELoss", "BoundGradients", "bound_gradients", "gradient_snr"]

ESTIMATORS = ("iwae", "dreg")


# --------------------------------------------------------------------------- the bound, on tensors
def iwae_bound(log_w: Tensor) -> Tensor:
    r"""The importance-weighted bound of each example from its ``K`` log-weights: ``(K, b) -> (b,)``.

    .. math:: \mathcal L_K(x) = \log \frac1K \sum_{i=1}^K w_i, \qquad
              w_i = \frac{p(x, z_i)}{q(z_i\mid x)}, \quad z_i \sim q(z\mid x)

    An estimate whose expectation is the bound :math:`\mathcal L_K`; computed in log space
    (:func:`vaebook.log_mean_exp`), since the weights themselves underflow. With ``K = 1`` it is
    the single-sample ELBO. Differentiating it gives the plain IWAE gradient,
    :math:`\sum_i \tilde w_i \nabla \log w_i` with :math:`\tilde w_i = w_i / \sum_j w_j`.

    Book: eq-iwae-bound
    """
    check_float_tensor("log_w (log-weights, (K, b))", log_w, dims=2)
    if log_w.shape[0] == 0:
        raise ValueError(f"log_w (log-weights, (K, b)): expected at least one sample (K >= 1), got shape {tuple(log_w.shape)}")
    if value_checks_enabled() and bool(torch.isnan(log_w).any()):
        check_finite("log_w (log-weights, (K, b))", log_w)
    return stats.log_mean_exp(log_w, dim=0)  # (b,)


# --------------------------------------------------------------------------- on a model
def _objective(model: LatentModel, x: Tensor, k: int, estimator: str, eps: Tensor | None, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """``(bound, log_w)``: the bound ``(b,)`` with ``estimator``'s gradient, and the log-weights ``(K, b)``."""
    if estimator == "iwae":
        log_w = importance_samples(model, x, k, eps=eps, generator=generator).log_w  # (k, b)
        return iwae_bound(log_w), log_w
    # log q holds the encoder's outputs fixed: the encoder's weights reach the weights through z alone
    log_w, z = importance_samples(model, x, k, eps=eps, generator=generator, path_derivative=True, keep_codes=True)  # (k, b), (k, b, z)
    assert z is not None  # keep_codes
    w_norm = torch.softmax(log_w.detach(), dim=0)  # (k, b): the normalised weights w~_i, constants here
    if z.requires_grad:
        z.register_hook(lambda grad: grad * w_norm.unsqueeze(-1))  # (k, b, z): the second factor w~_i
    surrogate = (w_norm * log_w).sum(0)  # (b,): its gradient is sum_i w~_i grad log w_i
    bound = iwae_bound(log_w.detach())  # (b,)
    return surrogate + (bound - surrogate).detach(), log_w  # the bound's value, the surrogate's gradient


def iwae_objective(
    model: LatentModel,
    x: Tensor,
    K: int | None = None,
    *,
    estimator: str = "iwae",
    eps: Tensor | None = None,
    generator: torch.Generator | None = None,
    k: int | None = None,
) -> Tensor:
    r"""An estimate of :math:`\mathcal L_K` for each example, ``(b,)``, whose gradient is ``estimator``'s.

    The value is :func:`iwae_bound` of :func:`vaebook.log_weights` for either estimator (and the same
    ``eps``); the gradient is

    - ``"iwae"``: :math:`\sum_i \tilde w_i\,\nabla_{\theta,\phi} \log w_i`, the plain one;
    - ``"dreg"``: the same for the decoder's weights :math:`\theta`, and for the encoder's
      :math:`\phi` the doubly reparametrized gradient of Tucker et al. (2019),

      .. math:: \nabla_\phi \mathcal L_K \approx \sum_{i=1}^K \tilde w_i^{\,2}\,
                \frac{\partial \log w_i}{\partial z_i}\,\frac{\partial z_i}{\partial \phi},
                \qquad z_i = \mu_\phi(x) + \sigma_\phi(x)\odot\epsilon_i

      where :math:`\log w_i` holds :math:`q`'s parameters fixed (only the path through :math:`z_i`
      counts). Both are unbiased for :math:`\nabla \mathcal L_K`. One backward pass gives both
      parts: a hook on :math:`z` scales the gradient that reaches each :math:`z_i` by :math:`\tilde w_i`,
      which makes the surrogate's :math:`\tilde w_i` a :math:`\tilde w_i^{\,2}` for the encoder only.

    ``eps`` ``(K, b, z_dim)`` fixes the noise. ``k=`` is ``K``'s old name, accepted with a ``FutureWarning`` for a deprecation period.

    Book: eq-dreg
    """
    check_choice("estimator", estimator, ESTIMATORS)  # the model, x and eps are checked where they are used
    return _objective(model, x, check_samples(K, k), estimator, eps, generator)[0]


@dataclass
class IWAELoss:
    r"""``-L_k.mean()``: train a latent variable model on the importance-weighted bound with ``K`` samples.

    ``K = 1`` is the VAE's single-sample ELBO (with the KL term estimated, not in closed form).
    ``estimator`` is ``"iwae"`` (Burda et al., 2015) or ``"dreg"`` (Tucker et al., 2019): the same
    value, different encoder gradients (:func:`iwae_objective`). The logged metrics are ``bound``,
    the batch mean of :math:`\mathcal L_K`, and ``elbo``, the mean of the ``K`` log-weights (an
    estimate of the ELBO, :math:`\mathcal L_1`).

    Book: eq-iwae-bound
    """

    K: int = 5
    estimator: str = "iwae"
    k: InitVar[int | None] = None  # K's old name, for a deprecation period

    def __post_init__(self, k: int | None) -> None:
        self.K = check_samples(None if k is not None and self.K == 5 else self.K, k)
        check_choice("estimator", self.estimator, ESTIMATORS)

    def __call__(self, model: LatentModel, x: Tensor, target: Tensor) -> LossOutput:
        check_reconstruction_target(x, target)
        bound, log_w = _objective(model, x, self.K, self.estimator, None, None)  # (b,), (K, b)
        return LossOutput(-bound.mean(), {"bound": bound.mean().detach(), "elbo": log_w.mean().detach()})


# --------------------------------------------------------------------------- gradient noise
class BoundGradients(NamedTuple):
    """Independent estimates of the gradient of :math:`\\mathcal L_K`, one row per repeat."""

    encoder: Tensor  # (repeats, b, 2 * z_dim): with respect to the encoder's outputs (mu, logvar)
    decoder: Tensor  # (repeats, b, *data_shape): with respect to a bias added to the decoder's output


class _Probed:
    """A model whose encoder outputs and decoder output have zero-valued offsets added, to differentiate against."""

    def __init__(self, model: LatentModel, enc: Tensor, dec: Tensor):
        self.model, self.enc, self.dec = model, enc, dec
        self.z_dim, self.data_shape, self.likelihood = model.z_dim, model.data_shape, model.likelihood
        self.c, self.prior_is_standard = model.c, model.prior_is_standard

    def log_prior(self, z: Tensor) -> Tensor:
        return self.model.log_prior(z)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.model.encode(x)  # (n, z) each
        d_mu, d_logvar = self.enc.chunk(2, dim=-1)  # (n, z) each
        return mu + d_mu, logvar + d_logvar

    def decode(self, z: Tensor) -> Tensor:
        return self.model.decode(z) + self.dec  # (k, n, *data_shape): the offset broadcasts over samples


def bound_gradients(
    model: LatentModel,
    x: Tensor,
    K: int | None = None,
    repeats: int | None = None,
    *,
    estimator: str = "iwae",
    generator: torch.Generator | None = None,
    max_samples: int = 16_384,
    k: int | None = None,
) -> BoundGradients:
    r"""``repeats`` independent estimates of :math:`\nabla \mathcal L_K(x)` for each example, at fixed weights.

    For one example, every gradient of the encoder's weights :math:`\phi` passes through its two
    outputs, :math:`\nabla_\phi \mathcal L_K = J_\phi^\top\,\nabla_{(\mu,\log\sigma^2)} \mathcal L_K`
    with a Jacobian :math:`J_\phi` that does not depend on the noise; so the ``encoder`` gradient,
    ``(repeats, b, 2 * z_dim)``, holds all of the encoder's gradient noise for that example. The
    ``decoder`` gradient, ``(repeats, b, *data_shape)``, is with respect to a bias added to the
    decoder's output :math:`d_\theta(z)` (the last layer's bias, for a Bernoulli decoder).
    ``estimator`` is ``"iwae"`` or ``"dreg"`` (:func:`iwae_objective`). The examples are repeated
    so that many estimates come from one pass, in chunks of at most ``max_samples`` codes.

    Book: eq-iwae-gradient
    """
    as_latent_model("model", model)
    k = check_samples(K, k)
    repeats = check_int("repeats (independent estimates)", repeats, min=2)
    check_choice("estimator", estimator, ESTIMATORS)
    max_samples = check_int("max_samples", max_samples, min=1)
    x = check_finite("x", model_batch(model, x))
    b = x.shape[0]
    per_pass = max(1, max_samples // (k * b))  # repeats per pass
    enc_parts, dec_parts = [], []
    for start in range(0, repeats, per_pass):
        r = min(per_pass, repeats - start)
        xr = x.repeat(r, *([1] * (x.dim() - 1)))  # (r * b, *data_shape): repeat-major
        enc = torch.zeros(r * b, 2 * model.z_dim, dtype=x.dtype, device=x.device, requires_grad=True)
        dec = torch.zeros(r * b, *model.data_shape, dtype=x.dtype, device=x.device, requires_grad=True)
        with torch.enable_grad():  # also inside a caller's torch.no_grad()
            bound = iwae_objective(_Probed(model, enc, dec), xr, k, estimator=estimator, generator=generator)  # (r * b,)
            g_enc, g_dec = torch.autograd.grad(bound.sum(), (enc, dec))  # each row sees only its own estimate
        enc_parts.append(g_enc.view(r, b, -1))  # (r, b, 2 z)
        dec_parts.append(g_dec.view(r, b, *model.data_shape))  # (r, b, *data_shape)
    return BoundGradients(torch.cat(enc_parts), torch.cat(dec_parts))


def gradient_snr(grads: Tensor, signal: Tensor | None = None) -> Tensor:
    r"""The signal-to-noise ratio of each gradient coordinate over independent estimates (dimension 0).

    .. math:: \mathrm{SNR} = \frac{\lvert \mathbb E[g] \rvert}{\sqrt{\operatorname{Var}[g]}}
              \approx \frac{\lvert \bar g \rvert}{s_g}

    with :math:`s_g` the (unbiased) standard deviation of ``grads`` ``(repeats, ...)`` and
    :math:`\bar g` their mean, or ``signal`` (shape ``(...)``) where a better estimate of
    :math:`\mathbb E[g]` is at hand: the mean of ``R`` estimates is off by about :math:`s_g/\sqrt R`,
    so an SNR below :math:`1/\sqrt R` cannot be told from zero by the estimates' own mean. Returns
    ``(...)``; a coordinate that never varies gets ``inf`` (``nan`` if its mean is 0 too).
    Rainforth et al. (2018) follow it as ``K`` grows.

    Book: eq-snr
    """
    name = "grads (independent gradient estimates, (repeats, ...))"
    check_float_tensor(name, grads)
    if grads.dim() == 0 or grads.shape[0] < 2:
        raise ValueError(f"{name}: expected at least 2 estimates along dimension 0, got {describe(grads)}")
    check_finite(name, grads)
    if signal is None:
        return grads.mean(0).abs() / grads.std(0)  # (...)
    check_float_tensor("signal (the mean gradient)", signal, dtype=grads.dtype)
    if tuple(signal.shape) != tuple(grads.shape[1:]):
        raise ValueError(f"signal (the mean gradient): expected the shape of one estimate, {tuple(grads.shape[1:])}, got shape {tuple(signal.shape)}")
    check_finite("signal (the mean gradient)", signal)
    return signal.abs() / grads.std(0)  # (...)
