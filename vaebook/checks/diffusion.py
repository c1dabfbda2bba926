"""The checks of the coding exercises of chapter 13 (from denoising to diffusion), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference in :mod:`vaebook.diffusion` through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import diffusion as _diffusion
from .core import Case, CheckFailed, check
from .core import gen as _gen

__all__ = ["q_sample", "ddpm_step", "train_score_model"]


def q_sample(fn: Callable[[Tensor, float, Tensor], Tensor], *, strict: bool = False) -> None:
    r"""Exercise: ``fn(x0, alpha_bar, eps)`` returns :math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon`.

    ``alpha_bar`` is a float; the noise ``eps`` is given, so the answer is one tensor.
    """

    def ref(x0, alpha_bar, eps):
        return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * eps

    g = _gen(130)
    cases = [
        Case((torch.rand(3, 1, 14, 14, generator=g) * 2 - 1, 0.7, torch.randn(3, 1, 14, 14, generator=g)), "3 images, alpha_bar 0.7"),
        Case((torch.rand(1, 196, generator=g) * 2 - 1, 1.0, torch.randn(1, 196, generator=g)), "alpha_bar 1: no noise yet"),
        Case((torch.rand(2, 4, generator=g) * 2 - 1, 1e-4, torch.randn(2, 4, generator=g)), "alpha_bar near 0: almost pure noise"),
    ]
    hints = [
        (lambda r, case: case.args[1] * case.args[0] + (1 - case.args[1]) * case.args[2],
         "alpha_bar and 1 - alpha_bar are variances: scale x0 and eps by their square roots."),
        (lambda r, case: math.sqrt(1 - case.args[1]) * case.args[0] + math.sqrt(case.args[1]) * case.args[2],
         "the weights are swapped: x0 keeps sqrt(alpha_bar), the noise gets sqrt(1 - alpha_bar)."),
        (lambda r, case: math.sqrt(case.args[1]) * case.args[0] + (1 - case.args[1]) * case.args[2],
         "the noise's standard deviation is sqrt(1 - alpha_bar), not 1 - alpha_bar."),
    ]
    check("q_sample", fn, ref, cases, hints=hints, strict=strict)


def ddpm_step(fn: Callable[[Tensor, Tensor, float, float, Tensor | None], Tensor], *, strict: bool = False) -> None:
    r"""Exercise: ``fn(x_t, eps_hat, alpha_bar_t, alpha_bar_prev, z)`` makes one step of ancestral sampling.

    :math:`x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\epsilon\big) + \sigma_t z`
    with :math:`\alpha_t = \bar\alpha_t / \bar\alpha_{t-1}`, :math:`\beta_t = 1 - \alpha_t` and
    :math:`\sigma_t^2 = \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t`; ``z=None`` returns the mean.
    The noise ``z`` is given, so the answer is exact.
    """

    def ref(x_t, eps_hat, ab_t, ab_prev, z):
        return _diffusion.ddpm_step(x_t, eps_hat, ab_t, ab_prev, z)

    def parts(case):
        x_t, eps_hat, ab_t, ab_prev, z = case.args
        alpha = ab_t / ab_prev
        beta = 1 - alpha
        noise = 0.0 if z is None else math.sqrt((1 - ab_prev) / (1 - ab_t) * beta) * z
        return x_t, eps_hat, ab_t, alpha, beta, noise, z

    def no_root(r, case):
        x_t, eps_hat, ab_t, alpha, beta, noise, _ = parts(case)
        return (x_t - beta / (1 - ab_t) * eps_hat) / math.sqrt(alpha) + noise

    def beta_variance(r, case):
        x_t, eps_hat, ab_t, alpha, beta, _, z = parts(case)
        mean = (x_t - beta / math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(alpha)
        return mean if z is None else mean + math.sqrt(beta) * z

    def no_rescale(r, case):
        x_t, eps_hat, ab_t, alpha, beta, noise, _ = parts(case)
        return x_t - beta / math.sqrt(1 - ab_t) * eps_hat + noise

    def plus(r, case):
        x_t, eps_hat, ab_t, alpha, beta, noise, _ = parts(case)
        return (x_t + beta / math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(alpha) + noise

    s = _diffusion.NoiseSchedule.linear(100)
    ab = s.alpha_bars
    g = _gen(131)
    shape = (4, 1, 14, 14)
    cases = [
        Case((torch.randn(shape, generator=g), torch.randn(shape, generator=g), ab[50].item(), ab[49].item(), torch.randn(shape, generator=g)),
             "step 50 to 49 of 100"),
        Case((torch.randn(2, 196, generator=g), torch.randn(2, 196, generator=g), ab[100].item(), ab[80].item(), torch.randn(2, 196, generator=g)),
             "a long step, 100 to 80 (a shortened chain)"),
        Case((torch.randn(1, 1, 14, 14, generator=g), torch.randn(1, 1, 14, 14, generator=g), ab[1].item(), 1.0, None),
             "the last step, 1 to 0: z is None, return the mean"),
    ]
    hints = [
        (no_root, "the noise prediction is scaled by beta_t / sqrt(1 - alpha_bar_t): divide by the square root of 1 - alpha_bar_t."),
        (beta_variance, "this chapter's reverse variance is beta~_t = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta_t, not beta_t "
                        "(Ho et al. found both work; the check follows the book's choice, the posterior variance)."),
        (no_rescale, "divide the bracket by sqrt(alpha_t): each forward step shrank x by that factor."),
        (plus, "subtract the predicted noise: x_t holds it, the step removes some of it."),
    ]
    check("ddpm_step", fn, ref, cases, atol=1e-4, rtol=1e-4, hints=hints, strict=strict)


def _chapter_mixture() -> _diffusion.GaussianMixture:
    """The chapter's 2-D mixture of three Gaussians (book/13_diffusion.ipynb)."""
    return _diffusion.GaussianMixture(
        weights=torch.tensor([0.5, 0.3, 0.2]),
        means=torch.tensor([[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]]),
        variances=torch.tensor([[0.3, 0.1], [0.05, 0.05], [0.2, 0.6]]),
    )


SCORE_TOLERANCE = 0.1  # the largest accepted mean squared score error, as a fraction of the score's mean square


def train_score_model(fn: Callable[[Tensor, float, int], Callable[[Tensor], Tensor]], *, strict: bool = False) -> None:
    r"""Project: ``fn(x, sigma, steps)`` trains a score model by denoising score matching and returns it.

    ``x`` (n, 2) are clean draws of the chapter's mixture; the result is a function of noisy points
    (b, 2) that returns the estimated score :math:`\nabla\log p_\sigma` (b, 2). Checked on what it
    produces: against the mixture's exact score (eq-mixture-score) at 20,000 fresh noisy points, its
    mean squared error must be below 10% of the score's mean square. Any network, optimiser and
    random draws will do; only the result is judged, so different valid runs all pass.
    """
    mixture, sigma, steps = _chapter_mixture(), 0.5, 600
    x = mixture.sample(20_000, generator=_gen(132))
    x_eval = mixture.sample(20_000, generator=_gen(133))
    x_noisy = x_eval + sigma * torch.randn(x_eval.shape, generator=_gen(134))
    exact = mixture.score(x_noisy, sigma)
    power = exact.pow(2).sum(1).mean()
    accepted = f"mean squared score error below {SCORE_TOLERANCE:.0%} of the score's mean square"

    def rel(estimate: Tensor) -> float:
        return ((estimate - exact).pow(2).sum(1).mean() / power).item()

    def verdict(n_steps: int) -> str:
        model = fn(x.clone(), sigma, n_steps)
        if not callable(model):
            raise CheckFailed(f"train_score_model: expected it to return the trained score function, got {type(model).__name__}")
        with torch.no_grad():
            est = model(x_noisy.clone())
        if not isinstance(est, Tensor) or tuple(est.shape) != tuple(exact.shape):
            got = tuple(est.shape) if isinstance(est, Tensor) else type(est).__name__
            return f"an output of shape {got} (expected one score per point, shape {tuple(exact.shape)})"
        est = est.detach().to(exact.dtype)
        err = rel(est)
        if err < SCORE_TOLERANCE:
            return accepted
        if rel((est - x_noisy) / sigma**2) < SCORE_TOLERANCE:
            return ("the denoised points, not the score: a denoiser's output x_hat gives the score (x_hat - x_noisy) / sigma^2 "
                    "(Tweedie); train the network on the DSM target (x - x_noisy) / sigma^2 itself")
        if rel(-est) < SCORE_TOLERANCE:
            return "the score with the wrong sign: the DSM target is (x - x_noisy) / sigma^2, pointing from the noisy point back to the clean one"
        c = ((est * exact).sum() / est.pow(2).sum().clamp_min(1e-12)).item()
        if rel(c * est) < SCORE_TOLERANCE:
            return (f"the score times {1 / c:.3g}: the DSM target is (x - x_noisy) / sigma^2; check the power of sigma "
                    "(sigma = 0.5 here, so a missing or extra factor of sigma^2 is a factor of 4)")
        return (f"a mean squared score error of {err:.1%} of the score's mean square; train on fresh noise for every batch, "
                "with the target (x - x_noisy) / sigma^2, for the 600 steps given (Adam, learning rate about 1e-3 to 3e-3)")

    check("train_score_model", verdict, lambda n_steps: accepted, [Case((steps,), "600 steps on 20,000 draws of the mixture, sigma 0.5")],
          strict=strict)
