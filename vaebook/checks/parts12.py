"""The checks of the coding exercises in Parts I and II (chapters 0 to 9), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import data as _data
from .. import objectives as _obj
from .. import stats as _stats
from .core import Case, CheckFailed, check
from .core import gen as _gen

__all__ = [
    "class_means",
    "reconstruction_error",
    "pca_reconstruction",
    "gaussian_noise_pairs",
    "salt_and_pepper",
    "pixel_shuffle",
    "psnr",
    "code_statistics",
    "bernoulli_log_likelihood",
    "naive_log_likelihood",
    "elbo",
    "em_responsibilities",
    "reparameterize",
    "gaussian_kl",
    "importance_log_likelihood",
    "interpolate",
]


# --------------------------------------------------------------------------- setup chapter
def class_means(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, y)`` returns the mean image of each digit class 0-9, shape ``(10, *x.shape[1:])``."""

    def ref(x, y):
        return torch.stack([x[y == d].mean(0) for d in range(10)])

    g = _gen(0)
    y = torch.arange(40) % 10
    cases = [
        Case((torch.rand(40, 1, 28, 28, generator=g), y), "40 images, 4 per class"),
        Case((torch.rand(10, 784, generator=g), torch.arange(9, -1, -1)), "one image per class, labels in reverse"),
    ]
    hints = [(lambda r, case: r.mean(0, keepdim=True).expand_as(r), "average within each class, not over the whole batch.")]
    check("class_means", fn, ref, cases, hints=hints, strict=strict)


# --------------------------------------------------------------------------- chapter 1
def reconstruction_error(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, x_hat)`` returns each example's summed squared error, shape ``(b,)``."""
    g = _gen(1)
    cases = [
        Case((torch.rand(4, 1, 28, 28, generator=g), torch.rand(4, 1, 28, 28, generator=g)), "4 images"),
        Case((torch.rand(1, 784, generator=g), torch.rand(1, 784, generator=g)), "batch of 1, flattened"),
        Case((torch.ones(2, 1, 28, 28), torch.ones(2, 1, 28, 28)), "perfect reconstruction"),
    ]
    hints = [
        (lambda r, case: r / 784, "average over pixels gives the mean; the objective sums the squared errors."),
        (lambda r, case: r.sqrt(), "the objective uses the squared norm, not the norm."),
        (lambda r, case: r.sum(), "return one value per example, shape (b,): sum over pixels only."),
    ]
    check("reconstruction_error", fn, _obj.reconstruction_error, cases, hints=hints, strict=strict)


def pca_reconstruction(fn: Callable[[Tensor, Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, mean, components)`` projects ``(n, d)`` data onto ``k`` orthonormal rows and back."""

    def ref(x, mean, components):
        return (x - mean) @ components.T @ components + mean  # (n, d)

    g = _gen(2)
    q, _ = torch.linalg.qr(torch.randn(10, 3, generator=g))
    cases = [
        Case((torch.randn(5, 10, generator=g), torch.randn(10, generator=g), q.T.contiguous()), "5 points, k=3"),
        Case((torch.randn(1, 10, generator=g), torch.zeros(10), q.T[:1].contiguous()), "batch of 1, k=1"),
    ]
    hints = [(lambda r, case: r - case.args[1], "add the mean back after projecting.")]
    check("pca_reconstruction", fn, ref, cases, hints=hints, strict=strict)


# --------------------------------------------------------------------------- chapter 2
def gaussian_noise_pairs(fn: Callable[[Tensor, float, torch.Generator], tuple[Tensor, Tensor]], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, sigma, generator)`` returns ``(noisy, clean)`` with ``noisy = x + sigma * N(0, I)``.

    Checked by drawing the noise from the same generator state: use ``torch.randn(x.shape, generator=generator)``.
    """

    def ref(x, sigma, generator):
        return _data.add_gaussian_noise(x, sigma, generator=generator), x

    def run(fn_, x, sigma, seed):
        return fn_(x, sigma, _gen(seed))

    cases = [
        Case((torch.rand(3, 1, 28, 28, generator=_gen(3)), 0.5, 10), "sigma 0.5"),
        Case((torch.rand(1, 1, 28, 28, generator=_gen(4)), 0.0, 11), "sigma 0, batch of 1"),
    ]
    hints = [(lambda r, case: (r[1], r[0]), "return the pair in the order (noisy input, clean target).")]
    check(
        "gaussian_noise_pairs",
        lambda x, s, seed: run(fn, x, s, seed),
        lambda x, s, seed: run(ref, x, s, seed),
        cases,
        hints=hints,
        strict=strict,
    )


def salt_and_pepper(fn: Callable[[Tensor, float, torch.Generator], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, p, generator)`` sets a fraction ``p`` of pixels to 0 or 1; checked by its statistics."""
    x = torch.full((64, 1, 28, 28), 0.5)

    def stats_of(fn_, p, seed):
        out = fn_(x, p, _gen(seed))
        if not isinstance(out, Tensor) or out.shape != x.shape:
            return ("shape", tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__)
        changed = out != 0.5
        values = out[changed]
        only_01 = bool(((values == 0) | (values == 1)).all()) if values.numel() else True
        frac = round(changed.float().mean().item(), 2)
        salt = round((values == 1).float().mean().item(), 1) if values.numel() else 0.5
        return (frac, only_01, salt)

    def ref_stats(p, seed):
        return (round(p, 2), True, 0.5)

    cases = [Case((0.1, 0), "p = 0.1"), Case((0.3, 1), "p = 0.3"), Case((0.0, 2), "p = 0 leaves the image")]
    check(
        "salt_and_pepper (fraction changed, only 0s and 1s, share of 1s)",
        lambda p, seed: stats_of(fn, p, seed),
        ref_stats,
        cases,
        atol=0.011,
        rtol=0,
        strict=strict,
    )


# --------------------------------------------------------------------------- chapter 3
def pixel_shuffle(fn: Callable[[Tensor, int], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(t, r)`` rearranges ``(b, c*r*r, h, w)`` into ``(b, c, h*r, w*r)`` like ``torch.nn.PixelShuffle``."""
    g = _gen(5)
    cases = [
        Case((torch.randn(2, 4, 3, 3, generator=g), 2), "r=2, one output channel"),
        Case((torch.randn(1, 32, 7, 7, generator=g), 4), "r=4, two output channels, batch of 1"),
        Case((torch.arange(9.0).view(1, 9, 1, 1), 3), "r=3 on a single pixel"),
    ]
    check("pixel_shuffle", fn, lambda t, r: torch.nn.functional.pixel_shuffle(t, r), cases, atol=0, rtol=0, strict=strict)


def psnr(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, reference)`` returns each image's PSNR in dB for images in [0, 1], shape ``(b,)``."""
    from ..metrics import psnr as ref

    g = _gen(6)
    cases = [
        Case((torch.rand(3, 1, 8, 8, generator=g), torch.rand(3, 1, 8, 8, generator=g)), "3 random images"),
        Case((torch.full((1, 1, 4, 4), 0.1), torch.zeros(1, 1, 4, 4)), "batch of 1, error 0.1 everywhere"),
    ]
    hints = [
        (lambda r, case: r / 2, "PSNR is 10 log10(R^2 / MSE): square the peak, not 10 log10(R / MSE)."),
        (lambda r, case: 2 * r, "use 10 log10 of a ratio of powers (squared values), not 20 log10."),
    ]
    check("psnr", fn, ref, cases, atol=1e-3, rtol=1e-4, hints=hints, strict=strict)


# --------------------------------------------------------------------------- chapter 4
def code_statistics(fn: Callable[[Tensor], tuple[Tensor, Tensor]], *, strict: bool = False) -> None:
    """Exercise: ``fn(z)`` returns the per-dimension mean and standard deviation (unbiased) of codes ``(n, k)``."""
    g = _gen(7)
    cases = [
        Case((3 * torch.randn(100, 4, generator=g) + 2,), "100 codes in 4-D"),
        Case((torch.tensor([[1.0, 2.0], [3.0, 6.0]]),), "two codes"),
    ]
    hints = [(lambda r, case: (r[0], r[1] ** 2), "return the standard deviation, not the variance.")]
    check("code_statistics", fn, lambda z: (z.mean(0), z.std(0)), cases, hints=hints, strict=strict)


# --------------------------------------------------------------------------- chapter 5
def bernoulli_log_likelihood(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, logits)`` returns ``log p(x | z)`` per example for the Bernoulli decoder, shape ``(b,)``."""
    g = _gen(8)
    x = torch.bernoulli(torch.full((4, 784), 0.3), generator=g)
    cases = [
        Case((x, torch.randn(4, 784, generator=g)), "4 binary images"),
        Case((x[:1], 40 * torch.randn(1, 784, generator=g)), "batch of 1, saturated logits (stay finite!)"),
        Case((torch.zeros(2, 784), torch.zeros(2, 784)), "p = 1/2 everywhere: -784 log 2"),
    ]
    hints = [(lambda r, case: -r, "a log-likelihood is the negative of the cross-entropy loss: flip the sign.")]
    check("bernoulli_log_likelihood", fn, _stats.bernoulli_log_prob, cases, atol=1e-3, rtol=1e-5, hints=hints, strict=strict)


def naive_log_likelihood(fn: Callable[[Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(log_px_given_z)`` turns ``(S, b)`` values ``log p(x | z_s)``, ``z_s ~ p(z)``, into ``log (1/S) sum_s p(x | z_s)``."""
    g = _gen(9)
    cases = [
        Case((torch.randn(50, 3, generator=g),), "50 samples, 3 examples"),
        Case((torch.tensor([[-1000.0], [-1001.0]]),), "log-probabilities near -1000 (do not exponentiate directly)"),
        Case((torch.tensor([[-5.0, -7.0]]),), "a single sample"),
    ]
    hints = [(lambda r, case: r + math.log(case.args[0].shape[0]), "divide by the number of samples: subtract log S.")]
    check("naive_log_likelihood", fn, lambda a: _stats.log_mean_exp(a, dim=0), cases, hints=hints, strict=strict)


# --------------------------------------------------------------------------- chapter 6
def elbo(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x, x_logits, mu, logvar)`` returns the single-sample ELBO per example, shape ``(b,)``."""
    g = _gen(10)
    x = torch.bernoulli(torch.full((3, 784), 0.2), generator=g)
    cases = [
        Case((x, torch.randn(3, 784, generator=g), torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)), "3 images, 2-D latent"),
        Case((x[:1], torch.randn(1, 784, generator=g), torch.zeros(1, 2), torch.zeros(1, 2)), "batch of 1, q equal to the prior"),
    ]

    def ref(x, logits, mu, logvar):
        return _obj.elbo(x, logits, mu, logvar).elbo

    def kl_of(case):
        return _stats.gaussian_kl(case.args[2], case.args[3])

    hints = [
        (lambda r, case: -r, "the ELBO is a bound to maximise; you returned its negative (the loss)."),
        (lambda r, case: r + 2 * kl_of(case), "subtract the KL term; you added it."),
    ]
    check("elbo", fn, ref, cases, atol=1e-3, rtol=1e-5, hints=hints, strict=strict)


def em_responsibilities(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise (E-step): ``fn(x, weights, means, stds)`` returns ``p(component j | x_i)`` for a 1-D Gaussian mixture, ``(n, K)``."""

    def ref(x, weights, means, stds):
        comp = torch.distributions.Normal(means, stds)
        log_joint = comp.log_prob(x.unsqueeze(1)) + weights.log()  # (n, K)
        return torch.softmax(log_joint, dim=1)

    g = _gen(11)
    cases = [
        Case((torch.randn(6, generator=g), torch.tensor([0.3, 0.7]), torch.tensor([-1.0, 1.0]), torch.tensor([0.5, 1.0])), "6 points, 2 components"),
        Case((torch.tensor([40.0]), torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])), "one far-away point (use log-space)"),
    ]
    hints = [(lambda r, case: r.T, "return shape (n, K): one row per data point.")]
    check("em_responsibilities", fn, ref, cases, atol=1e-5, rtol=1e-4, hints=hints, strict=strict)


# --------------------------------------------------------------------------- chapter 7
def reparameterize(fn: Callable[[Tensor, Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(mu, logvar, eps)`` returns ``z = mu + sigma * eps``, and gradients must reach ``mu`` and ``logvar``."""
    g = _gen(12)
    cases = [
        Case((torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)), "4 codes in 3-D"),
        Case((torch.tensor([[2.0]]), torch.tensor([[-60.0]]), torch.tensor([[1.5]])), "batch of 1, zero variance: z = mu"),
    ]
    hints = [
        (lambda r, case: case.args[0] + case.args[1].exp() * case.args[2], "sigma = exp(logvar / 2): logvar is the log of the variance."),
        (lambda r, case: case.args[0] + case.args[1] * case.args[2], "logvar is log sigma^2; take sigma = exp(logvar / 2)."),
    ]

    def gradients_reach_mu_and_logvar():
        mu = torch.tensor([[0.5, -0.5]], requires_grad=True)
        logvar = torch.tensor([[0.2, 0.4]], requires_grad=True)
        z = fn(mu, logvar, torch.tensor([[1.0, 2.0]]))
        if not isinstance(z, Tensor) or not z.requires_grad:
            raise CheckFailed("reparameterize: no gradient reaches mu and logvar; build z from them with tensor operations (no .detach(), no sampling inside)")
        z.sum().backward()
        if mu.grad is None or logvar.grad is None:
            raise CheckFailed("reparameterize: the gradient does not reach both mu and logvar")

    check("reparameterize", fn, lambda m, lv, e: _stats.reparameterize(m, lv, e), cases, hints=hints,
          extra=gradients_reach_mu_and_logvar, strict=strict)


def gaussian_kl(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(mu, logvar)`` returns ``KL(N(mu, diag exp(logvar)) || N(0, I))`` per example, shape ``(b,)``."""
    g = _gen(13)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    cases = [
        Case((mu, logvar), "5 examples, 3-D"),
        Case((torch.zeros(1, 4), torch.zeros(1, 4)), "batch of 1 at the prior: KL = 0"),
        Case((torch.tensor([[3.0]]), torch.tensor([[0.0]])), "unit variance, mean 3: KL = 4.5"),
        Case((torch.zeros(2, 2), torch.full((2, 2), -10.0)), "almost zero variance: KL grows like -log sigma^2"),
    ]
    hints = [
        (lambda r, case: -r, "the sign is flipped: the KL divergence is never negative."),
        (lambda r, case: 2 * r, "a factor 1/2 is missing in front of the sum."),
    ]
    check("gaussian_kl", fn, _stats.gaussian_kl, cases, hints=hints, strict=strict)


# --------------------------------------------------------------------------- chapter 8
def importance_log_likelihood(fn: Callable[[Tensor, Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(log_px_given_z, log_pz, log_qz)``, each ``(k, b)``, returns the importance-sampled ``log p(x)``, ``(b,)``."""
    g = _gen(14)
    k, b = 64, 3
    cases = [
        Case((-100 + torch.randn(k, b, generator=g), torch.randn(k, b, generator=g) - 2, torch.randn(k, b, generator=g) - 1), "k=64 samples, 3 examples"),
        Case((torch.full((1, 1), -500.0), torch.full((1, 1), -1.0), torch.full((1, 1), -2.0)), "k=1, batch of 1: the single-sample ELBO"),
    ]

    def ref(lpx, lpz, lqz):
        return _stats.log_mean_exp(lpx + lpz - lqz, dim=0)

    hints = [
        (lambda r, case: r + math.log(case.args[0].shape[0]), "average the weights (divide by k, i.e. subtract log k), do not sum them."),
        (lambda r, case: (case.args[0] + case.args[1] - case.args[2]).mean(0), "take log of the mean of the weights, not the mean of the log-weights (that is the ELBO)."),
    ]
    check("importance_log_likelihood", fn, ref, cases, atol=1e-4, rtol=1e-5, hints=hints, strict=strict)


def interpolate(fn: Callable[[Tensor, Tensor, int], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(z0, z1, n)`` returns ``n`` points from ``z0`` to ``z1`` on a straight line, ends included, ``(n, k)``."""
    g = _gen(15)
    cases = [
        Case((torch.randn(5, generator=g), torch.randn(5, generator=g), 7), "7 points in 5-D"),
        Case((torch.zeros(2), torch.ones(2), 2), "just the two ends"),
    ]
    hints = [(lambda r, case: r.flip(0), "start at z0 and end at z1.")]
    check("interpolate", fn, lambda a, b, n: _stats.interpolate(a, b, n), cases, hints=hints, strict=strict)
