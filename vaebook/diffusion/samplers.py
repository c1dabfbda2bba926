r"""Sampling: ancestral steps (:func:`ddpm_step`) down from noise (:func:`ddpm_sample`), on a subset of the time steps."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..guards import (
    check_callable,
    check_int,
    check_number,
    check_same_shape,
    describe,
)
from .inputs import check_batch, check_generator, check_values
from .schedules import NoiseSchedule

__all__ = ["sampling_timesteps", "ddpm_step", "ddpm_sample"]


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
    check_batch("x_t", x_t)
    check_values("eps_hat", eps_hat, dtype=x_t.dtype)
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
    check_values("z", z, dtype=x_t.dtype)
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
    check_generator(generator)
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
