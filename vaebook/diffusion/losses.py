r"""What a DDPM is trained and scored on: :class:`DiffusionLoss` (for :func:`vaebook.fit`) and the ELBO term by term (:func:`diffusion_elbo`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from .. import draws
from ..guards import (
    check_choice,
    check_int,
    check_range,
    describe,
    value_checks_enabled,
)
from ..losses import LossOutput
from ..objectives import reconstruction_error
from .inputs import check_pair, check_batch, check_generator, check_values, per_example
from .network import DDPM
from .schedules import to_signed

__all__ = ["eps_prediction_error", "WEIGHTINGS", "DiffusionLoss", "normal_kl", "BIN", "discretized_gaussian_log_prob", "DiffusionELBO", "diffusion_elbo"]


def eps_prediction_error(eps_hat: Tensor, eps: Tensor) -> Tensor:
    r"""Ho et al.'s simplified objective per example: :math:`\lVert\epsilon - \hat\epsilon_\theta(x_t, t)\rVert^2`, (b,).

    The ELBO's KL term at step t is this times :math:`\lambda_t` (:meth:`NoiseSchedule.elbo_weights`);
    dropping the weights gives :math:`L_{\mathrm{simple}}`.

    Book: eq-simple-loss
    """
    check_pair("eps_hat", eps_hat, "eps", eps)
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


def normal_kl(mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor) -> Tensor:
    r"""KL between isotropic Gaussians :math:`\mathcal N(\mu_q, v_q I)` and :math:`\mathcal N(\mu_p, v_p I)`, per example, (b,).

    .. math:: \mathrm{KL} = \frac12\sum_j\Big(\log\frac{v_p}{v_q} + \frac{v_q + (\mu_{q,j} - \mu_{p,j})^2}{v_p} - 1\Big)

    ``mean_q``, ``mean_p`` (b, ...); ``var_q``, ``var_p`` (b,) positive variances, one per example.

    Book: eq-diffusion-kl
    """
    check_pair("mean_q", mean_q, "mean_p", mean_p)
    for name, v in (("var_q", var_q), ("var_p", var_p)):
        check_values(name, v, dtype=mean_q.dtype)
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
    check_pair("x0", x0, "mean", mean)
    check_values("var", var, dtype=x0.dtype)
    if var.shape != x0.shape[:1]:
        raise ValueError(f"var: expected one variance per example, shape ({x0.shape[0]},), got shape {tuple(var.shape)}")
    if value_checks_enabled():
        check_range("x0 (images scaled to [-1, 1])", x0, -1.0 - 1e-6, 1.0 + 1e-6)
    std = per_example(var.sqrt(), x0)
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
    check_batch("x", x)
    check_range("x (grey levels)", x, 0.0, 1.0)
    check_generator(generator)
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
