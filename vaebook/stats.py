"""Pure tensor math: the Gaussian reparameterization, KL, log-likelihoods, log-mean-exp.

Nothing here knows about models or data sets. Every function takes tensors and returns tensors, and
each one is checked against ``torch.distributions`` in ``tests/test_stats.py``.

Shape convention: the first dimension of ``x`` is the batch ``b``; every later dimension is an event
dimension that the log-densities sum over. Parameters may carry extra leading sample dimensions,
e.g. ``(k, b, d)`` for ``k`` importance samples, and the result keeps them: ``(k, b)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import draws
from .guards import (
    check_choice,
    check_dim,
    check_finite,
    check_float_tensor,
    check_int,
    check_positive,
    check_range,
    check_same_shape,
    value_checks_enabled,
)

LOG_2PI = math.log(2.0 * math.pi)

__all__ = [
    "LOG_2PI",
    "reparameterize",
    "gaussian_kl",
    "standard_normal_log_prob",
    "diag_gaussian_log_prob",
    "bernoulli_log_prob",
    "continuous_bernoulli_log_prob",
    "gaussian_log_prob",
    "log_mean_exp",
    "interpolate",
]


# --------------------------------------------------------------------------- input checks
def _check_float(name: str, t, dtype: torch.dtype | None = None) -> Tensor:
    check_float_tensor(name, t, dtype=dtype)
    if value_checks_enabled():
        check_finite(name, t)
    return t


def _check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    check_same_shape(name_a, a, name_b, b)


def _event_sum(t: Tensor, n_event: int) -> Tensor:
    """Sum over the trailing ``n_event`` dimensions (the data dimensions of one example)."""
    if n_event == 0:
        return t
    return t.sum(dim=tuple(range(-n_event, 0)))


def _check_broadcast_to_x(x: Tensor, name: str, param: Tensor) -> None:
    """``param`` must end with ``x``'s shape (it may add leading sample dimensions)."""
    if param.dim() < x.dim() or tuple(param.shape[param.dim() - x.dim():]) != tuple(x.shape):
        raise ValueError(
            f"{name}: expected x's shape {tuple(x.shape)}, optionally with leading sample "
            f"dimensions such as (k, *x.shape); got shape {tuple(param.shape)}"
        )


# --------------------------------------------------------------------------- Gaussian posterior
def reparameterize(
    mu: Tensor, logvar: Tensor, eps: Tensor | None = None, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Draw ``z ~ N(mu, diag(exp(logvar)))`` as a differentiable function of ``mu`` and ``logvar``.

    .. math:: \epsilon \sim \mathcal N(0, I), \qquad z = \mu + \sigma \odot \epsilon,
              \qquad \sigma = \exp(\tfrac12 \log\sigma^2)

    Pass ``eps`` to fix the noise (tests, and the reparametrization chapter do); it may carry leading
    sample dimensions, e.g. ``(k, b, z_dim)``, and ``z`` then has that shape. Without it the noise
    is drawn where ``generator`` lives (the CPU's global generator when none is given) and moved to
    ``mu``'s device, so a seeded run draws the same noise on a GPU as on the CPU (:mod:`vaebook.draws`).

    Book: eq-reparam
    """
    _check_float("mu", mu)
    _check_float("logvar", logvar, dtype=mu.dtype)
    _check_same_shape("mu", mu, "logvar", logvar)
    if eps is None:
        eps = draws.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    else:
        _check_float("eps", eps, dtype=mu.dtype)
        _check_broadcast_to_x(mu, "eps", eps)
    std = torch.exp(0.5 * logvar)  # log sigma^2 -> sigma
    return mu + std * eps  # (..., b, z_dim)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""KL divergence from ``N(mu, diag(exp(logvar)))`` to the prior ``N(0, I)``, per example.

    .. math:: \mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag}\sigma^2)\,\|\,\mathcal N(0, I)\big)
              = \tfrac12 \sum_j \left(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\right)

    Closed form from Kingma & Welling (2013), appendix B. ``mu`` and ``logvar`` have shape
    ``(b, z_dim)``; the result has shape ``(b,)`` and is exactly 0 at the prior.

    Book: eq-gaussian-kl
    """
    _check_float("mu", mu)
    _check_float("logvar", logvar, dtype=mu.dtype)
    _check_same_shape("mu", mu, "logvar", logvar)
    if mu.dim() < 2:
        raise ValueError(f"mu: expected shape (b, z_dim), got shape {tuple(mu.shape)}")
    # sigma^2 - 1 - log sigma^2 >= 0, computed as expm1(logvar) - logvar: exact near logvar = 0,
    # where exp(logvar) - 1 - logvar loses every digit (and can round below zero)
    spread = (torch.expm1(logvar) - logvar).clamp_min(0.0)
    return 0.5 * (mu.pow(2) + spread).sum(dim=-1)  # (b,)


# --------------------------------------------------------------------------- log-densities
def standard_normal_log_prob(z: Tensor) -> Tensor:
    r"""``log N(z; 0, I)`` summed over the last dimension: the prior term ``log p(z)``.

    .. math:: \log p(z) = -\tfrac12 \sum_j \left(z_j^2 + \log 2\pi\right)

    Book: eq-prior
    """
    _check_float("z", z)
    return -0.5 * (z.pow(2) + LOG_2PI).sum(dim=-1)


def diag_gaussian_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    r"""``log N(z; mu, diag(exp(logvar)))`` summed over the last dimension: ``log q(z|x)``.

    .. math:: \log q(z\mid x) = -\tfrac12 \sum_j \left(\frac{(z_j-\mu_j)^2}{\sigma_j^2}
              + \log\sigma_j^2 + \log 2\pi\right)

    ``z`` may carry leading sample dimensions: ``(k, b, z_dim)`` against ``(b, z_dim)`` parameters.

    Book: eq-variational-family
    """
    _check_float("z", z)
    _check_float("mu", mu, dtype=z.dtype)
    _check_float("logvar", logvar, dtype=z.dtype)
    _check_same_shape("mu", mu, "logvar", logvar)
    _check_broadcast_to_x(mu, "z", z)
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(dim=-1)


def bernoulli_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    r"""``log p(x | z)`` for the Bernoulli decoder, from logits, summed over the pixels of each example.

    .. math:: \log p(x\mid z) = \sum_j x_j \log \sigma(\ell_j) + (1-x_j)\log\big(1-\sigma(\ell_j)\big),
              \qquad \ell = d_\theta(z)

    Computed from the logits ``ell`` (never from probabilities) so that it stays finite when the
    sigmoid saturates. ``x`` must lie in [0, 1]: binary data, or grey levels read as probabilities
    (then the value is a cross-entropy, not a log-likelihood of the grey image). ``logits`` has
    ``x``'s shape, optionally with leading sample dimensions; the result drops the event dimensions.

    Book: eq-bernoulli-decoder
    """
    check_float_tensor("x", x)
    _check_float("logits", logits, dtype=x.dtype)
    _check_broadcast_to_x(x, "logits", logits)
    if value_checks_enabled():
        check_range("x (Bernoulli targets)", x, 0.0, 1.0)
    # x*log sig(l) + (1-x)*log(1-sig(l)) = x*l - softplus(l), the stable form.
    per_pixel = x * logits - torch.nn.functional.softplus(logits)
    return _event_sum(per_pixel, x.dim() - 1)  # (..., b)


def continuous_bernoulli_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    r"""``log p(x | z)`` for the continuous Bernoulli decoder (Loaiza-Ganem & Cunningham, 2019), from logits.

    .. math::

        \begin{aligned}
        \log p(x\mid z) &= \sum_j x_j \log\lambda_j + (1-x_j)\log(1-\lambda_j) + \log C(\lambda_j), \\
        C(\lambda) &= \frac{2\operatorname{artanh}(1-2\lambda)}{1-2\lambda},\qquad \lambda = \sigma(\ell)
        \end{aligned}

    A density on grey levels :math:`x \in [0, 1]`: the Bernoulli cross-entropy of
    :func:`bernoulli_log_prob` plus the normalising term :math:`\log C`, which the Bernoulli decoder
    lacks when it is fed grey levels. In logits, :math:`C = \ell / \tanh(\ell/2)` (2 at
    :math:`\ell = 0`), computed here without cancellation near 0.

    Book: eq-continuous-bernoulli
    """
    check_float_tensor("x", x)
    _check_float("logits", logits, dtype=x.dtype)
    _check_broadcast_to_x(x, "logits", logits)
    if value_checks_enabled():
        check_range("x (grey levels)", x, 0.0, 1.0)
    small = logits.abs() < 1e-2
    safe = torch.where(small, torch.ones_like(logits), logits)  # keeps the unused branch finite (and its gradient)
    log_c_big = torch.log(safe.abs()) - torch.log(torch.tanh(safe.abs() / 2))
    log_c_small = math.log(2.0) + torch.log1p(logits.pow(2) / 12)  # 2 + l^2/6 + O(l^4)
    log_c = torch.where(small, log_c_small, log_c_big)
    per_pixel = x * logits - torch.nn.functional.softplus(logits) + log_c
    return _event_sum(per_pixel, x.dim() - 1)  # (..., b)


def gaussian_log_prob(x: Tensor, mean: Tensor, c: float | Tensor = 1.0) -> Tensor:
    r"""``log N(x; mean, c I)`` summed over the dimensions of each example: the Gaussian decoder.

    .. math:: \log p(x\mid z) = -\frac{1}{2c}\,\lVert x - d_\theta(z)\rVert^2 - \frac{D}{2}\log(2\pi c)

    ``c`` is the observation variance, a hyperparameter (the lecture's ``cI``); ``D`` is the number
    of dimensions of one example.

    Book: eq-gaussian-decoder
    """
    _check_float("x", x)
    _check_float("mean", mean, dtype=x.dtype)
    _check_broadcast_to_x(x, "mean", mean)
    if isinstance(c, Tensor):
        if c.numel() != 1:
            raise ValueError(f"c (the variance): expected a scalar, got a tensor of shape {tuple(c.shape)}")
        if not bool(torch.isfinite(c) & (c > 0)):
            raise ValueError(f"c (the variance): expected a finite number > 0, got {c.item()!r}")
        c = c.to(dtype=x.dtype, device=x.device).reshape(())  # a learned c keeps its gradient
    else:
        c = torch.tensor(check_positive("c (the variance)", c), dtype=x.dtype, device=x.device)
    d = x[0].numel() if x.dim() > 1 else 1
    sq = _event_sum((x - mean).pow(2), x.dim() - 1)  # (..., b)
    return -0.5 * sq / c - 0.5 * d * (LOG_2PI + torch.log(c))


def log_mean_exp(a: Tensor, dim: int = 0) -> Tensor:
    r"""``log (1/k) sum_i exp(a_i)`` along ``dim``, without overflow.

    .. math:: \log \frac1k \sum_{i=1}^k e^{a_i} = \operatorname{logsumexp}(a) - \log k

    This is how an importance-sampled log-likelihood is averaged: the weights ``exp(a_i)`` of a
    784-pixel image are far below the smallest float, their logarithms are not.

    Book: eq-importance-sampling
    """
    check_float_tensor("a", a)
    dim = check_dim("dim", dim, a.dim())
    k = a.shape[dim]
    if k == 0:
        raise ValueError(f"a: expected at least one value along dim {dim} to average, got shape {tuple(a.shape)}")
    return torch.logsumexp(a, dim=dim) - math.log(k)


def interpolate(z0: Tensor, z1: Tensor, n: int, method: str = "linear") -> Tensor:
    r"""``n`` latent points on a path from ``z0`` to ``z1`` (both ``(z_dim,)``), ends included: ``(n, z_dim)``.

    - ``"linear"``: :math:`z_t = (1-t)\,z_0 + t\,z_1`.
    - ``"slerp"`` (spherical): :math:`z_t = \frac{\sin((1-t)\Omega)}{\sin\Omega} z_0 + \frac{\sin(t\Omega)}{\sin\Omega} z_1`,
      with :math:`\Omega` the angle between ``z0`` and ``z1``. Under a Gaussian prior in many dimensions,
      typical codes lie near a sphere of radius :math:`\sqrt{k}`; the midpoint of a straight line is
      shorter than both ends, slerp's is not (White, 2016).

    Book: eq-interpolation
    """
    check_float_tensor("z0", z0)
    check_finite("z0", z0)
    check_float_tensor("z1", z1, dtype=z0.dtype)
    check_finite("z1", z1)
    check_same_shape("z0", z0, "z1", z1)
    if z0.dim() != 1:
        raise ValueError(f"z0 and z1: expected single codes of shape (z_dim,), got shape {tuple(z0.shape)}")
    n = check_int("n (points on the path, both ends included)", n, min=2)
    check_choice("method", method, ("linear", "slerp"))
    t = torch.linspace(0.0, 1.0, n, dtype=z0.dtype, device=z0.device).unsqueeze(1)  # (n, 1)
    if method == "linear":
        return (1 - t) * z0 + t * z1  # (n, z_dim)
    if z0.norm() == 0 or z1.norm() == 0:
        raise ValueError("z0 and z1: slerp needs two non-zero codes (the angle to a zero code is undefined)")
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # (nearly) parallel: slerp is linear
        return (1 - t) * z0 + t * z1
    if math.pi - omega.abs() < 1e-4:
        raise ValueError("z0 and z1: slerp between opposite codes is undefined (every great circle joins them); "
                         "perturb one of them, or interpolate linearly")
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)  # (n, z_dim)
