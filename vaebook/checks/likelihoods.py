"""The checks of the exercises on likelihoods, the ELBO and EM (chapters 5, 6 and 8), one function per exercise.

Log-likelihoods computed in log space (saturated logits, log-probabilities near -1000), the ELBO,
the E- and M-steps of EM, and the importance-sampled log-likelihood.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import torch
from torch import Tensor

from .. import objectives as _obj
from .. import stats as _stats
from .core import Case, CheckFailed, check, cloned
from .core import gen as _gen

__all__ = ["bernoulli_log_likelihood", "naive_log_likelihood", "importance_log_likelihood", "elbo", "em_responsibilities", "ppca_posterior", "ppca_m_step"]


# --------------------------------------------------------------------------- log-likelihoods (chapters 5 and 8)
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


# --------------------------------------------------------------------------- the ELBO and EM (chapter 6)
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


def ppca_posterior(fn: Callable[[Tensor, Tensor, Tensor, float], tuple[Tensor, Tensor]], *, strict: bool = False) -> None:
    r"""Exercise (chapter 6, EM's E-step): ``fn(x, W, b, c)`` is probabilistic PCA's posterior, ``(m, S)``.

    For data ``x`` ``(n, d)`` under :math:`z \sim \mathcal N(0, I)`, :math:`x \mid z \sim \mathcal N(Wz + b, cI)`
    (``W`` ``(d, k)``, ``b`` ``(d,)``, ``c`` a float): the posterior means :math:`M^{-1}W^\top(x_i - b)`, ``(n, k)``,
    and the shared covariance :math:`cM^{-1}`, ``(k, k)``, with :math:`M = W^\top W + cI`. Checked in
    float64 against conditioning the joint Gaussian of :math:`(z, x)` directly, which inverts the
    :math:`d \times d` covariance of :math:`x` instead of the :math:`k \times k` matrix :math:`M`.
    """

    def joint(x, W, b, c):  # the oracle: (z, x) is jointly Gaussian; condition on x
        d = W.shape[0]
        cov_x = W @ W.T + c * torch.eye(d, dtype=W.dtype)  # (d, d): Cov(x)
        gain = torch.linalg.solve(cov_x, W).T  # (k, d): Cov(z, x) Cov(x)^-1, Cov(z, x) = W^T
        return (x - b) @ gain.T, torch.eye(W.shape[1], dtype=W.dtype) - gain @ W  # (n, k), (k, k)

    def case(seed, n, d, k, c, scale=1.0):
        g = _gen(seed)
        W = scale * torch.randn(d, k, generator=g, dtype=torch.float64)
        b = torch.randn(d, generator=g, dtype=torch.float64)
        x = torch.randn(n, k, generator=g, dtype=torch.float64) @ W.T + b + math.sqrt(c) * torch.randn(n, d, generator=g, dtype=torch.float64)
        return x, W, b, c

    cases = [
        Case(case(60, 5, 6, 2, 0.5), "n = 5 points, d = 6, k = 2, c = 0.5"),
        Case(case(61, 1, 10, 3, 0.01), "one point, k = 3, little noise (c = 0.01): the posterior is narrow"),
        Case(case(62, 4, 8, 1, 50.0, scale=0.3), "k = 1, much noise (c = 50): the posterior stays near the prior"),
        Case(case(63, 3, 4, 4, 1.0), "k = d = 4: as many latent dimensions as pixels"),
    ]

    def least_squares(r, case_):  # M without c: the least-squares codes, not the posterior
        x, W, b, c = case_.args
        G = W.T @ W
        return (x - b) @ W @ torch.linalg.inv(G), c * torch.linalg.inv(G)

    def no_c(r, case_):
        return r[0], r[1] / case_.args[3]

    def uncentred(r, case_):
        x, W, b, c = case_.args
        M = W.T @ W + c * torch.eye(W.shape[1], dtype=W.dtype)
        return x @ W @ torch.linalg.inv(M), r[1]

    hints = [
        (least_squares, "M = W^T W + c I: without the c I it is the least-squares fit of the codes, which ignores the prior."),
        (no_c, "the covariance is c M^-1, not M^-1: as the noise c goes to 0, the posterior must shrink to a point."),
        (uncentred, "subtract b from x before projecting: the posterior mean is M^-1 W^T (x - b)."),
        (lambda r, case_: (r[0], r[1].diagonal()), "return the full (k, k) covariance, not its diagonal: the posterior's coordinates are correlated."),
    ]
    check("ppca_posterior (means, covariance)", lambda *a: fn(*cloned(a)), joint, cases,
          atol=1e-9, rtol=1e-7, hints=hints, strict=strict)


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
