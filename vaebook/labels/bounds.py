r"""The bounds of :mod:`vaebook.labels`: the labelled bound, the unlabelled bound (a sum over the labels), and M2's loss.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import stats
from ..guards import (
    check_float_tensor,
    check_number,
)
from ..losses import LossOutput
from .models import M2, ConditionalVAE, check_model


# --------------------------------------------------------------------------- the bounds
def _check_eps(eps, shape: tuple[int, ...], alt: tuple[int, ...] | None, dtype: torch.dtype) -> Tensor:
    check_float_tensor("eps", eps, dtype=dtype)
    if tuple(eps.shape) != shape and (alt is None or tuple(eps.shape) != alt):
        want = f"shape {shape}" + (f" or {alt}" if alt is not None else "")
        raise ValueError(f"eps: expected {want}, got shape {tuple(eps.shape)}")
    return eps


class LabelledELBO(NamedTuple):
    """The bound for images with their labels, per example ``(b,)``, and its terms: ``elbo = recon + log_py - kl``."""

    elbo: Tensor
    recon: Tensor
    kl: Tensor
    log_py: Tensor


def labelled_elbo(model: ConditionalVAE, x: Tensor, y: Tensor, eps: Tensor | None = None) -> LabelledELBO:
    r"""The ELBO of an image with its label, :math:`\mathcal L(\mathbf x, y) \le \log p_\theta(\mathbf x, y)`, per example.

    .. math:: \mathcal L(\mathbf x, y) = \mathbb E_{q_\phi(\mathbf z\mid\mathbf x, y)}\big[\log p_\theta(\mathbf x\mid\mathbf z, y)\big]
              + \log p(y) - \mathrm{KL}\big(q_\phi(\mathbf z\mid\mathbf x, y)\,\Vert\,p(\mathbf z)\big)

    One reparameterized draw of ``z`` (``eps`` of shape ``(b, z_dim)`` fixes it), the KL in closed
    form, and :math:`\log p(y) = -\log n_{\mathrm{classes}}`. ``x`` is binary (or in [0, 1]) and ``y`` int64 labels.

    Book: eq-labelled-elbo
    """
    check_model(model)
    x2 = model.check_x("x", x)
    y = model.check_y("y", y, x2.shape[0])
    mu, logvar = model.encode(x2, y)
    if eps is not None:
        eps = _check_eps(eps, tuple(mu.shape), None, mu.dtype)
    return _bound(model, x2, y, mu, logvar, eps)


def _bound(model: ConditionalVAE, x2: Tensor, y: Tensor, mu: Tensor, logvar: Tensor, eps: Tensor | None) -> LabelledELBO:
    """:func:`labelled_elbo` once the encoder has run: checked ``(b, x_dim)`` images, labels and ``q(z | x, y)``."""
    z = stats.reparameterize(mu, logvar, eps)  # (b, z_dim)
    logits = model.decode(z, y).reshape(x2.shape)  # (b, x_dim)
    recon = stats.bernoulli_log_prob(x2, logits)  # log p(x | z, y)
    kl = stats.gaussian_kl(mu, logvar)  # KL(q(z | x, y) || p(z))
    log_py = torch.full_like(recon, -math.log(model.n_classes))  # uniform p(y)
    return LabelledELBO(recon + log_py - kl, recon, kl, log_py)


class UnlabelledELBO(NamedTuple):
    """The bound for images without labels, per example ``(b,)``, and its parts.

    ``probs`` is :math:`q(y\\mid\\mathbf x)`, ``(b, n_classes)``; ``per_label`` the labelled bound under each
    label, ``(b, n_classes)``; ``entropy`` that of :math:`q(y\\mid\\mathbf x)`, ``(b,)``. Then
    ``elbo = (probs * per_label).sum(-1) + entropy``.
    """

    elbo: Tensor
    probs: Tensor
    per_label: Tensor
    entropy: Tensor


def unlabelled_elbo(model: M2, x: Tensor, eps: Tensor | None = None) -> UnlabelledELBO:
    r"""The ELBO of an image without its label, :math:`\mathcal U(\mathbf x) \le \log p_\theta(\mathbf x)`, per example.

    .. math:: \mathcal U(\mathbf x) = \sum_{y=0}^{n_{\mathrm{classes}}-1} q_\phi(y\mid\mathbf x)\,\mathcal L(\mathbf x, y)
              + \mathcal H\big[q_\phi(y\mid\mathbf x)\big]

    The sum over the ``n_classes`` labels is exact; each :math:`\mathcal L(\mathbf x, y)` is
    :func:`labelled_elbo` with one draw of ``z``. ``eps`` of shape ``(n_classes, b, z_dim)`` fixes the draws,
    one per label; of shape ``(b, z_dim)``, the same noise serves every label.

    Book: eq-unlabelled-elbo
    """
    check_model(model, M2)
    x2 = model.check_x("x", x)
    b, k = x2.shape[0], model.n_classes
    logits_y = model.classifier(x2)  # (b, n_classes)
    log_probs = F.log_softmax(logits_y, dim=-1)
    probs = log_probs.exp()
    if eps is not None:
        eps = _check_eps(eps, (k, b, model.z_dim), (b, model.z_dim), x2.dtype)
        eps = eps.expand(k, b, model.z_dim).reshape(k * b, model.z_dim)  # (n_classes*b, z_dim), label-major
    x_rep = x2.expand(k, b, model.x_dim).reshape(k * b, model.x_dim)  # (n_classes*b, x_dim): every image under every label
    y_rep = torch.arange(k, device=x2.device).repeat_interleave(b)  # (n_classes*b,): 0 ... 0, 1 ... 1, ...
    mu, logvar = model.encode_every_label(x2)  # (n_classes, b, z_dim) each
    mu, logvar = mu.reshape(k * b, model.z_dim), logvar.reshape(k * b, model.z_dim)  # label-major, as x_rep
    per_label = _bound(model, x_rep, y_rep, mu, logvar, eps).elbo.view(k, b).T  # (n_classes, b) -> (b, n_classes)
    entropy = -(probs * log_probs).sum(-1)  # H[q(y | x)]
    return UnlabelledELBO(unlabelled_bound(per_label, logits_y), probs, per_label, entropy)


def unlabelled_bound(per_label: Tensor, logits_y: Tensor) -> Tensor:
    r"""The unlabelled bound from its parts: the labelled bounds ``(b, n_classes)`` and the classifier's logits ``(b, n_classes)``.

    .. math:: \mathcal U(\mathbf x) = \sum_y q(y\mid\mathbf x)\,\mathcal L(\mathbf x, y) + \mathcal H\big[q(y\mid\mathbf x)\big],
              \qquad q(y\mid\mathbf x) = \operatorname{softmax}(\text{logits})_y

    Per example, ``(b,)``. The exercise of chapter 14 asks for this function.

    Book: eq-unlabelled-elbo
    """
    check_float_tensor("per_label", per_label, dims=2)
    check_float_tensor("logits_y", logits_y, dims=2, dtype=per_label.dtype)
    if logits_y.shape != per_label.shape:
        raise ValueError(f"per_label and logits_y: expected the same shape (b, n_classes), got {tuple(per_label.shape)} and {tuple(logits_y.shape)}")
    log_probs = F.log_softmax(logits_y, dim=-1)  # (b, n_classes): log q(y | x)
    probs = log_probs.exp()
    return (probs * per_label).sum(-1) - (probs * log_probs).sum(-1)  # E_q[L(x, y)] + H[q(y | x)]


def m2_loss(
    model: M2,
    x_labelled: Tensor,
    y: Tensor,
    x_unlabelled: Tensor,
    alpha: float,
    *,
    eps_labelled: Tensor | None = None,
    eps_unlabelled: Tensor | None = None,
) -> LossOutput:
    r"""M2's loss on a batch of labelled and one of unlabelled images: the negative bounds plus ``alpha`` times the classification loss.

    .. math:: J_\alpha = -\frac1{n_\ell}\sum_{i\,\text{labelled}}\mathcal L(\mathbf x_i, y_i)
              - \frac1{n_u}\sum_{j\,\text{unlabelled}}\mathcal U(\mathbf x_j)
              - \frac{\alpha}{n_\ell}\sum_{i\,\text{labelled}}\log q_\phi(y_i\mid\mathbf x_i)

    The two bounds are averaged over their own batches, so each kind of image counts as much as
    the other per step whatever the batch sizes. The classifier gets no gradient from
    :math:`\mathcal L(\mathbf x, y)`; the last term is what trains it on the labels. The metrics
    are the three terms and the classifier's accuracy on the labelled batch.

    Book: eq-m2-loss
    """
    check_model(model, M2)
    alpha = check_number("alpha", alpha, min=0.0)
    xl = model.check_x("x_labelled", x_labelled)
    y = model.check_y("y", y, xl.shape[0])
    xu = model.check_x("x_unlabelled", x_unlabelled)
    bound_l = labelled_elbo(model, xl, y, eps_labelled).elbo  # (n_l,)
    bound_u = unlabelled_elbo(model, xu, eps_unlabelled).elbo  # (n_u,)
    logits_y = model.classifier(xl)
    ce = F.cross_entropy(logits_y, y)  # -mean log q(y_i | x_i)
    loss = -bound_l.mean() - bound_u.mean() + alpha * ce
    acc = (logits_y.argmax(-1) == y).float().mean()
    metrics = {"labelled_elbo": bound_l.mean().detach(), "unlabelled_elbo": bound_u.mean().detach(),
               "cross_entropy": ce.detach(), "accuracy": acc.detach()}
    return LossOutput(loss, metrics)
