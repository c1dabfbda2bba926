"""The checks of the exercises on training and sampling a VAE: reparametrization, gradients, the loss and latent paths (chapters 7 to 9).

Two check what a function produces rather than one value: the score-function estimator with a
baseline by its variance and mean over many draws, and the VAE loss by its average and by training with it.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import stats as _stats
from .core import Case, CheckFailed, check
from .core import digits as _digits
from .core import gen as _gen

__all__ = ["reparameterize", "gaussian_kl", "score_function_with_baseline", "vae_loss", "slerp"]


# --------------------------------------------------------------------------- reparametrization and its gradients (chapter 7)
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


# --------------------------------------------------------------------------- the VAE's loss (chapter 8)
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


# --------------------------------------------------------------------------- latent paths (chapter 9)
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
              "that is the straight line; slerp weights z0 and z1 by sin((1 - t) Omega) / sin Omega and sin(t Omega) / sin Omega."),
             (lambda r, case: r.flip(0), "start at z0 and end at z1: z0's weight is sin((1 - t) Omega) / sin Omega, which is 1 at t = 0.")]
    check("slerp", fn, lambda u, v, n: _stats.interpolate(u, v, n, method="slerp"), cases, atol=1e-4, rtol=1e-4,
          hints=hints, extra=keeps_the_norm, strict=strict)
