r"""Tweedie's formula and denoising score matching, on a model whose every answer has a closed form.

:class:`GaussianMixture`: noise of variance :math:`\sigma^2` keeps a mixture of diagonal Gaussians a mixture,
so the noisy density, its score and the posterior mean are exact. :func:`denoiser_score` reads the
score off any denoiser, :func:`tweedie_denoise` goes back, and :func:`dsm_loss` is the objective
(Vincent, 2011) whose minimiser is the score of the noisy data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .. import stats
from ..guards import (
    check_finite,
    check_float_tensor,
    check_int,
    check_number,
    check_range,
    check_same_shape,
)
from .inputs import check_generator, check_pair, check_sigma, check_values

__all__ = ["GaussianMixture", "denoiser_score", "tweedie_denoise", "dsm_loss"]


@dataclass(frozen=True)
class GaussianMixture:
    r"""A mixture of ``K`` diagonal Gaussians in ``d`` dimensions, with every noisy quantity in closed form.

    .. math:: p(x) = \sum_{k=1}^K \pi_k\,\mathcal N\big(x;\, m_k, \operatorname{diag} s_k^2\big)

    ``weights`` (K,) sum to 1, ``means`` (K, d), ``variances`` (K, d) are positive. Adding Gaussian
    noise of variance :math:`\sigma^2` to a draw gives another mixture, with variances
    :math:`s_k^2 + \sigma^2`: that is what makes :meth:`log_prob`, :meth:`score` and
    :meth:`posterior_mean` exact at every noise level.

    Book: eq-mixture-noisy
    """

    weights: Tensor
    means: Tensor
    variances: Tensor

    def __post_init__(self) -> None:
        check_float_tensor("weights", self.weights, dims=1)
        check_float_tensor("means", self.means, dims=2, dtype=self.weights.dtype)
        check_float_tensor("variances", self.variances, dims=2, dtype=self.weights.dtype)
        k = self.weights.shape[0]
        if k == 0:
            raise ValueError("weights: expected at least one component, got shape (0,)")
        if self.means.shape[0] != k:
            raise ValueError(f"means: expected one row per component, shape ({k}, d), got shape {tuple(self.means.shape)}")
        check_same_shape("means", self.means, "variances", self.variances)
        check_range("weights", self.weights, 0.0, 1.0)
        if abs(self.weights.sum().item() - 1.0) > 1e-5:
            raise ValueError(f"weights: expected weights that sum to 1, got a sum of {self.weights.sum().item():.6g}")
        check_finite("means", self.means)
        check_finite("variances", self.variances)
        if bool((self.variances <= 0).any()):
            raise ValueError(f"variances: expected positive values, got a smallest value of {self.variances.min().item():.4g}")

    @property
    def dim(self) -> int:
        """The dimension ``d`` of the data."""
        return self.means.shape[1]

    def _check_x(self, x: Tensor) -> None:
        check_values("x", x, dtype=self.means.dtype)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x: expected points of shape (b, {self.dim}), got shape {tuple(x.shape)}")

    def _component_log_probs(self, x: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
        """``log pi_k + log N(x; m_k, s_k^2 + sigma^2)``, (b, K), and the noisy variances (K, d)."""
        var = self.variances + sigma**2  # (K, d): noise adds its variance to every component
        diff = x.unsqueeze(1) - self.means  # (b, K, d)
        log_n = -0.5 * (diff.pow(2) / var + var.log() + stats.LOG_2PI).sum(-1)  # (b, K)
        return self.weights.log() + log_n, var

    def log_prob(self, x: Tensor, sigma: float = 0.0) -> Tensor:
        r"""``log p_sigma(x)`` of each point, (b,): the mixture blurred by noise of standard deviation ``sigma``.

        ``sigma = 0`` is the mixture itself.
        """
        self._check_x(x)
        sigma = check_number("sigma (the noise level)", sigma, min=0.0)
        log_joint, _ = self._component_log_probs(x, sigma)
        return torch.logsumexp(log_joint, dim=1)  # (b,)

    def responsibilities(self, x: Tensor, sigma: float = 0.0) -> Tensor:
        """``p(component k | x)`` under the noisy mixture, (b, K); each row sums to 1."""
        self._check_x(x)
        sigma = check_number("sigma (the noise level)", sigma, min=0.0)
        log_joint, _ = self._component_log_probs(x, sigma)
        return torch.softmax(log_joint, dim=1)

    def score(self, x: Tensor, sigma: float = 0.0) -> Tensor:
        r"""The score :math:`\nabla_x \log p_\sigma(x)` in closed form, (b, d).

        .. math:: \nabla_x \log p_\sigma(x) = \sum_k r_k(x)\,\frac{m_k - x}{s_k^2 + \sigma^2}

        with :math:`r_k(x)` the responsibility of component :math:`k` for :math:`x` under the noisy
        mixture. Each component pulls :math:`x` towards its mean, more strongly the narrower it is.

        Book: eq-mixture-score
        """
        self._check_x(x)
        sigma = check_number("sigma (the noise level)", sigma, min=0.0)
        log_joint, var = self._component_log_probs(x, sigma)
        r = torch.softmax(log_joint, dim=1).unsqueeze(-1)  # (b, K, 1)
        return (r * (self.means - x.unsqueeze(1)) / var).sum(1)  # (b, d)

    def posterior_mean(self, x_noisy: Tensor, sigma: float) -> Tensor:
        r""":math:`\mathbb E[x \mid \tilde x]` for :math:`\tilde x = x + \sigma\epsilon`, in closed form, (b, d).

        .. math:: \mathbb E[x\mid\tilde x] = \sum_k r_k(\tilde x)\Big(m_k + \frac{s_k^2}{s_k^2 + \sigma^2}(\tilde x - m_k)\Big)

        Given its component, :math:`x` and :math:`\tilde x` are jointly Gaussian, so each component
        shrinks :math:`\tilde x` towards its mean (the Gaussian case of chapter 2's
        posterior mean); the mixture weighs the components by their responsibilities.

        Book: eq-mixture-posterior-mean
        """
        self._check_x(x_noisy)
        sigma = check_sigma(sigma)
        log_joint, var = self._component_log_probs(x_noisy, sigma)
        r = torch.softmax(log_joint, dim=1).unsqueeze(-1)  # (b, K, 1)
        shrunk = self.means + self.variances / var * (x_noisy.unsqueeze(1) - self.means)  # (b, K, d)
        return (r * shrunk).sum(1)  # (b, d)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws, (n, d): a component by its weight, then a Gaussian draw from it."""
        n = check_int("n", n, min=1)
        check_generator(generator)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype)
        return self.means[k] + self.variances[k].sqrt() * eps  # (n, d)


def denoiser_score(x_noisy: Tensor, x_hat: Tensor, sigma: float) -> Tensor:
    r"""The score that a denoiser implies, :math:`(\hat x - \tilde x)/\sigma^2`, by Tweedie's formula.

    .. math:: \mathbb E[x\mid\tilde x] = \tilde x + \sigma^2\,\nabla_{\tilde x}\log p_\sigma(\tilde x)
              \quad\Longleftrightarrow\quad
              \nabla_{\tilde x}\log p_\sigma(\tilde x) = \frac{\mathbb E[x\mid\tilde x] - \tilde x}{\sigma^2}

    ``x_hat`` is a denoiser's output on ``x_noisy`` (the noisy input, noise of standard deviation
    ``sigma``). For the best denoiser, the posterior mean, this is the exact score of the noisy data;
    for a trained one, an estimate of it. Same shape as ``x_noisy``.

    Book: eq-tweedie
    """
    check_pair("x_noisy", x_noisy, "x_hat", x_hat)
    sigma = check_sigma(sigma)
    return (x_hat - x_noisy) / sigma**2


def tweedie_denoise(x_noisy: Tensor, score: Tensor, sigma: float) -> Tensor:
    r"""Tweedie's formula: the posterior mean :math:`\tilde x + \sigma^2\nabla\log p_\sigma(\tilde x)` from a score.

    ``score`` is the score of the noisy data at ``x_noisy`` (same shape). The inverse of
    :func:`denoiser_score`.

    Book: eq-tweedie
    """
    check_pair("x_noisy", x_noisy, "score", score)
    sigma = check_sigma(sigma)
    return x_noisy + sigma**2 * score


def dsm_loss(score: Tensor, x_noisy: Tensor, x: Tensor, sigma: float) -> Tensor:
    r"""Denoising score matching (Vincent, 2011), per example, (b,).

    .. math:: \ell_{\mathrm{DSM}} = \tfrac12\,\Big\lVert s_\theta(\tilde x) - \nabla_{\tilde x}\log q(\tilde x\mid x)\Big\rVert^2
              = \tfrac12\,\Big\lVert s_\theta(\tilde x) - \frac{x - \tilde x}{\sigma^2}\Big\rVert^2

    ``score`` is the model's score :math:`s_\theta(\tilde x)` at the noisy points ``x_noisy``, drawn
    as :math:`\tilde x = x + \sigma\epsilon` from the clean ``x``. Its expectation differs from the
    explicit score-matching loss :math:`\frac12\mathbb E\lVert s_\theta - \nabla\log p_\sigma\rVert^2`
    by a constant that does not depend on the model, so both have the same minimiser, the score of
    the noisy data. With :math:`s_\theta = (f_\theta(\tilde x) - \tilde x)/\sigma^2` it is
    :math:`\lVert f_\theta(\tilde x) - x\rVert^2 / (2\sigma^4)`: chapter 2's denoising objective.

    Book: eq-dsm
    """
    check_pair("score", score, "x_noisy", x_noisy)
    check_values("x", x, dtype=score.dtype)
    check_same_shape("score", score, "x", x)
    sigma = check_sigma(sigma)
    target = (x - x_noisy) / sigma**2  # the score of q(x_noisy | x), a Gaussian around x
    return 0.5 * (score - target).pow(2).flatten(1).sum(1)  # (b,)
