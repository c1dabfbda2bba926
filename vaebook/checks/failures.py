"""The checks of the coding exercises of chapter 11 (where VAEs fail), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import diagnostics as _diag
from .. import losses as _losses
from .. import stats as _stats
from .core import Case, check
from .core import gen as _gen

__all__ = ["free_bits_kl", "mutual_information"]


def free_bits_kl(fn: Callable[[Tensor, float], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(kl, lam)`` floors each coordinate's batch-average KL at ``lam`` and sums, a scalar.

    ``kl`` has shape ``(b, z_dim)``. Any reduction order that gives the same number passes; the
    floor must apply to the batch average of each coordinate, not to each example's term.
    """
    g = _gen(40)
    kl = torch.rand(8, 5, generator=g) * torch.tensor([2.0, 0.05, 0.6, 0.0, 1.2])  # some coordinates near 0
    cases = [
        Case((kl, 0.25), "8 examples, 5 coordinates, lam = 0.25"),
        Case((kl, 0.0), "lam = 0: the batch-average KL"),
        Case((torch.tensor([[0.0, 2.0], [1.0, 0.0]]), 0.6), "each example below the floor in one coordinate, the averages not"),
        Case((torch.zeros(1, 3), 0.5), "batch of 1 at the prior: 3 coordinates x 0.5 nats"),
    ]
    hints = [
        (lambda r, case: case.args[0].clamp_min(case.args[1]).sum(1).mean(),
         "floor the batch average of each coordinate, max(lam, mean_i KL_ij), not each example's KL_ij: "
         "an example may spend less than lam on a coordinate as long as the batch's average is above it."),
        (lambda r, case: case.args[0].clamp_min(case.args[1]).mean(0).sum(),
         "floor the batch average of each coordinate, max(lam, mean_i KL_ij), not each example's KL_ij: "
         "an example may spend less than lam on a coordinate as long as the batch's average is above it."),
        (lambda r, case: case.args[0].sum(1).mean().clamp_min(case.args[1]),
         "free bits floor each coordinate separately (lam nats per coordinate), not the summed KL."),
        (lambda r, case: case.args[0].mean(0).clamp_min(case.args[1]),
         "return one number, the sum over the coordinates of the floored averages."),
    ]
    check("free_bits_kl", fn, _losses.free_bits_kl, cases, hints=hints, strict=strict)


def mutual_information(fn: Callable[[Tensor, Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(mu, logvar, eps)`` estimates I_q(x; z) from one code per example, ``z_n = mu_n + sigma_n * eps_n``.

    The codes are fixed by ``eps``, so the answer is one number; it must be the average of
    ``log q(z_n | x_n) - log q(z_n)`` with the aggregate posterior ``q(z) = (1/N) sum_m q(z | x_m)``
    over all N examples, the n-th included.
    """

    def ref(mu, logvar, eps):
        return _diag.mutual_information(mu, logvar, eps=eps)

    g = _gen(41)
    n = 40
    mu, logvar = 1.5 * torch.randn(n, 2, generator=g), torch.empty(n, 2).uniform_(-3.0, 0.0, generator=g)
    far = 50.0 * torch.arange(6.0).unsqueeze(1).expand(6, 3).contiguous()  # 50 standard deviations apart
    same_mu, same_lv = torch.tensor([[0.5, -1.0, 2.0]]).expand(10, 3).contiguous(), torch.full((10, 3), -0.5)
    cases = [
        Case((mu, logvar, torch.randn(n, 2, generator=g)), "40 overlapping posteriors in 2-D"),
        Case((same_mu, same_lv, torch.randn(10, 3, generator=g)), "every q(z|x) the same: I = 0"),
        Case((far, torch.zeros(6, 3), torch.randn(6, 3, generator=g)), "6 posteriors that do not overlap: I = log 6"),
        Case((mu[:1], logvar[:1], torch.randn(1, 2, generator=g)), "a single example: I = 0"),
    ]

    def mean_of_logs(case):  # averaging log-densities instead of densities
        mu_, lv_, eps_ = case.args
        z = mu_ + torch.exp(0.5 * lv_) * eps_
        all_pairs = _stats.diag_gaussian_log_prob(z.unsqueeze(1).expand(-1, *mu_.shape), mu_, lv_)  # (N, N)
        return (_stats.diag_gaussian_log_prob(z, mu_, lv_) - all_pairs.mean(1)).mean()

    def leave_one_out(case):  # the aggregate without the n-th posterior
        mu_, lv_, eps_ = case.args
        z = mu_ + torch.exp(0.5 * lv_) * eps_
        all_pairs = _stats.diag_gaussian_log_prob(z.unsqueeze(1).expand(-1, *mu_.shape), mu_, lv_)  # (N, N)
        others = all_pairs.masked_fill(torch.eye(len(z), dtype=torch.bool), -math.inf)
        return (_stats.diag_gaussian_log_prob(z, mu_, lv_) - (torch.logsumexp(others, 1) - math.log(len(z) - 1))).mean()

    hints = [
        (lambda r, case: r - math.log(len(case.args[0])),
         "q(z) is the *average* of the N densities, not their sum: log q(z) = logsumexp_m log q(z | x_m) - log N."),
        (lambda r, case: r + math.log(len(case.args[0])),
         "the sign of log N: log q(z) = logsumexp_m log q(z | x_m) - log N, and I = mean(log q(z_n | x_n) - log q(z_n))."),
        (lambda r, case: -r, "the sign is flipped: I = mean over n of log q(z_n | x_n) - log q(z_n), which is >= 0."),
        (lambda r, case: mean_of_logs(case),
         "average the densities, not their logarithms: log q(z) = log((1/N) sum_m q(z | x_m)), with torch.logsumexp."),
        (lambda r, case: leave_one_out(case),
         "the aggregate posterior includes the n-th example's own posterior: sum over all N examples, m = n included."),
    ]
    check("mutual_information", fn, ref, cases, hints=hints, atol=1e-4, rtol=1e-4, strict=strict)
