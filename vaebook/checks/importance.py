"""The checks of the exercises on importance weights: the importance-weighted bound and its gradients (chapter 10).

The DReG surrogate is checked by its gradient, against the library's estimator on the same noise. Two others check random functions, so they compare statistics rather than values: the frequencies
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
from .. import stats as _stats
from ..losses import LossOutput
from ..models import VAE
from ..train import fit
from .core import Case, CheckFailed, check
from .core import gen as _gen

__all__ = ["effective_sample_size", "importance_resample", "dreg_surrogate", "iwae_loss"]

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


# --------------------------------------------------------------------------- core: DReG by hand
def _encoder_gradient(model: VAE, objective: Tensor) -> Tensor:
    """The gradient of ``objective.sum()`` with respect to every weight of the encoder, flattened into one vector."""
    params = list(model.encoder.parameters())
    grads = torch.autograd.grad(objective.sum(), params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads, strict=True)])


def _variant(model: VAE, x: Tensor, eps: Tensor, *, power: int = 2, hold_q: bool = True, hold_w: bool = True) -> Tensor:
    """Surrogates ``sum_i w~_i^power log w_i`` with q's parameters held fixed or not, the weights constant or not (hints)."""
    mu, logvar = model.encode(x)  # (b, z) each
    z = mu + (0.5 * logvar).exp() * eps  # (k, b, z)
    q_mu, q_logvar = (mu.detach(), logvar.detach()) if hold_q else (mu, logvar)
    log_w = (_stats.bernoulli_log_prob(x, model.decode(z)) + _stats.standard_normal_log_prob(z)
             - _stats.diag_gaussian_log_prob(z, q_mu, q_logvar))  # (k, b)
    w = torch.softmax(log_w.detach() if hold_w else log_w, dim=0)  # (k, b)
    return (w.pow(power) * log_w).sum(0)  # (b,)


def dreg_surrogate(fn: Callable[[VAE, Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    r"""Exercise: ``fn(model, x, eps)`` returns a surrogate ``(b,)`` whose gradient for the encoder is DReG's.

    ``eps`` ``(k, b, z_dim)`` is the noise of the ``k`` codes of each example. The gradient of
    ``fn(model, x, eps).sum()`` with respect to the encoder's weights must equal the doubly
    reparametrized estimator (Book: eq-dreg), :math:`\sum_i \tilde w_i^{\,2}\,\frac{\partial\log w_i}{\partial z_i}\frac{\partial z_i}{\partial\phi}`,
    that is the encoder gradient of ``vb.iwae_objective(model, x, k, estimator="dreg", eps=eps)``,
    compared in float64 on small VAEs, for ``k`` = 1, 4 and 16; the surrogate's value is not checked.
    """
    torch.manual_seed(35)
    models = {z_dim: VAE(z_dim=z_dim, hidden=(16,)).double() for z_dim in (2, 3)}
    x = _prototype_digits(4, seed=36).double()  # (4, 1, 28, 28)

    def noise(k, b, z_dim, seed):
        return torch.randn(k, b, z_dim, generator=_gen(seed), dtype=torch.float64)

    cases = [
        Case((2, 4, noise(4, 4, 2, 37)), "k = 4 codes for each of 4 images, 2-D latent"),
        Case((2, 1, noise(16, 1, 2, 38)), "k = 16, one image"),
        Case((3, 4, noise(1, 4, 3, 39)), "k = 1 (sticking the landing), 3-D latent"),
    ]

    def student(z_dim, b, eps):
        model = models[z_dim]
        out = fn(model, x[:b].clone(), eps.clone())
        if not isinstance(out, Tensor) or tuple(out.shape) != (b,):
            got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
            raise CheckFailed(f"dreg_surrogate: expected one surrogate value per example, shape ({b},), got {got}")
        if not out.requires_grad:
            raise CheckFailed("dreg_surrogate: no gradient reaches the encoder; build z = mu + sigma * eps from the encoder's "
                              "outputs, so that log w_i depends on the encoder's weights through z_i")
        return _encoder_gradient(model, out)

    def reference(z_dim, b, eps):
        model = models[z_dim]
        return _encoder_gradient(model, _bounds.iwae_objective(model, x[:b], eps.shape[0], estimator="dreg", eps=eps))

    def of(**kw):
        return lambda r, case: _encoder_gradient(models[case.args[0]], _variant(models[case.args[0]], x[:case.args[1]], case.args[2], **kw))

    hints = [
        (of(hold_q=False), "hold q's parameters fixed inside log q (mu.detach(), logvar.detach()): the path through "
                           "q's parameters is the score term that DReG removes; z_i keeps its gradient."),
        (of(power=1), "square the normalised weights: the surrogate is sum_i w~_i^2 log w_i (with w~_i it drops the score term "
                      "without replacing it, which is biased for k > 1)."),
        (of(hold_w=False), "the weights are constants of the surrogate: compute w~_i from log_w.detach(), or their own "
                           "gradient adds to the estimator."),
        (lambda r, case: _encoder_gradient(models[case.args[0]], _bounds.iwae_objective(models[case.args[0]], x[:case.args[1]],
                                                                                       case.args[2].shape[0], eps=case.args[2])),
         "that is the plain IWAE gradient, the gradient of log (1/k) sum_i w_i itself; DReG's surrogate is sum_i w~_i^2 log w_i "
         "with q's parameters held fixed."),
    ]
    check("dreg_surrogate (the encoder's gradient)", student, reference, cases, atol=1e-9, rtol=1e-7, hints=hints, strict=strict)


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
       same VAE trained with ``vb.IWAELoss(K=5)``.
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
        for who, loss in (("your", lambda mdl, xb, tb: fn(mdl, xb, tb, k=5)), ("vb.IWAELoss(K=5)", _bounds.IWAELoss(K=5))):
            torch.manual_seed(32)
            mdl = VAE(z_dim=4, hidden=(32,))
            try:
                fit(mdl, data, steps=STEPS, batch_size=32, lr=3e-3, loss=loss, progress=False, device="cpu", seed=33)
            except FloatingPointError as err:
                raise CheckFailed(f"iwae_loss: training a small VAE with {who} loss diverged ({err}). The values are right, so "
                                  "look at the gradient: z = mu + sigma * eps must carry the encoder's gradient (no .detach())") from None
            with torch.no_grad():
                bounds[who] = _bounds.iwae_bound(_est.log_weights(mdl, held_out, 20, generator=_gen(34))).mean().item()
        if bounds["your"] < bounds["vb.IWAELoss(K=5)"] - 3.0:
            raise CheckFailed(
                f"iwae_loss: a VAE trained with your loss for {STEPS} steps reaches a held-out L_20 of {bounds['your']:.1f} nats, "
                f"the same VAE trained with vb.IWAELoss(K=5) {bounds['vb.IWAELoss(K=5)']:.1f}: more than 3 nats apart. "
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
