"""The checks of the coding exercises of chapter 10 (the importance-weighted bound), one function per exercise.

Two of them check random functions, so they compare statistics rather than values: the frequencies
with which a resampler picks each candidate, and the mean of a loss over many draws of the noise.
Any valid random draw passes; a systematic mistake (weights ignored, squared, a missing log k, the
mean of the log-weights in place of the log of the mean weight) is far outside the tolerance.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import bounds as _bounds
from .. import estimators as _est
from ..losses import LossOutput
from ..models import VAE
from ..train import fit
from .core import Case, CheckFailed, check
from .core import gen as _gen

__all__ = ["effective_sample_size", "importance_resample", "iwae_loss"]

STEPS = 100  # the project check's training run


# --------------------------------------------------------------------------- warm-up
def effective_sample_size(fn: Callable[[Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(log_w)`` returns the effective sample size ``(sum w)^2 / sum w^2`` of each example, ``(k, b) -> (b,)``."""

    def ref(log_w):
        return 1.0 / torch.softmax(log_w, dim=0).pow(2).sum(0)

    g = _gen(20)
    cases = [
        Case((torch.randn(64, 3, generator=g) * 2 - 100,),  "k=64 samples, 3 examples, log-weights near -100"),
        Case((torch.zeros(10, 2),), "equal weights: the ESS is k"),
        Case((torch.tensor([[-1000.0], [-1001.0], [-1050.0]]),), "log-weights near -1000 (the weights underflow: stay in log space)"),
        Case((torch.full((1, 4), -7.0),), "k=1: the ESS is 1"),
    ]
    hints = [
        (lambda r, case: r / case.args[0].shape[0], "return the number of effective samples, between 1 and k, not its fraction of k."),
        (lambda r, case: 1.0 / r, "the ESS is 1 / sum of the squared normalised weights, not the sum itself."),
    ]
    check("effective_sample_size", fn, ref, cases, atol=1e-3, rtol=1e-4, hints=hints, strict=strict)


# --------------------------------------------------------------------------- core
def _resample_stats(fn, z: Tensor, log_w: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """What a resampler did: the share of outputs that are one of their example's candidates, and how often each candidate was picked."""
    with torch.random.fork_rng():  # a resampler may draw from the global generator: seed it, and leave the caller's alone
        torch.manual_seed(seed)
        out = fn(z, log_w, _gen(seed))
    k, b, d = z.shape
    if not isinstance(out, Tensor) or tuple(out.shape) != (b, d):
        got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
        raise CheckFailed(f"importance_resample: expected one code per example, shape (b, z_dim) = {(b, d)}, got {got}")
    match = (out.unsqueeze(0) == z).all(-1)  # (k, b): which candidate each output is
    member = match.any(0).float().mean()  # every output must be one of its own example's k candidates
    picked = match.float().argmax(0)  # (b,)
    freq = torch.bincount(picked, minlength=k).float() / b  # (k,)
    return member.reshape(1), freq


def importance_resample(fn: Callable[[Tensor, Tensor, torch.Generator], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(z, log_w, generator)`` picks one of the ``k`` codes of each example with probability ``w_i / sum_j w_j``.

    ``z``: ``(k, b, z_dim)``, ``log_w``: ``(k, b)``; returns ``(b, z_dim)``. Checked by statistics over
    many examples with the same weights, so any valid random draw passes.
    """

    def candidates(k: int, b: int) -> Tensor:
        i = torch.arange(k, dtype=torch.float32).view(k, 1, 1).expand(k, b, 1)
        j = torch.arange(b, dtype=torch.float32).view(1, b, 1).expand(k, b, 1)
        return torch.cat([i, j], dim=-1)  # (k, b, 2): candidate i of example j is the code (i, j)

    def case(probs: list[float], b: int, shift: float) -> tuple[Tensor, Tensor]:
        p = torch.tensor(probs)
        return candidates(len(probs), b), (p.log() + shift).unsqueeze(1).expand(-1, b).contiguous()

    cases = [
        Case((*case([0.1, 0.2, 0.3, 0.4], 4000, 0.0), 21), "4 candidates with weights 0.1 to 0.4, 4,000 examples"),
        Case((*case([0.25, 0.75], 4000, -1000.0), 22), "log-weights near -1000 (normalise them in log space)"),
        Case((*case([1.0], 5, 0.0), 23), "k=1: the only candidate"),
    ]

    def ref(z, log_w, seed):
        return torch.ones(1), torch.softmax(log_w[:, 0], dim=0)

    def squared(r, case_):
        p = r[1].pow(2)
        return r[0], p / p.sum()

    hints = [
        (lambda r, case_: (r[0], torch.full_like(r[1], 1.0 / len(r[1]))), "pick candidate i with probability w_i / sum_j w_j; you picked uniformly."),
        (squared, "pick with probability proportional to w_i, not to w_i squared."),
        (lambda r, case_: (r[0], torch.nn.functional.one_hot(r[1].argmax(), len(r[1])).float()), "draw at random (torch.multinomial); always taking the largest weight is not resampling."),
    ]
    check(
        "importance_resample (share of outputs that are their example's candidates, how often each candidate was picked)",
        lambda z, log_w, seed: _resample_stats(fn, z, log_w, seed),
        ref,
        cases,
        atol=0.03,
        rtol=0,
        hints=hints,
        strict=strict,
    )


# --------------------------------------------------------------------------- project
def _prototype_digits(n: int, seed: int) -> Tensor:
    """``n`` binary 28x28 images drawn around 8 random blob prototypes: data a small VAE learns in a few steps."""
    g = _gen(seed)
    proto = torch.nn.functional.avg_pool2d(torch.rand(8, 1, 28, 28, generator=_gen(30)), 5, stride=1, padding=2)  # (8, 1, 28, 28) smooth
    proto = (proto > 0.5).float() * 0.9 + 0.05  # pixel probabilities
    which = torch.randint(0, 8, (n,), generator=g)
    return torch.bernoulli(proto[which], generator=g)  # (n, 1, 28, 28)


def iwae_loss(fn: Callable[..., LossOutput], *, strict: bool = False) -> None:
    """Exercise (project): ``fn(model, x, target, k=5)`` returns ``vb.LossOutput(-L_k.mean(), metrics)``; then train with it.

    1. The loss, averaged over many draws of the noise, must equal the negative bound of the library
       for ``k = 1`` and ``k = 10``, within its Monte Carlo error (any valid way of drawing the noise passes).
    2. Gradients must reach both the encoder and the decoder.
    3. A small VAE trained with it for 100 steps must reach a held-out bound within 3 nats of the
       same VAE trained with ``vb.IWAELoss(k=5)``.
    """
    with torch.random.fork_rng():  # the check seeds torch's generator for itself; the chapter's stays as it was
        _check_iwae_loss(fn, strict)


def _check_iwae_loss(fn: Callable[..., LossOutput], strict: bool) -> None:
    torch.manual_seed(24)
    model = VAE(z_dim=2, hidden=(16,))
    x = _prototype_digits(64, seed=25)
    draws = 100
    reference: dict[int, tuple[float, float]] = {}
    with torch.no_grad():
        for k in (1, 10):
            lw = torch.cat([_est.log_weights(model, x, k, generator=_gen(26 + i)) for i in range(100)], dim=1)  # (k, 100 b)
            reference[k] = (-_bounds.iwae_bound(lw).mean().item(), -lw.mean().item())  # (-L_k, -ELBO)

    def mean_loss(fn_, k):
        torch.manual_seed(27)
        values = []
        with torch.no_grad():
            for _ in range(draws):
                out = fn_(model, x, x, k=k)
                if not isinstance(out, LossOutput):
                    raise CheckFailed(f"iwae_loss: expected a vb.LossOutput(loss, metrics), got {type(out).__name__}")
                if not isinstance(out.loss, Tensor) or out.loss.dim() != 0:
                    raise CheckFailed("iwae_loss: expected LossOutput.loss to be a scalar tensor (the mean over the batch)")
                values.append(out.loss.item())
        return sum(values) / draws

    cases = [Case((1,), "k=1: the negative single-sample ELBO"), Case((10,), "k=10")]
    hints = [
        (lambda r, case: r - math.log(case.args[0]), "average the k weights: subtract log k from their logsumexp."),
        (lambda r, case: reference[case.args[0]][1], "take the log of the mean weight (logsumexp minus log k), not the mean of the log-weights: that is the ELBO."),
        (lambda r, case: -r, "the loss to minimise is the negative bound."),
        (lambda r, case: reference[1][0], "use k samples per example: the result does not change with k."),
    ]

    def trains():
        torch.manual_seed(28)
        m = VAE(z_dim=2, hidden=(16,))
        m.zero_grad()
        fn(m, x, x, k=5).loss.backward()
        for part, net in (("encoder", m.encoder), ("decoder", m.decoder)):
            if not any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters()):
                raise CheckFailed(f"iwae_loss: no gradient reaches the {part}; build z = mu + sigma * eps from the encoder's "
                                  "outputs and keep every step differentiable (no .detach(), no torch.no_grad())")
        data, held_out = _prototype_digits(2048, seed=29), _prototype_digits(128, seed=31)
        bounds = {}
        for who, loss in (("your", lambda mdl, xb, tb: fn(mdl, xb, tb, k=5)), ("vb.IWAELoss(k=5)", _bounds.IWAELoss(k=5))):
            torch.manual_seed(32)
            mdl = VAE(z_dim=4, hidden=(32,))
            try:
                fit(mdl, data, steps=STEPS, batch_size=32, lr=3e-3, loss=loss, progress=False, device="cpu", seed=33)
            except FloatingPointError as err:
                raise CheckFailed(f"iwae_loss: training a small VAE with {who} loss diverged ({err}). The values are right, so "
                                  "look at the gradient: z = mu + sigma * eps must carry the encoder's gradient (no .detach())") from None
            with torch.no_grad():
                bounds[who] = _bounds.iwae_bound(_est.log_weights(mdl, held_out, 20, generator=_gen(34))).mean().item()
        if bounds["your"] < bounds["vb.IWAELoss(k=5)"] - 3.0:
            raise CheckFailed(
                f"iwae_loss: a VAE trained with your loss for {STEPS} steps reaches a held-out L_20 of {bounds['your']:.1f} nats, "
                f"the same VAE trained with vb.IWAELoss(k=5) {bounds['vb.IWAELoss(k=5)']:.1f}: more than 3 nats apart. "
                "The values are right, so look at the gradient: build z = mu + sigma * eps from the encoder's outputs "
                "(no .detach()), with fresh noise at every call"
            )

    check(
        f"iwae_loss (the mean of the loss over {draws} draws of the noise)",
        lambda k: mean_loss(fn, k),
        lambda k: reference[k][0],
        cases,
        atol=0.6,
        rtol=0,
        hints=hints,
        extra=trains,
        strict=strict,
    )
