r"""The forward process: the noise schedule, :math:`q(x_t\mid x_0)` and the forward posterior (:class:`NoiseSchedule`).

Also the conversions between the library's [0, 1] images and the [-1, 1] a DDPM works in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import draws
from ..guards import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_int,
    check_number,
    check_range,
    check_same_shape,
    value_checks_enabled,
)
from .inputs import check_batch, check_generator, check_t, check_values, per_example

__all__ = ["NOISE_SCHEDULES", "NoiseSchedule", "to_signed", "to_unit"]


NOISE_SCHEDULES = ("linear", "cosine")


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
        check_choice("schedule", kind, NOISE_SCHEDULES)
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
        check_batch("x0", x0)
        t = check_t("t", t, self.T, x0.shape[0])
        check_generator(generator)
        if eps is None:
            eps = draws.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        else:
            check_values("eps", eps, dtype=x0.dtype)
            check_same_shape("x0", x0, "eps", eps)
        ab = per_example(self.alpha_bars[t.cpu()], x0)  # (b, 1, ..., 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def q_step(self, x_prev: Tensor, t: Tensor, eps: Tensor | None = None, *, generator: torch.Generator | None = None) -> Tensor:
        r"""One step of the forward process, :math:`x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon`.

        Book: eq-forward-process
        """
        check_batch("x_prev", x_prev)
        t = check_t("t", t, self.T, x_prev.shape[0])
        check_generator(generator)
        if eps is None:
            eps = draws.randn(x_prev.shape, generator=generator, dtype=x_prev.dtype, device=x_prev.device)
        else:
            check_values("eps", eps, dtype=x_prev.dtype)
            check_same_shape("x_prev", x_prev, "eps", eps)
        beta = per_example(self.betas[t.cpu()], x_prev)  # (b, 1, ..., 1)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * eps

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        r"""The forward process run backwards with :math:`x_0` known: :math:`q(x_{t-1}\mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)`.

        .. math:: \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t}\,x_0
                  + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\,x_t

        Returns the mean (shape of ``x0``) and the variance :math:`\tilde\beta_t`, (b,).

        Book: eq-diffusion-posterior
        """
        check_batch("x0", x0)
        check_values("x_t", x_t, dtype=x0.dtype)
        check_same_shape("x0", x0, "x_t", x_t)
        t = check_t("t", t, self.T, x0.shape[0]).cpu()
        ab, ab_prev = self.alpha_bars[t], self.alpha_bars[t - 1]
        c0 = ab_prev.sqrt() * self.betas[t] / (1 - ab)  # the weight on x0
        ct = self.alphas[t].sqrt() * (1 - ab_prev) / (1 - ab)  # the weight on x_t
        mean = per_example(c0, x0) * x0 + per_example(ct, x0) * x_t
        return mean, self.posterior_variances[t].to(device=x0.device, dtype=x0.dtype)

    def eps_to_mean(self, x_t: Tensor, eps_hat: Tensor, t: Tensor) -> Tensor:
        r"""The reverse step's mean from a noise prediction: :math:`\mu_\theta = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\epsilon\big)`.

        It is :math:`\tilde\mu_t` with :math:`x_0` replaced by its estimate
        :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`.

        Book: eq-ddpm-step
        """
        check_batch("x_t", x_t)
        check_values("eps_hat", eps_hat, dtype=x_t.dtype)
        check_same_shape("x_t", x_t, "eps_hat", eps_hat)
        t = check_t("t", t, self.T, x_t.shape[0]).cpu()
        b, a, ab = self.betas[t], self.alphas[t], self.alpha_bars[t]
        return (x_t - per_example(b / (1 - ab).sqrt(), x_t) * eps_hat) / per_example(a.sqrt(), x_t)

    def predict_x0(self, x_t: Tensor, eps_hat: Tensor, t: Tensor) -> Tensor:
        r"""Tweedie's formula at step t: :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`.

        The score of :math:`q(x_t)` is :math:`-\hat\epsilon/\sqrt{1-\bar\alpha_t}`, so this is
        :func:`tweedie_denoise` on :math:`x_t/\sqrt{\bar\alpha_t}`, a clean image plus noise of
        standard deviation :math:`\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}`.

        Book: eq-tweedie
        """
        check_batch("x_t", x_t)
        check_values("eps_hat", eps_hat, dtype=x_t.dtype)
        check_same_shape("x_t", x_t, "eps_hat", eps_hat)
        t = check_t("t", t, self.T, x_t.shape[0]).cpu()
        ab = per_example(self.alpha_bars[t], x_t)
        return (x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()


def to_signed(x: Tensor) -> Tensor:
    """Images in [0, 1] to the diffusion model's scale, [-1, 1]: ``2 x - 1``."""
    check_values("x", x)
    if value_checks_enabled():
        check_range("x (grey levels)", x, 0.0, 1.0)
    return 2 * x - 1


def to_unit(x: Tensor) -> Tensor:
    """The diffusion model's scale back to grey levels: ``(x + 1) / 2``, clamped to [0, 1]."""
    check_values("x", x)
    return ((x + 1) / 2).clamp(0.0, 1.0)
