r"""From denoising to diffusion: Tweedie's formula, denoising score matching, and a small DDPM.

Chapter 13 of the book. Three layers, each built on the one before:

- **Tweedie's formula** on a model whose every answer has a closed form: a mixture of diagonal
  Gaussians (:class:`GaussianMixture`). Noise of variance :math:`\sigma^2` keeps it a mixture, so
  the noisy density, its *score* :math:`\nabla_{\tilde x}\log p_\sigma(\tilde x)` and the posterior
  mean :math:`\mathbb E[x\mid\tilde x]` are exact. :func:`denoiser_score` reads the score off any
  denoiser, :func:`tweedie_denoise` goes back.
- **Denoising score matching** (Vincent, 2011): :func:`dsm_loss`, the objective whose minimiser is
  the score of the noisy data, and which is chapter 2's denoising objective up to a factor.
- **A diffusion model** (Ho et al., 2020) read as a hierarchical VAE whose encoder is fixed: the
  noise schedule and :math:`q(x_t\mid x_0)` (:class:`NoiseSchedule`), the :math:`\epsilon`-prediction
  network (:class:`DDPM`), its training loss (:class:`DiffusionLoss`, for :func:`vaebook.fit`), the
  ELBO term by term (:func:`diffusion_elbo`), and the ancestral sampler (:func:`ddpm_sample`), which
  can skip steps.

A DDPM works on images scaled to :math:`[-1, 1]`; :class:`DDPM` takes and returns images in
:math:`[0, 1]` (the library's convention) and converts at its door (:func:`to_signed`,
:func:`to_unit`). Time steps are integers :math:`t = 1, \dots, T`; the schedule's tensors have
:math:`T + 1` entries so that index ``t`` is step :math:`t` (index 0 is the clean data, with
:math:`\bar\alpha_0 = 1`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn as nn
from torch import Tensor

from . import draws, stats
from .guards import (
    check_callable,
    check_choice,
    check_finite,
    check_float_tensor,
    check_int,
    check_number,
    check_positive,
    check_range,
    check_same_shape,
    describe,
    value_checks_enabled,
)
from .losses import LossOutput
from .objectives import reconstruction_error

__all__ = [
    "GaussianMixture",
    "denoiser_score",
    "tweedie_denoise",
    "dsm_loss",
    "NoiseSchedule",
    "to_signed",
    "to_unit",
    "DDPMConfig",
    "DDPM",
    "DiffusionLoss",
    "PREDICTS",
    "WEIGHTINGS",
    "eps_prediction_error",
    "normal_kl",
    "discretized_gaussian_log_prob",
    "DiffusionELBO",
    "diffusion_elbo",
    "ddpm_step",
    "ddpm_sample",
    "sampling_timesteps",
]


# --------------------------------------------------------------------------- input checks
def _check_values(name: str, t: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    check_float_tensor(name, t, dtype=dtype)
    if value_checks_enabled():
        check_finite(name, t)
    return t


def _check_batch(name: str, x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    _check_values(name, x, dtype)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch of examples, shape (b, ...), got shape {tuple(x.shape)}")
    return x


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {describe(generator)}")


def _check_sigma(sigma) -> float:
    return check_positive("sigma (the noise level)", sigma)


# --------------------------------------------------------------------------- a mixture with exact answers
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
        _check_values("x", x, dtype=self.means.dtype)
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
        sigma = _check_sigma(sigma)
        log_joint, var = self._component_log_probs(x_noisy, sigma)
        r = torch.softmax(log_joint, dim=1).unsqueeze(-1)  # (b, K, 1)
        shrunk = self.means + self.variances / var * (x_noisy.unsqueeze(1) - self.means)  # (b, K, d)
        return (r * shrunk).sum(1)  # (b, d)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws, (n, d): a component by its weight, then a Gaussian draw from it."""
        n = check_int("n", n, min=1)
        _check_generator(generator)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype)
        return self.means[k] + self.variances[k].sqrt() * eps  # (n, d)


# --------------------------------------------------------------------------- Tweedie and score matching
def _check_noisy_pair(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    _check_batch(name_a, a)
    _check_values(name_b, b, dtype=a.dtype)
    check_same_shape(name_a, a, name_b, b)


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
    _check_noisy_pair("x_noisy", x_noisy, "x_hat", x_hat)
    sigma = _check_sigma(sigma)
    return (x_hat - x_noisy) / sigma**2


def tweedie_denoise(x_noisy: Tensor, score: Tensor, sigma: float) -> Tensor:
    r"""Tweedie's formula: the posterior mean :math:`\tilde x + \sigma^2\nabla\log p_\sigma(\tilde x)` from a score.

    ``score`` is the score of the noisy data at ``x_noisy`` (same shape). The inverse of
    :func:`denoiser_score`.

    Book: eq-tweedie
    """
    _check_noisy_pair("x_noisy", x_noisy, "score", score)
    sigma = _check_sigma(sigma)
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
    _check_noisy_pair("score", score, "x_noisy", x_noisy)
    _check_values("x", x, dtype=score.dtype)
    check_same_shape("score", score, "x", x)
    sigma = _check_sigma(sigma)
    target = (x - x_noisy) / sigma**2  # the score of q(x_noisy | x), a Gaussian around x
    return 0.5 * (score - target).pow(2).flatten(1).sum(1)  # (b,)


# --------------------------------------------------------------------------- the forward process
def _check_t(name: str, t, T: int, b: int | None = None, *, lowest: int = 1) -> Tensor:
    """Integer time steps from ``lowest`` to ``T``, shape (b,) (a Python int is broadcast)."""
    if isinstance(t, int) and not isinstance(t, bool):
        if b is None:
            raise TypeError(f"{name}: expected a tensor of time steps, shape (b,), got {describe(t)}")
        t = torch.full((b,), t, dtype=torch.long)
    if not isinstance(t, Tensor) or t.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name}: expected an integer tensor of time steps (torch.long), got {describe(t)}")
    if t.dim() != 1 or (b is not None and t.shape[0] != b):
        want = f"({b},), one per example" if b is not None else "(b,)"
        raise ValueError(f"{name}: expected shape {want}, got shape {tuple(t.shape)}")
    if t.numel() and (int(t.min()) < lowest or int(t.max()) > T):
        raise ValueError(f"{name}: expected time steps from {lowest} to T={T}, got steps from {int(t.min())} to {int(t.max())}")
    return t.long()


def _per_example(v: Tensor, x: Tensor) -> Tensor:
    """A (b,) tensor of per-example numbers, shaped to broadcast against x: (b, 1, ..., 1)."""
    return v.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))  # (b, 1, ..., 1)


SCHEDULES = ("linear", "cosine")


@dataclass(frozen=True)
class NoiseSchedule:
    r"""The noise schedule :math:`\beta_1, \dots, \beta_T` of a diffusion model, and what follows from it.

    The forward process adds a little noise at each step,
    :math:`q(x_t\mid x_{t-1}) = \mathcal N(\sqrt{1-\beta_t}\,x_{t-1}, \beta_t I)`, and so reaches
    step :math:`t` in one jump:

    .. math:: q(x_t\mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1 - \bar\alpha_t) I\big),
              \qquad \alpha_t = 1 - \beta_t,\quad \bar\alpha_t = \prod_{s=1}^t \alpha_s.

    ``betas`` has :math:`T + 1` entries, ``betas[0] = 0``, so that index ``t`` is step ``t``; it is
    held in float64 (products of a thousand numbers near 1 lose digits in float32). Make one with
    :meth:`linear` (Ho et al., 2020) or :meth:`cosine` (Nichol & Dhariwal, 2021).

    Book: eq-forward-marginal
    """

    betas: Tensor

    def __post_init__(self) -> None:
        check_float_tensor("betas", self.betas, dims=1)
        if self.betas.shape[0] < 2:
            raise ValueError(f"betas: expected T + 1 >= 2 entries (betas[0] = 0, then one per step), got shape {tuple(self.betas.shape)}")
        check_finite("betas", self.betas)
        if self.betas[0].item() != 0.0:
            raise ValueError(f"betas: expected betas[0] = 0 (step 0 is the clean data), got {self.betas[0].item():.4g}")
        steps = self.betas[1:]
        if bool((steps <= 0).any()) or bool((steps >= 1).any()):
            raise ValueError(f"betas: expected betas[1:] in (0, 1), got values from {steps.min().item():.4g} to {steps.max().item():.4g}")
        object.__setattr__(self, "betas", self.betas.detach().to(torch.float64))

    @classmethod
    def linear(cls, T: int, beta_1: float | None = None, beta_T: float | None = None) -> "NoiseSchedule":
        r"""Ho et al.'s linear schedule: :math:`\beta_t` evenly from ``beta_1`` to ``beta_T``.

        The defaults are theirs for :math:`T = 1000` (:math:`10^{-4}` to :math:`0.02`), scaled by
        :math:`1000/T`, so that a shorter chain adds the same total noise in fewer, larger steps.
        """
        T = check_int("T", T, min=1)
        scale = 1000.0 / T
        lo = check_number("beta_1", beta_1 if beta_1 is not None else 1e-4 * scale, min=0.0, min_open=True, max=1.0)
        hi = check_number("beta_T", beta_T if beta_T is not None else min(0.999, 0.02 * scale), min=0.0, min_open=True, max=1.0)
        if lo >= 1.0 or hi >= 1.0:
            raise ValueError(f"beta_1, beta_T: expected values below 1, got {lo:g} and {hi:g}")
        betas = torch.linspace(lo, hi, T, dtype=torch.float64)
        return cls(torch.cat([torch.zeros(1, dtype=torch.float64), betas]))

    @classmethod
    def cosine(cls, T: int, s: float = 0.008) -> "NoiseSchedule":
        r"""Nichol & Dhariwal's cosine schedule: :math:`\bar\alpha_t \propto \cos^2\big(\frac{t/T + s}{1 + s}\frac\pi2\big)`.

        Each :math:`\beta_t` is clipped to 0.999, as in their paper, so the last step stays finite.
        """
        T = check_int("T", T, min=1)
        s = check_number("s", s, min=0.0)
        t = torch.arange(T + 1, dtype=torch.float64)
        f = torch.cos((t / T + s) / (1 + s) * math.pi / 2).pow(2)  # (T + 1,)
        alpha_bar = f / f[0]
        betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)  # (T,)
        return cls(torch.cat([torch.zeros(1, dtype=torch.float64), betas]))

    @classmethod
    def named(cls, kind: str, T: int) -> "NoiseSchedule":
        """The schedule called ``kind`` (``"linear"`` or ``"cosine"``) with ``T`` steps."""
        check_choice("schedule", kind, SCHEDULES)
        return cls.linear(T) if kind == "linear" else cls.cosine(T)

    @property
    def T(self) -> int:
        """The number of steps."""
        return self.betas.shape[0] - 1

    @property
    def alphas(self) -> Tensor:
        r""":math:`\alpha_t = 1 - \beta_t`, (T + 1,)."""
        return 1.0 - self.betas

    @property
    def alpha_bars(self) -> Tensor:
        r""":math:`\bar\alpha_t = \prod_{s \le t}\alpha_s`, (T + 1,), with :math:`\bar\alpha_0 = 1`."""
        return torch.cumprod(self.alphas, dim=0)

    @property
    def posterior_variances(self) -> Tensor:
        r""":math:`\tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t`, (T + 1,): the variance of :math:`q(x_{t-1}\mid x_t, x_0)`.

        Zero at :math:`t = 1`, where :math:`x_0` is known; entry 0 is unused (set to 0).
        """
        ab = self.alpha_bars
        out = torch.zeros_like(ab)
        out[1:] = (1 - ab[:-1]) / (1 - ab[1:]) * self.betas[1:]
        return out

    def elbo_weights(self) -> Tensor:
        r"""The weight :math:`\lambda_t` of :math:`\lVert\epsilon - \hat\epsilon\rVert^2` in the ELBO's KL term at step t, (T + 1,).

        .. math:: \mathrm{KL}_t = \lambda_t\,\lVert\epsilon - \hat\epsilon_\theta(x_t, t)\rVert^2,
                  \qquad \lambda_t = \frac{\beta_t^2}{2\tilde\beta_t\,\alpha_t\,(1 - \bar\alpha_t)}
                  = \frac{\beta_t}{2\alpha_t(1 - \bar\alpha_{t-1})}

        for :math:`t \ge 2`, with the reverse variance :math:`\sigma_t^2 = \tilde\beta_t`. Entries 0
        and 1 are set to 0 (step 1 is the reconstruction term).

        Book: eq-diffusion-kl-eps
        """
        ab, b, a = self.alpha_bars, self.betas, self.alphas
        out = torch.zeros_like(ab)
        out[2:] = b[2:] / (2 * a[2:] * (1 - ab[1:-1]))
        return out

    def q_sample(self, x0: Tensor, t: Tensor, eps: Tensor | None = None, *, generator: torch.Generator | None = None) -> Tensor:
        r"""Draw :math:`x_t \sim q(x_t\mid x_0)`: :math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon`.

        ``x0`` (b, ...) in the model's scale (:math:`[-1, 1]`), ``t`` integer steps (b,) from 1 to T,
        ``eps`` the noise (same shape as ``x0``; drawn from ``generator`` when not given).

        Book: eq-forward-marginal
        """
        _check_batch("x0", x0)
        t = _check_t("t", t, self.T, x0.shape[0])
        _check_generator(generator)
        if eps is None:
            eps = draws.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        else:
            _check_values("eps", eps, dtype=x0.dtype)
            check_same_shape("x0", x0, "eps", eps)
        ab = _per_example(self.alpha_bars[t.cpu()], x0)  # (b, 1, ..., 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def q_step(self, x_prev: Tensor, t: Tensor, eps: Tensor | None = None, *, generator: torch.Generator | None = None) -> Tensor:
        r"""One step of the forward process, :math:`x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon`.

        Book: eq-forward-process
        """
        _check_batch("x_prev", x_prev)
        t = _check_t("t", t, self.T, x_prev.shape[0])
        _check_generator(generator)
        if eps is None:
            eps = draws.randn(x_prev.shape, generator=generator, dtype=x_prev.dtype, device=x_prev.device)
        else:
            _check_values("eps", eps, dtype=x_prev.dtype)
            check_same_shape("x_prev", x_prev, "eps", eps)
        beta = _per_example(self.betas[t.cpu()], x_prev)  # (b, 1, ..., 1)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * eps

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        r"""The forward process run backwards with :math:`x_0` known: :math:`q(x_{t-1}\mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)`.

        .. math:: \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t}\,x_0
                  + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\,x_t

        Returns the mean (shape of ``x0``) and the variance :math:`\tilde\beta_t`, (b,).

        Book: eq-diffusion-posterior
        """
        _check_batch("x0", x0)
        _check_values("x_t", x_t, dtype=x0.dtype)
        check_same_shape("x0", x0, "x_t", x_t)
        t = _check_t("t", t, self.T, x0.shape[0]).cpu()
        ab, ab_prev = self.alpha_bars[t], self.alpha_bars[t - 1]
        c0 = ab_prev.sqrt() * self.betas[t] / (1 - ab)  # the weight on x0
        ct = self.alphas[t].sqrt() * (1 - ab_prev) / (1 - ab)  # the weight on x_t
        mean = _per_example(c0, x0) * x0 + _per_example(ct, x0) * x_t
        return mean, self.posterior_variances[t].to(device=x0.device, dtype=x0.dtype)

    def eps_to_mean(self, x_t: Tensor, eps_hat: Tensor, t: Tensor) -> Tensor:
        r"""The reverse step's mean from a noise prediction: :math:`\mu_\theta = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\epsilon\big)`.

        It is :math:`\tilde\mu_t` with :math:`x_0` replaced by its estimate
        :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`.

        Book: eq-ddpm-step
        """
        _check_batch("x_t", x_t)
        _check_values("eps_hat", eps_hat, dtype=x_t.dtype)
        check_same_shape("x_t", x_t, "eps_hat", eps_hat)
        t = _check_t("t", t, self.T, x_t.shape[0]).cpu()
        b, a, ab = self.betas[t], self.alphas[t], self.alpha_bars[t]
        return (x_t - _per_example(b / (1 - ab).sqrt(), x_t) * eps_hat) / _per_example(a.sqrt(), x_t)

    def predict_x0(self, x_t: Tensor, eps_hat: Tensor, t: Tensor) -> Tensor:
        r"""Tweedie's formula at step t: :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`.

        The score of :math:`q(x_t)` is :math:`-\hat\epsilon/\sqrt{1-\bar\alpha_t}`, so this is
        :func:`tweedie_denoise` on :math:`x_t/\sqrt{\bar\alpha_t}`, a clean image plus noise of
        standard deviation :math:`\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}`.

        Book: eq-tweedie
        """
        _check_batch("x_t", x_t)
        _check_values("eps_hat", eps_hat, dtype=x_t.dtype)
        check_same_shape("x_t", x_t, "eps_hat", eps_hat)
        t = _check_t("t", t, self.T, x_t.shape[0]).cpu()
        ab = _per_example(self.alpha_bars[t], x_t)
        return (x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()


def to_signed(x: Tensor) -> Tensor:
    """Images in [0, 1] to the diffusion model's scale, [-1, 1]: ``2 x - 1``."""
    _check_values("x", x)
    if value_checks_enabled():
        check_range("x (grey levels)", x, 0.0, 1.0)
    return 2 * x - 1


def to_unit(x: Tensor) -> Tensor:
    """The diffusion model's scale back to grey levels: ``(x + 1) / 2``, clamped to [0, 1]."""
    _check_values("x", x)
    return ((x + 1) / 2).clamp(0.0, 1.0)


# --------------------------------------------------------------------------- the network
PREDICTS = ("x0", "eps")


@dataclass(frozen=True)
class DDPMConfig:
    r"""A small DDPM: ``T`` steps of a ``schedule``, and an MLP that denoises.

    The network flattens :math:`x_t`, adds an embedding of :math:`t` (sinusoidal features, then an
    MLP), and runs ``blocks`` residual blocks of width ``hidden`` (SiLU activations), each told
    :math:`t` again. An MLP is the cheapest network that does the job on a CPU for small images;
    DDPMs on larger images use convolutional U-Nets.

    ``predict``: what the network outputs, the clean image :math:`\hat x_0(x_t, t)` (``"x0"``: a
    denoiser, as in chapter 2, told the noise level) or the noise :math:`\hat\epsilon_\theta(x_t, t)`
    (``"eps"``, Ho et al.'s choice). Either estimate gives the other, through
    :math:`x_t = \sqrt{\bar\alpha_t}\,\hat x_0 + \sqrt{1-\bar\alpha_t}\,\hat\epsilon`
    (:meth:`NoiseSchedule.predict_x0`), so the model answers both.
    """

    image_shape: tuple[int, int, int] = (1, 14, 14)
    T: int = 100
    schedule: str = "linear"
    hidden: int = 384
    blocks: int = 1
    time_features: int = 64
    predict: str = "x0"

    def __post_init__(self) -> None:
        shape = self.image_shape
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise ValueError(f"DDPMConfig.image_shape: expected (channels, H, W), got {shape!r}")
        check_int("DDPMConfig.T", self.T, min=2)
        check_choice("DDPMConfig.schedule", self.schedule, SCHEDULES)
        check_int("DDPMConfig.hidden", self.hidden, min=1)
        check_int("DDPMConfig.blocks", self.blocks, min=0)
        check_int("DDPMConfig.time_features", self.time_features, min=2)
        check_choice("DDPMConfig.predict", self.predict, PREDICTS)
        if self.time_features % 2:
            raise ValueError(f"DDPMConfig.time_features: expected an even number (sines and cosines), got {self.time_features}")


class _Block(nn.Module):
    """A residual MLP block that is told the time step: h + W2 silu(W1 silu(h) + e(t))."""

    def __init__(self, width: int):
        super().__init__()
        self.inner = nn.Linear(width, width)
        self.time = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)
        self.act = nn.SiLU()

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        return h + self.outer(self.act(self.inner(self.act(h)) + self.time(e)))


class DDPM(nn.Module):
    r"""A denoising diffusion probabilistic model (Ho et al., 2020): a fixed noise schedule and a noise predictor.

    - ``schedule``: its :class:`NoiseSchedule` (``config.T`` steps), fixed: the "encoder"
      :math:`q(x_{1:T}\mid x_0)` has no parameters.
    - ``denoise(x_t, t)``: the estimate :math:`\hat x_0(x_t, t)` of the clean image, for ``x_t`` in the
      model's scale (:math:`[-1, 1]` plus noise), shape ``(b, *image_shape)``, and integer steps ``t`` (b,);
    - ``forward(x_t, t)``: the predicted noise :math:`\hat\epsilon_\theta(x_t, t)`, the same estimate
      seen from the other side, :math:`x_t = \sqrt{\bar\alpha_t}\,\hat x_0 + \sqrt{1-\bar\alpha_t}\,\hat\epsilon`.
    - ``sample(n, steps=None, generator=None)``: images in [0, 1] by ancestral sampling
      (:func:`ddpm_sample`), on all T steps or on ``steps`` of them.

    Train it with ``vb.fit(ddpm, images, loss=DiffusionLoss())`` on images in [0, 1].

    Book: eq-reverse-process
    """

    freqs: Tensor  # the time embedding's frequencies, a buffer

    def __init__(self, config: DDPMConfig | None = None, **overrides):
        super().__init__()
        if config is not None and not isinstance(config, DDPMConfig):
            raise TypeError(f"config: expected a DDPMConfig, got {describe(config)}")
        base = config if config is not None else DDPMConfig()
        self.config = cfg = DDPMConfig(**{**base.__dict__, **overrides}) if overrides else base
        self.schedule = NoiseSchedule.named(cfg.schedule, cfg.T)
        d, w = math.prod(cfg.image_shape), cfg.hidden
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_features, w), nn.SiLU(), nn.Linear(w, w))
        self.inp = nn.Linear(d, w)
        self.blocks = nn.ModuleList([_Block(w) for _ in range(cfg.blocks)])
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(w, d))
        half = cfg.time_features // 2
        # frequencies from 1 to 1/1000 per step, as in the Transformer's positions (Vaswani et al., 2017)
        self.register_buffer("freqs", torch.exp(-math.log(1000.0) * torch.arange(half) / half), persistent=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    def _time_features(self, t: Tensor) -> Tensor:
        angle = t.to(self.freqs.dtype).unsqueeze(1) * (1000.0 / self.config.T) * self.freqs  # (b, half)
        return torch.cat([angle.sin(), angle.cos()], dim=1)  # (b, time_features)

    def _network(self, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """The network's raw output (x0 or eps, as configured), and the checked steps."""
        check_float_tensor("x_t", x_t, dtype=self.inp.weight.dtype)
        shape = self.image_shape
        if x_t.dim() != 4 or tuple(x_t.shape[1:]) != shape:
            raise ValueError(f"x_t: expected images of shape (b, {', '.join(map(str, shape))}), got shape {tuple(x_t.shape)}")
        t = _check_t("t", t, self.config.T, x_t.shape[0]).to(x_t.device)
        e = self.time_mlp(self._time_features(t))  # (b, hidden)
        h = self.inp(x_t.flatten(1)) + e  # (b, hidden)
        for block in self.blocks:
            h = block(h, e)
        return self.out(h).view_as(x_t), t  # (b, *image_shape)

    @torch.no_grad()
    def init_output_bias(self, x: Tensor) -> None:
        """Start the denoiser at the mean of the images ``x`` (in [0, 1]): its first guess at any noise level.

        With ``predict="x0"`` the untrained network then outputs roughly the mean image, the best
        constant denoiser, rather than grey noise, as chapter 2's autoencoder starts at the mean grey level.
        """
        _check_batch("x", x)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x: expected images of shape (b, {', '.join(map(str, self.image_shape))}), got shape {tuple(x.shape)}")
        if self.config.predict != "x0":
            raise ValueError(f"predict: the output is the clean image only with predict='x0', got predict={self.config.predict!r}")
        last = self.out[1]
        assert isinstance(last, nn.Linear)
        last.bias.copy_(to_signed(x).mean(0).flatten().to(last.bias))

    def denoise(self, x_t: Tensor, t: Tensor) -> Tensor:
        r"""The estimate :math:`\hat x_0(x_t, t)` of the clean image: chapter 2's denoiser, at noise level t."""
        out, t = self._network(x_t, t)
        if self.config.predict == "x0":
            return out
        return self.schedule.predict_x0(x_t, out, t.cpu())

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        r"""The predicted noise :math:`\hat\epsilon_\theta(x_t, t)`, shape of ``x_t``."""
        out, t = self._network(x_t, t)
        if self.config.predict == "eps":
            return out
        ab = _per_example(self.schedule.alpha_bars[t.cpu()], x_t)  # (b, 1, 1, 1)
        return (x_t - ab.sqrt() * out) / (1 - ab).sqrt()  # x_t = sqrt(ab) x0 + sqrt(1 - ab) eps, solved for eps

    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None, clip: bool = True) -> Tensor:
        """``n`` images in [0, 1], ``(n, *image_shape)``: :func:`ddpm_sample` on ``steps`` of the T steps (all by default)."""
        n = check_int("n", n, min=1)
        was_training = self.training
        self.eval()
        try:
            x = ddpm_sample(self, self.schedule, (n, *self.image_shape), steps=steps, clip=clip, generator=generator,
                            device=self.inp.weight.device)
        finally:
            self.train(was_training)
        return to_unit(x)


# --------------------------------------------------------------------------- training
def eps_prediction_error(eps_hat: Tensor, eps: Tensor) -> Tensor:
    r"""Ho et al.'s simplified objective per example: :math:`\lVert\epsilon - \hat\epsilon_\theta(x_t, t)\rVert^2`, (b,).

    The ELBO's KL term at step t is this times :math:`\lambda_t` (:meth:`NoiseSchedule.elbo_weights`);
    dropping the weights gives :math:`L_{\mathrm{simple}}`.

    Book: eq-simple-loss
    """
    _check_noisy_pair("eps_hat", eps_hat, "eps", eps)
    return (eps - eps_hat).pow(2).flatten(1).sum(1)  # (b,)


WEIGHTINGS = ("x0", "eps")


@dataclass
class DiffusionLoss:
    r"""A diffusion model's training loss for :func:`vaebook.fit`: denoising at a random noise level per image.

    For a batch of images in [0, 1] it scales them to [-1, 1], draws :math:`t` uniformly from
    1 to T and :math:`\epsilon \sim \mathcal N(0, I)` for each (from the CPU's global generator,
    which ``fit`` seeds, whatever the model's device: :mod:`vaebook.draws`), forms :math:`x_t` by
    :meth:`NoiseSchedule.q_sample`, and averages over the batch, per pixel, one of two squared errors:

    - ``weighting="x0"``: :math:`\lVert x_0 - \hat x_0(x_t, t)\rVert^2`, chapter 2's denoising
      objective (:func:`vaebook.reconstruction_error`) at every noise level at once;
    - ``weighting="eps"``: :math:`\lVert \epsilon - \hat\epsilon_\theta(x_t, t)\rVert^2`
      (:func:`eps_prediction_error`), Ho et al.'s :math:`L_{\mathrm{simple}}`. It is the first
      weighted by the signal-to-noise ratio :math:`\bar\alpha_t/(1-\bar\alpha_t)`, so it stresses
      the nearly clean steps.

    Both are denoising score matching summed over noise levels, with different weights, and with
    enough capacity both have the same minimiser, the posterior mean at every step. The logged
    ``mse`` is the loss.

    Book: eq-diffusion-loss
    """

    weighting: str = "x0"

    def __post_init__(self) -> None:
        check_choice("weighting", self.weighting, WEIGHTINGS)

    def __call__(self, model: DDPM, x: Tensor, target: Tensor) -> LossOutput:
        if not isinstance(model, DDPM):
            raise TypeError(f"model: expected a vaebook.diffusion.DDPM, got {describe(model)}")
        if target is not x and (target.shape != x.shape or not torch.equal(target, x)):
            raise ValueError("target: a diffusion model is trained on images alone; pass images without separate targets")
        x0 = to_signed(x)
        b = x0.shape[0]
        t = draws.randint(1, model.config.T + 1, (b,))  # on the CPU, whatever the model's device (the model moves it)
        eps = draws.randn(x0.shape, dtype=x0.dtype, device=x0.device)
        x_t = model.schedule.q_sample(x0, t, eps)
        if self.weighting == "x0":
            err = reconstruction_error(x0, model.denoise(x_t, t))  # (b,): chapter 2's objective at level t
        else:
            err = eps_prediction_error(model(x_t, t), eps)  # (b,): L_simple
        loss = err.mean() / x0[0].numel()  # per pixel
        return LossOutput(loss, {"mse": loss.detach()})


# --------------------------------------------------------------------------- the ELBO, term by term
def normal_kl(mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor) -> Tensor:
    r"""KL between isotropic Gaussians :math:`\mathcal N(\mu_q, v_q I)` and :math:`\mathcal N(\mu_p, v_p I)`, per example, (b,).

    .. math:: \mathrm{KL} = \frac12\sum_j\Big(\log\frac{v_p}{v_q} + \frac{v_q + (\mu_{q,j} - \mu_{p,j})^2}{v_p} - 1\Big)

    ``mean_q``, ``mean_p`` (b, ...); ``var_q``, ``var_p`` (b,) positive variances, one per example.

    Book: eq-diffusion-kl
    """
    _check_noisy_pair("mean_q", mean_q, "mean_p", mean_p)
    for name, v in (("var_q", var_q), ("var_p", var_p)):
        _check_values(name, v, dtype=mean_q.dtype)
        if v.shape != mean_q.shape[:1]:
            raise ValueError(f"{name}: expected one variance per example, shape ({mean_q.shape[0]},), got shape {tuple(v.shape)}")
        if value_checks_enabled() and bool((v <= 0).any()):
            raise ValueError(f"{name}: expected positive variances, got a smallest value of {v.min().item():.4g}")
    d = mean_q[0].numel()
    sq = (mean_q - mean_p).pow(2).flatten(1).sum(1)  # (b,)
    return 0.5 * (d * (var_p.log() - var_q.log() + var_q / var_p - 1) + sq / var_p)


BIN = 1.0 / 255.0  # half the width of one of 256 grey levels on [-1, 1]


def _log_diff_ndtr(hi: Tensor, lo: Tensor) -> Tensor:
    """log(Phi(hi) - Phi(lo)) for hi > lo, accurate in both tails (mirrored where the bin lies above the mean)."""
    upper = (hi + lo) > 0  # both ends far in the upper tail: use 1 - Phi, by symmetry
    a = torch.where(upper, -lo, hi)
    b = torch.where(upper, -hi, lo)
    log_a, log_b = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    return log_a + torch.log(-torch.expm1((log_b - log_a).clamp(max=-1e-30)))


def discretized_gaussian_log_prob(x0: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    r"""The reconstruction term :math:`\log p_\theta(x_0\mid x_1)` for 8-bit images, per example, (b,).

    Ho et al.'s discretized Gaussian: each pixel's probability is the mass of
    :math:`\mathcal N(\mu_j, \sigma_1^2)` on its grey level's bin, one of 256 bins of width 2/255 on
    :math:`[-1, 1]`, the end bins reaching to :math:`\pm\infty`:

    .. math:: p_\theta(x_0\mid x_1) = \prod_j \int_{\delta_-(x_{0,j})}^{\delta_+(x_{0,j})} \mathcal N(u;\, \mu_{\theta,j}(x_1, 1), \sigma_1^2)\,du

    So it is a probability, at most 1, and the ELBO bounds the log-probability of 8-bit images.
    ``x0`` (b, ...) on the grid :math:`\{-1, -1 + 2/255, \dots, 1\}`; ``mean`` its shape; ``var`` (b,).

    Book: eq-discretized-decoder
    """
    _check_noisy_pair("x0", x0, "mean", mean)
    _check_values("var", var, dtype=x0.dtype)
    if var.shape != x0.shape[:1]:
        raise ValueError(f"var: expected one variance per example, shape ({x0.shape[0]},), got shape {tuple(var.shape)}")
    if value_checks_enabled():
        check_range("x0 (images scaled to [-1, 1])", x0, -1.0 - 1e-6, 1.0 + 1e-6)
    std = _per_example(var.sqrt(), x0)
    hi = torch.where(x0 > 1 - BIN, torch.full_like(x0, math.inf), (x0 + BIN - mean) / std)
    lo = torch.where(x0 < -1 + BIN, torch.full_like(x0, -math.inf), (x0 - BIN - mean) / std)
    return _log_diff_ndtr(hi, lo).flatten(1).sum(1)  # (b,)


class DiffusionELBO(NamedTuple):
    r"""The ELBO of a diffusion model, term by term, per example.

    ``elbo = recon - prior - kl.sum(1)``: the reconstruction term :math:`\log p_\theta(x_0\mid x_1)`
    (b,); the prior term :math:`\mathrm{KL}(q(x_T\mid x_0)\,\|\,\mathcal N(0, I))` (b,); and
    ``kl[:, t - 2]`` the term of step t, :math:`\mathrm{KL}(q(x_{t-1}\mid x_t, x_0)\,\|\,p_\theta(x_{t-1}\mid x_t))`
    for :math:`t = 2, \dots, T`, (b, T - 1). In nats.
    """

    elbo: Tensor
    recon: Tensor
    prior: Tensor
    kl: Tensor


@torch.no_grad()
def diffusion_elbo(model: DDPM, x: Tensor, *, generator: torch.Generator | None = None, batch_size: int = 500) -> DiffusionELBO:
    r"""Estimate a DDPM's ELBO on 8-bit images ``x`` in [0, 1], every one of its T + 1 terms (one draw of :math:`x_t` per term).

    .. math::

        \begin{aligned}
        \log p_\theta(x_0) \ge{}& \mathbb E_q\big[\log p_\theta(x_0\mid x_1)\big]
          - \mathrm{KL}\big(q(x_T\mid x_0)\,\|\,p(x_T)\big) \\
        & - \sum_{t=2}^T \mathbb E_q\Big[\mathrm{KL}\big(q(x_{t-1}\mid x_t, x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)\Big]
        \end{aligned}

    The prior term is exact (both are Gaussians); each KL term is exact given its one draw
    :math:`x_t \sim q(x_t\mid x_0)` (:func:`normal_kl` between :math:`q`'s posterior
    :meth:`NoiseSchedule.q_posterior` and the reverse step with mean
    :meth:`NoiseSchedule.eps_to_mean` and variance :math:`\sigma_t^2 = \tilde\beta_t`); the
    reconstruction term uses :func:`discretized_gaussian_log_prob` with :math:`\sigma_1^2 = \beta_1`.
    Images are rounded to 256 grey levels first. Draws come from ``generator``.

    Book: eq-diffusion-elbo
    """
    if not isinstance(model, DDPM):
        raise TypeError(f"model: expected a vaebook.diffusion.DDPM, got {describe(model)}")
    _check_batch("x", x)
    check_range("x (grey levels)", x, 0.0, 1.0)
    _check_generator(generator)
    batch_size = check_int("batch_size", batch_size, min=1)
    was_training = model.training
    model.eval()
    device = model.inp.weight.device
    sched, T = model.schedule, model.config.T
    parts: list[DiffusionELBO] = []
    try:
        for xb in x.split(batch_size):
            x0 = to_signed(torch.round(xb.to(device) * 255) / 255)  # 8-bit grey levels, on [-1, 1]
            b = x0.shape[0]
            ab_T = sched.alpha_bars[T].item()
            # prior term, closed form: q(x_T | x0) = N(sqrt(ab_T) x0, (1 - ab_T) I) against N(0, I)
            var_T = torch.full((b,), 1 - ab_T, dtype=x0.dtype, device=device)
            prior = normal_kl(math.sqrt(ab_T) * x0, var_T, torch.zeros_like(x0), torch.ones_like(var_T))
            kl = torch.empty(b, T - 1, dtype=x0.dtype, device=device)
            for t in range(2, T + 1):
                tt = torch.full((b,), t, dtype=torch.long)
                eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(device)
                x_t = sched.q_sample(x0, tt, eps)
                mean_q, var_q = sched.q_posterior(x0, x_t, tt)  # q(x_{t-1} | x_t, x0)
                mean_p = sched.eps_to_mean(x_t, model(x_t, tt.to(device)), tt)  # p_theta(x_{t-1} | x_t), variance var_q
                kl[:, t - 2] = normal_kl(mean_q, var_q, mean_p, var_q)
            one = torch.ones(b, dtype=torch.long)
            eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(device)
            x_1 = sched.q_sample(x0, one, eps)
            mean_1 = sched.eps_to_mean(x_1, model(x_1, one.to(device)), one)
            var_1 = torch.full((b,), sched.betas[1].item(), dtype=x0.dtype, device=device)
            recon = discretized_gaussian_log_prob(x0, mean_1, var_1)
            parts.append(DiffusionELBO(recon - prior - kl.sum(1), recon, prior, kl))
    finally:
        model.train(was_training)
    return DiffusionELBO(*(torch.cat([getattr(p, f) for p in parts]).cpu() for f in DiffusionELBO._fields))


# --------------------------------------------------------------------------- sampling
def sampling_timesteps(T: int, steps: int) -> list[int]:
    r"""``steps + 1`` time steps evenly spaced from T down to 0, the ones a shortened sampler visits.

    ``steps = T`` visits every step. Fewer steps make a shorter chain with the same network: its
    step from :math:`\tau_i` to :math:`\tau_{i+1}` has :math:`\beta = 1 - \bar\alpha_{\tau_i}/\bar\alpha_{\tau_{i+1}}`
    (Nichol & Dhariwal's respacing).
    """
    T = check_int("T", T, min=1)
    steps = check_int("steps", steps, min=1, max=T)
    taus = torch.linspace(T, 0, steps + 1, dtype=torch.float64).round().long().tolist()
    return [int(v) for v in taus]


def ddpm_step(
    x_t: Tensor, eps_hat: Tensor, alpha_bar_t: float, alpha_bar_prev: float, z: Tensor | None, *, clip: bool = False
) -> Tensor:
    r"""One step of ancestral sampling, from :math:`x_t` to :math:`x_{t-1}` (or to the step ``alpha_bar_prev`` belongs to).

    .. math:: x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,\hat\epsilon_\theta(x_t, t)\Big) + \sigma_t z,
              \qquad \sigma_t^2 = \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t

    with :math:`\alpha_t = \bar\alpha_t/\bar\alpha_{t-1}` and :math:`\beta_t = 1 - \alpha_t`, so that
    the same formula serves a shortened chain. ``z`` is standard normal noise of ``x_t``'s shape,
    or ``None`` for the last step, which returns the mean. The mean is computed in its other form,
    :math:`\tilde\mu_t(\hat x_0, x_t)` of :meth:`NoiseSchedule.q_posterior` at Tweedie's estimate
    :math:`\hat x_0`; ``clip=True`` first clips :math:`\hat x_0` to the data's range :math:`[-1, 1]`,
    as Ho et al.'s sampler does (without it, the two forms are equal).

    Book: eq-ddpm-step
    """
    _check_batch("x_t", x_t)
    _check_values("eps_hat", eps_hat, dtype=x_t.dtype)
    check_same_shape("x_t", x_t, "eps_hat", eps_hat)
    ab_t = check_number("alpha_bar_t", alpha_bar_t, min=0.0, min_open=True, max=1.0)
    ab_prev = check_number("alpha_bar_prev", alpha_bar_prev, min=0.0, min_open=True, max=1.0)
    if ab_prev <= ab_t:
        raise ValueError(f"alpha_bar_prev: expected a value above alpha_bar_t={ab_t:.6g} (an earlier, less noisy step), got {ab_prev:.6g}")
    if not isinstance(clip, bool):
        raise TypeError(f"clip: expected True or False, got {describe(clip)}")
    alpha = ab_t / ab_prev
    beta = 1 - alpha
    x0_hat = (x_t - math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(ab_t)  # Tweedie's estimate of x0
    if clip:
        x0_hat = x0_hat.clamp(-1.0, 1.0)
    mean = math.sqrt(ab_prev) * beta / (1 - ab_t) * x0_hat + math.sqrt(alpha) * (1 - ab_prev) / (1 - ab_t) * x_t
    if z is None:
        return mean
    _check_values("z", z, dtype=x_t.dtype)
    check_same_shape("x_t", x_t, "z", z)
    var = (1 - ab_prev) / (1 - ab_t) * beta
    return mean + math.sqrt(var) * z


def ddpm_sample(
    eps_model: Callable[[Tensor, Tensor], Tensor],
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    *,
    steps: int | None = None,
    clip: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    r"""Ancestral sampling: :math:`x_T \sim \mathcal N(0, I)`, then :func:`ddpm_step` down to :math:`x_0`, in the model's scale.

    ``eps_model(x_t, t)`` predicts the noise (a :class:`DDPM`, or any function of that form);
    ``shape`` is ``(n, ...)``; ``steps`` (default ``schedule.T``) is the number of network
    evaluations, on the time steps of :func:`sampling_timesteps`; ``clip`` clips each step's
    estimate of :math:`x_0` to :math:`[-1, 1]` (:func:`ddpm_step`). All noise is drawn from
    ``generator`` on the CPU, so a seed gives the same samples on every device.

    Book: eq-ddpm-step
    """
    check_callable("eps_model", eps_model, "a function eps_model(x_t, t) -> predicted noise")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule: expected a vaebook.diffusion.NoiseSchedule, got {describe(schedule)}")
    if not isinstance(shape, tuple) or len(shape) < 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"shape: expected a tuple of positive ints (n, ...), got {shape!r}")
    _check_generator(generator)
    if not isinstance(clip, bool):
        raise TypeError(f"clip: expected True or False, got {describe(clip)}")
    steps = check_int("steps", steps, min=1, max=schedule.T) if steps is not None else schedule.T
    taus = sampling_timesteps(schedule.T, steps)
    ab = schedule.alpha_bars
    n = shape[0]
    x = torch.randn(shape, generator=generator).to(device)
    for t, s in zip(taus[:-1], taus[1:], strict=True):
        eps_hat = eps_model(x, torch.full((n,), t, dtype=torch.long, device=device))
        z = torch.randn(shape, generator=generator).to(device) if s > 0 else None
        x = ddpm_step(x, eps_hat, ab[t].item(), ab[s].item(), z, clip=clip)
    return x
