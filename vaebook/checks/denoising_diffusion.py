"""The checks of the exercises on score matching and denoising diffusion (chapter 13), one function per exercise.

One KL term of the diffusion ELBO is checked against ``torch.distributions.kl_divergence``, the
weights of the losses and one reverse step against the library's schedule and sampler in
:mod:`vaebook.diffusion`, and the score model on what it produces.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import diffusion as _diffusion
from .core import Case, CheckFailed, check, cloned
from .core import gen as _gen

__all__ = ["diffusion_kl", "loss_weights", "ddpm_step", "train_score_model"]


def _forward_posterior(x0: Tensor, x_t: Tensor, ab_t: float, ab_prev: float) -> tuple[Tensor, float]:
    """The mean and variance of q(x_{t-1} | x_t, x0) (eq-diffusion-posterior), written out for the checks."""
    alpha = ab_t / ab_prev
    beta = 1 - alpha
    mean = math.sqrt(ab_prev) * beta / (1 - ab_t) * x0 + math.sqrt(alpha) * (1 - ab_prev) / (1 - ab_t) * x_t
    return mean, (1 - ab_prev) / (1 - ab_t) * beta


def _kl(mean_q: Tensor, var_q: float, mean_p: Tensor, var_p: float) -> Tensor:
    """KL(N(mean_q, var_q I) || N(mean_p, var_p I)) per example, (b,), by torch.distributions."""
    dims = mean_q.dim() - 1
    q = torch.distributions.Independent(torch.distributions.Normal(mean_q, math.sqrt(var_q)), dims)
    p = torch.distributions.Independent(torch.distributions.Normal(mean_p, math.sqrt(var_p)), dims)
    return torch.distributions.kl_divergence(q, p)


def diffusion_kl(fn: Callable[[Tensor, Tensor, Tensor, float, float, float], Tensor], *, strict: bool = False) -> None:
    r"""Exercise: ``fn(x0, x_t, mean_p, var_p, alpha_bar_t, alpha_bar_prev)``: one KL term of the diffusion ELBO, ``(b,)``.

    :math:`\mathrm{KL}\big(q(x_{t-1}\mid x_t, x_0)\,\Vert\,\mathcal N(\mu_p, v_p I)\big)` for each example, with the
    forward posterior's mean and variance from the two :math:`\bar\alpha` (Book: eq-diffusion-posterior) and the
    Gaussian KL (Book: eq-diffusion-kl), summed over every dimension but the batch. Checked in float64
    against ``torch.distributions.kl_divergence``, at steps near the clean and the noisy end, with the
    reverse variance equal to the forward posterior's or to :math:`\beta_t`.
    """
    ab = _diffusion.NoiseSchedule.linear(100).alpha_bars  # float64, (101,)
    g = _gen(135)

    def case(shape, t, prev, var_p_is_beta, spread):
        ab_t, ab_prev = ab[t].item(), ab[prev].item()
        x0 = 2 * torch.rand(shape, generator=g, dtype=torch.float64) - 1
        x_t = math.sqrt(ab_t) * x0 + math.sqrt(1 - ab_t) * torch.randn(shape, generator=g, dtype=torch.float64)
        mean_q, var_q = _forward_posterior(x0, x_t, ab_t, ab_prev)
        mean_p = mean_q + spread * math.sqrt(var_q) * torch.randn(shape, generator=g, dtype=torch.float64)
        var_p = 1 - ab_t / ab_prev if var_p_is_beta else var_q
        return x0, x_t, mean_p, var_p, ab_t, ab_prev

    cases = [
        Case(case((2, 196), 2, 1, False, 3.0), "step 2, the nearly clean end; reverse variance beta~_t (only the means differ)"),
        Case(case((3, 1, 14, 14), 10, 9, True, 1.0), "step 10 of 100, images; reverse variance beta_t"),
        Case(case((1, 5), 100, 99, True, 0.5), "step 100, the noisy end, one example; reverse variance beta_t"),
        Case(case((4, 3), 90, 60, False, 1.0), "a long step, 90 to 60 (a shortened chain)"),
    ]

    def ref(x0, x_t, mean_p, var_p, ab_t, ab_prev):
        mean_q, var_q = _forward_posterior(x0, x_t, ab_t, ab_prev)
        return _kl(mean_q, var_q, mean_p, var_p)

    def beta_as_var_q(r, case):
        x0, x_t, mean_p, var_p, ab_t, ab_prev = case.args
        return _kl(_forward_posterior(x0, x_t, ab_t, ab_prev)[0], 1 - ab_t / ab_prev, mean_p, var_p)

    def reversed_kl(r, case):
        x0, x_t, mean_p, var_p, ab_t, ab_prev = case.args
        mean_q, var_q = _forward_posterior(x0, x_t, ab_t, ab_prev)
        return _kl(mean_p, var_p, mean_q, var_q)

    def means_only(r, case):
        x0, x_t, mean_p, var_p, ab_t, ab_prev = case.args
        return (_forward_posterior(x0, x_t, ab_t, ab_prev)[0] - mean_p).pow(2).flatten(1).sum(1) / (2 * var_p)

    def swapped(r, case):
        x0, x_t, mean_p, var_p, ab_t, ab_prev = case.args
        return ref(x_t, x0, mean_p, var_p, ab_t, ab_prev)

    hints = [
        (means_only, "||mu_q - mu_p||^2 / (2 v_p) is the KL only when the variances are equal; with v_p != v_q add "
                     "(d/2) (log(v_p / v_q) + v_q / v_p - 1)."),
        (beta_as_var_q, "the forward posterior's variance is beta~_t = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta_t, not beta_t."),
        (reversed_kl, "the KL is KL(q || p_theta): the forward posterior comes first, so the log is log(v_p / v_q) and v_q / v_p enters."),
        (swapped, "x0 is weighted by sqrt(alpha_bar_prev) beta_t / (1 - alpha_bar_t), x_t by sqrt(alpha_t) (1 - alpha_bar_prev) / (1 - alpha_bar_t): they are swapped."),
        (lambda r, case: 2 * r, "a factor 1/2 is missing in front of the sum."),
    ]
    check("diffusion_kl", lambda *a: fn(*cloned(a)), ref, cases,
          atol=1e-8, rtol=1e-6, hints=hints, strict=strict)


def loss_weights(fn: Callable[[Tensor], tuple[Tensor, Tensor]], *, strict: bool = False) -> None:
    r"""Exercise: ``fn(alpha_bars)`` returns the weights of :math:`\lVert\epsilon - \hat\epsilon\rVert^2` at steps 2 to T, ``(omega, w_x0)``.

    ``alpha_bars`` ``(T + 1,)`` holds :math:`\bar\alpha_0 = 1, \bar\alpha_1, \dots, \bar\alpha_T`. ``omega``
    ``(T - 1,)`` is the ELBO's :math:`\omega_t = \beta_t / (2\alpha_t(1 - \bar\alpha_{t-1}))` (Book: eq-diffusion-kl-eps)
    and ``w_x0`` ``(T - 1,)`` is :math:`L_{x_0}`'s :math:`(1 - \bar\alpha_t)/\bar\alpha_t` (Book: eq-diffusion-loss),
    for :math:`t = 2, \dots, T`. Checked against the schedule's ``elbo_weights()`` and ``alpha_bars`` for the
    linear and cosine schedules and three lengths.
    """
    schedules = {("linear", 100): _diffusion.NoiseSchedule.linear(100), ("linear", 10): _diffusion.NoiseSchedule.linear(10),
                 ("cosine", 50): _diffusion.NoiseSchedule.cosine(50)}
    cases = [Case((kind, T), f"the {kind} schedule, T = {T}") for kind, T in schedules]

    def student(kind, T):
        return fn(schedules[kind, T].alpha_bars.clone())

    def ref(kind, T):
        s = schedules[kind, T]
        ab = s.alpha_bars[2:]
        return s.elbo_weights()[2:], (1 - ab) / ab

    def ab_t_form(r, case):  # the second form with 1 - alpha_bar_t in place of 1 - alpha_bar_{t-1}
        s = schedules[case.args]
        return s.betas[2:] / (2 * s.alphas[2:] * (1 - s.alpha_bars[2:])), r[1]

    hints = [
        (ab_t_form, "omega_t's second form has 1 - alpha_bar_{t-1}, the previous step's, in its denominator: alpha_bars[1:-1], not alpha_bars[2:]."),
        (lambda r, case: (2 * r[0], r[1]), "a factor 1/2 is missing from omega_t."),
        (lambda r, case: (r[0], 1 / r[1]), "L_x0's weight on ||eps - eps_hat||^2 is (1 - alpha_bar_t) / alpha_bar_t, the inverse of the signal-to-noise ratio."),
    ]
    check("loss_weights (omega_t, L_x0's weight)", student, ref, cases, atol=1e-8, rtol=1e-6, hints=hints, strict=strict)


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
