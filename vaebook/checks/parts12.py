"""The checks of the coding exercises in Parts I and II (chapters 0 to 9), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

import itertools
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
    "square_symmetries",
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
    "bicubic_then_conv",
    "mixture_code_sampler",
    "ppca_m_step",
    "score_function_with_baseline",
    "vae_loss",
    "slerp",
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

    def draws_come_from_the_generator():
        before = torch.random.get_rng_state()
        a, b, c = fn(x, 0.3, _gen(7)), fn(x, 0.3, _gen(7)), fn(x, 0.3, _gen(8))
        if not torch.equal(torch.random.get_rng_state(), before):
            raise CheckFailed("salt_and_pepper: it drew from torch's global random generator; draw every random "
                              "number from the generator argument (torch.rand(x.shape, generator=generator))")
        if not torch.equal(a, b):
            raise CheckFailed("salt_and_pepper: two calls with the same generator seed gave different images; "
                              "use only the generator passed in")
        if torch.equal(a, c):
            raise CheckFailed("salt_and_pepper: two different generator seeds gave the same image; the corruption "
                              "must be random, drawn from the generator, not a fixed pattern")

    check(
        "salt_and_pepper (fraction changed, only 0s and 1s, share of 1s)",
        lambda p, seed: stats_of(fn, p, seed),
        ref_stats,
        cases,
        atol=0.011,
        rtol=0,
        extra=draws_come_from_the_generator,
        strict=strict,
    )


def square_symmetries(fn: Callable[[Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(x)`` returns each square image of ``x`` (``(n, c, h, h)``) under the 8 symmetries of
    the square, ``(8 n, c, h, h)``, in any order (the images are compared sorted by their pixels)."""

    def in_order(out, x):
        if not isinstance(out, Tensor) or out.dim() != 4 or out.shape[1:] != x.shape[1:]:
            return out  # the comparison reports the type or the shape
        rows = out.detach().flatten(1)
        return out[sorted(range(len(rows)), key=lambda i: rows[i].tolist())]

    def rotations_only(x):
        return torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])

    def channel_mirror(x):
        turned = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
        return torch.cat(turned + [t.flip(1) for t in turned])

    g = _gen(9)
    cases = [
        Case((torch.rand(3, 1, 4, 4, generator=g),), "3 random 4 x 4 images"),
        Case((torch.rand(2, 2, 5, 5, generator=g),), "2 images of 2 channels, 5 x 5"),
        Case((torch.rand(1, 1, 16, 16, generator=g),), "one 16 x 16 patch, as on the page"),
    ]
    hints = [
        (lambda r, case: in_order(rotations_only(case.args[0]), case.args[0]),
         "the 4 rotations are half of the 8: add each rotation mirrored (flip a pixel dimension, 2 or 3)."),
        (lambda r, case: in_order(channel_mirror(case.args[0]), case.args[0]),
         "mirror along a pixel dimension (dims 2 or 3 of (n, c, h, w)); dimension 1 holds the channels."),
    ]
    check(
        "square_symmetries (the 8 n images, sorted)",
        lambda x: in_order(fn(x.clone()), x),
        lambda x: in_order(_data.square_symmetries(x), x),
        cases,
        hints=hints,
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


# --------------------------------------------------------------------------- projects and later additions
def bicubic_then_conv(make: Callable[..., torch.nn.Module], *, strict: bool = False) -> None:
    """Project (chapter 3): ``make(channels, n_layers, scale)`` builds the high-resolution alternative.

    The net upsamples by bicubic interpolation first and then runs ``n_layers`` 3x3 convolutions
    of ``channels`` channels and a last one to one channel on the large image, added to it. Checked
    on what it produces: its output shape, that it is exactly bicubic interpolation when its last
    layer is zero, its count of multiply-adds against the library's low-resolution net (``scale**2``
    times as many per hidden layer), and that a short training lifts it above bicubic interpolation.
    """
    from .. import data as d
    from .. import models, train
    from ..objectives import reconstruction_error
    from ..losses import LossOutput

    def run(channels, n_layers, scale):
        net = make(channels, n_layers, scale)
        if not isinstance(net, torch.nn.Module):
            raise CheckFailed(f"bicubic_then_conv: make({channels}, {n_layers}, {scale}) should return a torch.nn.Module, got {type(net).__name__}")
        return net

    def shape_of(channels, n_layers, scale):
        return tuple(run(channels, n_layers, scale)(torch.rand(2, 1, 7, 7, generator=_gen(0))).shape)

    cases = [Case((8, 2, 4), "8 channels, 2 layers, 4x"), Case((4, 1, 2), "4 channels, 1 layer, 2x")]

    def produces_what_it_should():
        net = run(16, 3, 4)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        if len(convs) != 4 or convs[-1].out_channels != 1 or any(c.kernel_size != (3, 3) for c in convs):
            raise CheckFailed(f"bicubic_then_conv: expected 3 hidden 3x3 convolutions and a last 3x3 one to 1 channel, "
                              f"got {[(c.in_channels, c.out_channels, c.kernel_size) for c in convs]}")
        low = torch.rand(3, 1, 7, 7, generator=_gen(1))
        with torch.no_grad():
            convs[-1].weight.zero_()
            if convs[-1].bias is not None:
                convs[-1].bias.zero_()
            bicubic = torch.nn.functional.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False)
            if not torch.allclose(net(low), bicubic, atol=1e-5):
                raise CheckFailed("bicubic_then_conv: with its last layer zero, the net should output the bicubic "
                                  "upsampling itself (up + body(up)), but it does not")

        def hidden_macs(m, side):  # multiply-adds of the convolutions between the first and the last, on side x side
            inner = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)][1:-1]
            return sum(c.in_channels * c.out_channels * 9 * side * side for c in inner)

        ours, lib = hidden_macs(run(16, 3, 4), 28), hidden_macs(models.SuperResolver(scale=4, channels=16, n_layers=3), 7)
        if ours != 16 * lib:
            raise CheckFailed(f"bicubic_then_conv: its hidden layers should cost 16 times the library's, which work "
                              f"at 7x7 ({16 * lib:,} multiply-adds), got {ours:,}")
        torch.manual_seed(0)
        x = _digits("train", 512)
        net = run(16, 3, 4)
        loss = lambda m, xi, t: LossOutput(reconstruction_error(t, m(xi)).mean(), {})  # noqa: E731
        train.fit(net, x, steps=150, batch_size=32, lr=1.5e-3, corrupt=lambda xb, g: d.downsample(xb, 4), loss=loss,
                  progress=False, device="cpu", seed=0)
        test = _digits("test", 200)
        with torch.no_grad():
            gain = (_psnr(net(d.downsample(test, 4)), test) - _psnr(d.upsample(d.downsample(test, 4), 4), test))
        if gain <= 0.5:
            raise CheckFailed(f"bicubic_then_conv: after 150 steps of training it should beat bicubic interpolation by "
                              f"more than 0.5 dB on held-out digits, got {gain:.2f} dB")

    check("bicubic_then_conv (output shape)", lambda c, n, r: shape_of(c, n, r),
          lambda c, n, r: (2, 1, 7 * r, 7 * r), cases, extra=produces_what_it_should, strict=strict)


def _digits(split: str, n: int) -> Tensor:
    """``n`` MNIST images for a check: the chapter has already said which data set it runs on, so no warning here
    (a check cell's output on standard error would read as a failure to nbgrader)."""
    import warnings

    from ..data import OfflineDataWarning, load_mnist

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDataWarning)
        return load_mnist(split, n=n).x


def _psnr(x: Tensor, ref: Tensor) -> float:
    from ..metrics import psnr as p

    return p(x.clamp(0, 1), ref).mean().item()


def mixture_code_sampler(fn: Callable[[Tensor, int, int, int], Tensor], *, strict: bool = False) -> None:
    """Project (chapter 4): ``fn(codes, n_components, n, seed)`` fits a Gaussian mixture to codes and samples it.

    Checked on what it produces, on codes made of five tight clumps far apart: ``n`` samples of the
    codes' dimension, nearly all of them close to some clump (where a single Gaussian's draws fall
    mostly in the empty space between), in proportions near the clumps' sizes, repeatable for one
    seed and different for another.
    """
    g = _gen(21)
    centers = 6 * torch.randn(5, 8, generator=g)  # (5, 8)
    sizes = torch.tensor([400, 300, 150, 100, 50])
    codes = torch.cat([c + 0.2 * torch.randn(int(s), 8, generator=g) for c, s in zip(centers, sizes, strict=True)])  # (1000, 8)

    def summary(n_components, n, seed):
        z = fn(codes, n_components, n, seed)
        if not isinstance(z, Tensor):
            z = torch.as_tensor(z)
        if tuple(z.shape) != (n, 8):
            return ("shape", tuple(z.shape))
        z = z.float()
        d = torch.cdist(z, centers)  # (n, 5)
        near = (d.min(1).values < 1.5).float().mean().item()
        share = torch.bincount(d.argmin(1), minlength=5).float() / n
        return (near, *share.tolist())

    def ref(n_components, n, seed):
        return (1.0, *(sizes.float() / sizes.sum()).tolist())

    def seeds_matter():
        a, b, c = fn(codes, 5, 200, 0), fn(codes, 5, 200, 0), fn(codes, 5, 200, 1)
        if not torch.equal(torch.as_tensor(a), torch.as_tensor(b)):
            raise CheckFailed("mixture_code_sampler: the same seed gave different samples; pass the seed to the "
                              "mixture (GaussianMixture(random_state=seed)) and to its sampling")
        if torch.equal(torch.as_tensor(a), torch.as_tensor(c)):
            raise CheckFailed("mixture_code_sampler: two seeds gave the same samples")

    check("mixture_code_sampler (share near a clump, share per clump)", summary, ref,
          [Case((5, 2000, 0), "5 components, 2,000 samples"), Case((10, 2000, 3), "10 components for 5 clumps")],
          atol=0.04, rtol=0, extra=seeds_matter, strict=strict)


def ppca_m_step(fn: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, float]], *, strict: bool = False) -> None:
    """Project (chapter 6): ``fn(x, m, S)`` is EM's M-step for probabilistic PCA, ``(W, b, c)``.

    ``x``: ``(n, d)`` data; ``m``: ``(n, k)`` posterior means and ``S``: ``(k, k)`` the shared posterior
    covariance, from the E-step. Checked against the library's ``vb.ppca_em_step`` (the same step),
    and on what it produces: fifty EM iterations with it climb the exact log-likelihood at every step
    and reach the maximum-likelihood value in closed form.
    """
    from ..exact import ppca_em_step as lib_step
    from ..models import LinearGaussian

    def model(seed, d=6, k=2):
        g = _gen(seed)
        return LinearGaussian(torch.randn(d, k, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64), 0.5)

    def data(seed, n=300, d=6):
        g = _gen(seed + 100)
        return torch.randn(n, 3, generator=g, dtype=torch.float64) @ torch.randn(3, d, generator=g, dtype=torch.float64) + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)

    def student(seed):
        mdl, x = model(seed), data(seed)
        m, S = mdl.posterior(x)
        W, b, c = fn(x, m, S)
        return torch.as_tensor(W, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), float(c)

    def reference(seed):
        mdl, x = model(seed), data(seed)
        lib_step(mdl, x)
        return mdl.W.detach().clone(), mdl.b.detach().clone(), mdl.c

    def climbs_to_the_maximum():
        x = data(7)
        mdl = model(7)
        lls = []
        for _ in range(50):
            lls.append(mdl.log_prob(x).mean().item())
            m, S = mdl.posterior(x)
            W, b, c = fn(x, m, S)
            with torch.no_grad():
                mdl.W.copy_(torch.as_tensor(W, dtype=torch.float64))
                mdl.b.copy_(torch.as_tensor(b, dtype=torch.float64))
            mdl.set_c(float(c))
        lls.append(mdl.log_prob(x).mean().item())
        if min(b - a for a, b in itertools.pairwise(lls)) < -1e-9:
            raise CheckFailed("ppca_m_step: the log-likelihood fell during EM; an M-step never lowers it")
        xc = x - x.mean(0)
        ev, evec = torch.linalg.eigh(xc.T @ xc / len(x))
        ev, evec = ev.flip(0), evec.flip(1)
        c_ml = ev[2:].mean()
        ml = LinearGaussian(evec[:, :2] * (ev[:2] - c_ml).sqrt(), x.mean(0), c_ml.item()).log_prob(x).mean().item()
        if ml - lls[-1] > 1e-3:
            raise CheckFailed(f"ppca_m_step: after 50 EM iterations the log-likelihood is {lls[-1]:.4f}, short of the "
                              f"maximum {ml:.4f} nats per point")

    def without_the_covariance(r, case):  # c from the residual at the posterior mean alone
        mdl, x = model(case.args[0]), data(case.args[0])
        m, _ = mdl.posterior(x)
        W, b, _ = r
        return W, b, ((x - m @ W.T - b).pow(2).sum() / x.numel()).item()

    hints = [(without_the_covariance, "E_q||x - W z - b||^2 includes the posterior covariance: add n tr(W S W^T) "
              "to the squared residuals at the posterior means before dividing by n d.")]
    check("ppca_m_step", student, reference, [Case((0,), "d = 6, k = 2, n = 300"), Case((1,), "another model and data set")],
          atol=1e-6, rtol=1e-6, hints=hints, extra=climbs_to_the_maximum, strict=strict)


def score_function_with_baseline(
    fn: Callable[[Callable[[Tensor], Tensor], Tensor, Tensor, Tensor, float], tuple[Tensor, Tensor]], *, strict: bool = False
) -> None:
    """Exercise (chapter 7): ``fn(f, mu, logvar, eps, baseline)``: the score-function estimate with ``f(z) - baseline``.

    Compared with the library's estimator applied to ``f - baseline``; then checked on what it buys:
    with the baseline ``f(mu)``, its variance over repeated draws is lower than without, and its
    mean agrees with the exact gradient (the baseline adds no bias).
    """
    from ..estimators import score_function_gradient

    g = _gen(31)
    f1 = lambda z: -(z - 2.0).pow(2).sum(-1)  # noqa: E731
    f2 = lambda z: torch.sin(z).sum(-1) + 5.0  # noqa: E731
    cases = [
        Case((f1, torch.zeros(3), torch.zeros(3), torch.randn(50, 3, generator=g), 0.0), "baseline 0: the plain estimator"),
        Case((f1, torch.ones(3), torch.full((3,), -1.0), torch.randn(50, 3, generator=g), -3.0), "baseline -3"),
        Case((f2, torch.randn(2, generator=g), torch.zeros(2), torch.randn(1, 2, generator=g), 5.0), "one sample, baseline 5"),
    ]

    def ref(f, mu, logvar, eps, b):
        return score_function_gradient(lambda z: f(z) - b, mu, logvar, eps)

    def lowers_the_variance():
        mu, logvar = torch.tensor([1.0, -0.5]), torch.zeros(2)
        gen = _gen(32)
        plain, based = [], []
        b = f1(mu.unsqueeze(0)).item()
        for _ in range(400):
            e = torch.randn(10, 2, generator=gen)
            plain.append(torch.cat(fn(f1, mu, logvar, e, 0.0)))
            based.append(torch.cat(fn(f1, mu, logvar, e, b)))
        plain_t, based_t = torch.stack(plain), torch.stack(based)
        if not based_t.var(0).sum() < 0.5 * plain_t.var(0).sum():
            raise CheckFailed("score_function_with_baseline: with the baseline f(mu) the estimator's variance should "
                              "fall by more than half on this function; subtract the baseline from f(z) before multiplying by the score")
        exact_mu = -2 * (mu - 2.0)  # d/dmu E[-(z - 2)^2] = -2 (mu - 2)
        if (based_t[:, :2].mean(0) - exact_mu).abs().max() > 5 * based_t[:, :2].std(0).max() / 20:
            raise CheckFailed("score_function_with_baseline: its mean is off the exact gradient; a constant baseline "
                              "must leave the estimator unbiased")

    hints = [(lambda r, case: score_function_gradient(case.args[0], case.args[1], case.args[2], case.args[3]),
              "you did not use the baseline: multiply the score by f(z) - baseline.")]
    check("score_function_with_baseline", fn, ref, cases, atol=1e-4, rtol=1e-4, hints=hints, extra=lowers_the_variance, strict=strict)


def vae_loss(fn: Callable, *, strict: bool = False) -> None:
    """Project (chapter 8): ``fn(model, x)`` is minus the ELBO of a ``vb.VAE`` on a batch, averaged, one sample.

    Checked on what it produces. Its average over many draws matches the library's negative ELBO
    (the single-sample estimate is random, so any correct way of drawing the noise passes); and a
    small VAE trained with it for 400 steps reaches a test ELBO within 3 nats of one trained the
    same way with the library's loss, and better than -200 nats.
    """
    from .. import train
    from ..estimators import model_elbo
    from ..losses import LossOutput
    from ..models import VAE

    torch.manual_seed(0)
    vae = VAE(z_dim=4, hidden=(64,))
    with torch.no_grad():  # spread the codes, so that the KL term weighs as much as the reconstruction
        last = [m for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]  # the (mu, log sigma^2) layer
        last.weight.mul_(10.0)
    x = torch.bernoulli(_digits("test", 32), generator=_gen(41))

    def averages(_):
        with torch.no_grad():
            torch.manual_seed(1)
            ours = torch.stack([torch.as_tensor(fn(vae, x)).float().reshape(()) for _ in range(200)])
            torch.manual_seed(1)
            lib = torch.stack([-model_elbo(vae, x).elbo.mean() for _ in range(200)])
        se = (ours.var() / 200 + lib.var() / 200).sqrt().item()
        return ours.mean().item(), lib.mean().item(), se

    def student(_):
        m, ref_m, se = averages(_)
        return int(abs(m - ref_m) > 5 * max(se, 1e-6))  # 0 when the averages agree to 5 standard errors

    def trains_well():
        def trained(loss):
            torch.manual_seed(2)
            model = VAE(z_dim=8, hidden=(128,))
            data = _digits("train", 2000)
            model.init_output_bias(data)
            train.fit(model, data, steps=400, lr=2e-3, binarize=True, loss=loss, progress=False, device="cpu", seed=0)
            return train.evaluate(model, _digits("test", 500), binarize=True)["elbo"]

        theirs = trained(lambda m, xb, t: LossOutput(torch.as_tensor(fn(m, xb)).reshape(()), {}))
        ours = trained(None)
        if not (theirs > -200 and abs(theirs - ours) < 3):
            raise CheckFailed(f"vae_loss: a small VAE trained with it for 400 steps reaches a test ELBO of {theirs:.1f} "
                              f"nats; with the library's loss, {ours:.1f}. Expected better than -200 and within 3 nats")

    hints = [
        (lambda r, case: 1, "your loss is off the negative ELBO on average: check the sign of each "
         "term (the loss is -(recon - kl)), the sum over pixels and latent coordinates, and the mean over the batch."),
    ]
    check("vae_loss (1 if its average over 200 draws is off the library's by more than 5 standard errors)", student, lambda _: 0,
          [Case((0,), "200 draws on 32 test digits")], atol=0, rtol=0, hints=hints, extra=trains_well, strict=strict)


def slerp(fn: Callable[[Tensor, Tensor, int], Tensor], *, strict: bool = False) -> None:
    """Project (chapter 9): ``fn(z0, z1, n)`` is spherical interpolation, ``n`` codes, ends included, ``(n, k)``.

    Compared with ``vb.interpolate(..., method="slerp")``, nearly parallel codes included (where
    slerp becomes the straight line); then checked on what it is for: the midpoints of pairs of
    prior draws in 32 dimensions keep the ends' norm (their mean ratio within 2% of 1).
    """
    g = _gen(51)
    a, b = torch.randn(5, generator=g), torch.randn(5, generator=g)
    cases = [
        Case((a, b, 7), "7 codes in 5-D"),
        Case((torch.tensor([3.0, 0.0]), torch.tensor([0.0, 2.0]), 3), "orthogonal, unequal norms"),
        Case((a, a * (1 + 1e-9), 4), "nearly parallel: a straight line"),
    ]

    def keeps_the_norm():
        gen = _gen(52)
        z0, z1 = torch.randn(200, 32, generator=gen), torch.randn(200, 32, generator=gen)
        mid = torch.stack([fn(u, v, 3)[1] for u, v in zip(z0, z1, strict=True)])
        ratio = (mid.norm(dim=1) / (0.5 * (z0.norm(dim=1) + z1.norm(dim=1)))).mean().item()
        if not 0.98 < ratio < 1.02:
            raise CheckFailed(f"slerp: midpoints of prior draws should keep the ends' norm (ratio about 1), got {ratio:.3f}")

    hints = [(lambda r, case: _stats.interpolate(case.args[0], case.args[1], case.args[2]),
              "that is the straight line; slerp weights z0 and z1 by sin((1 - t) Omega) / sin Omega and sin(t Omega) / sin Omega.")]
    check("slerp", fn, lambda u, v, n: _stats.interpolate(u, v, n, method="slerp"), cases, atol=1e-4, rtol=1e-4,
          hints=hints, extra=keeps_the_norm, strict=strict)
