"""Training losses: what :func:`vaebook.fit` minimises, one small object per kind of model.

A loss is called as ``loss(model, x, target)`` on a batch and returns a :class:`LossOutput`: the
scalar to minimise and the metrics to log. It runs the model and hands tensors to the objectives
of :mod:`vaebook.objectives` (and the estimators of :mod:`vaebook.estimators`), which never see the
model. A setting that changes the objective is a declared field of the loss, e.g. the KL weight
``ELBOLoss.beta`` and its warm-up ``ELBOLoss.warmup``, or its free bits ``ELBOLoss.free_bits``;
nothing travels on the model, and training never writes into the loss.

A loss whose objective changes during training says so with a method ``at_progress(progress)``
that returns the loss to use at that fraction of training (0 to 1); :func:`vaebook.fit` asks for it
before every step. :class:`ELBOLoss` has one: its KL weight warms up from 0 to ``beta``.

:func:`default_loss` picks the loss for each of the library's models; ``fit(loss=...)`` takes any
callable of the same form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import likelihoods, stats
from .diagnostics import kl_per_dimension
from .estimators import elbo_terms, encode_and_decode, model_elbo
from .guards import check_float_tensor, check_number, check_same_shape, describe
from .models import VAE, Autoencoder, DigitClassifier, LatentModel, SuperResolver
from .objectives import ELBO, reconstruction_error

__all__ = [
    "LossOutput", "ReconstructionLoss", "ELBOLoss", "free_bits_kl", "calibrated_gaussian_nll", "CalibratedGaussianLoss",
    "CrossEntropyLoss", "default_loss", "check_loss_output", "check_reconstruction_target",
]


def check_reconstruction_target(x: Tensor, target: Tensor) -> None:
    """A VAE's loss takes the batch itself as its target (``fit`` passes ``x`` twice); anything else is refused."""
    if target is not x and (target.shape != x.shape or not torch.equal(target, x)):
        raise ValueError("target: a VAE is trained to reproduce its input; pass images without separate targets")


class LossOutput(NamedTuple):
    """A scalar loss to minimise, and per-batch metrics (detached scalar tensors) to log."""

    loss: Tensor
    metrics: dict[str, Tensor]


@dataclass
class ReconstructionLoss:
    """The mean over the batch of :func:`~vaebook.objectives.reconstruction_error` against ``target``.

    For autoencoders and super-resolvers; with denoising pairs the target is the clean image. The
    logged ``mse`` is per pixel.

    Book: eq-ae-objective
    """

    def __call__(self, model: nn.Module, x: Tensor, target: Tensor) -> LossOutput:
        x_hat = model(x)
        if target.numel() != x_hat.numel():
            raise ValueError(f"target: expected {tuple(x_hat.shape)} like the model's output, got shape {tuple(target.shape)}")
        err = reconstruction_error(target.reshape(x_hat.shape), x_hat)  # (b,)
        return LossOutput(err.mean(), {"mse": err.mean().detach() / x_hat[0].numel()})


def free_bits_kl(kl: Tensor, free_bits: float) -> Tensor:
    r"""The KL term with free bits (Kingma et al., 2016): each coordinate's batch-average KL, floored at ``free_bits``, summed.

    .. math:: \mathrm{KL}_\lambda = \sum_{j=1}^{z\_dim} \max\Big(\lambda,\; \frac1b \sum_{i=1}^b \mathrm{KL}_{ij}\Big)

    ``kl``: ``(b, z_dim)``, the terms :math:`\mathrm{KL}_{ij} = \mathrm{KL}(q(z_j\mid x_i)\,\|\,p(z_j))` of
    :func:`vaebook.kl_per_dimension`; ``free_bits``: :math:`\lambda \ge 0`, in nats per coordinate.
    Below :math:`\lambda` a coordinate's KL costs nothing and gets no gradient, so the encoder may
    spend up to :math:`\lambda` nats on it for free. The floor applies to the batch average, not to
    each example. A scalar; with :math:`\lambda = 0` it is the batch average of the KL term.

    Book: eq-free-bits
    """
    check_float_tensor("kl", kl, dims=2)
    lam = check_number("free_bits (nats per latent coordinate)", free_bits, min=0.0)
    return kl.mean(dim=0).clamp_min(lam).sum()  # (z_dim,) -> scalar


@dataclass
class ELBOLoss:
    r"""``-(recon - beta * kl).mean()``: the negative ELBO, with the KL term weighted by ``beta``.

    - ``beta = 1`` is the ELBO itself.
    - ``warmup`` (a fraction of training, 0 by default): the KL weight rises linearly from 0 to
      ``beta`` over that first fraction of training, then stays at ``beta`` (KL annealing, Bowman
      et al., 2016). :meth:`kl_weight` gives it at a point of training; :func:`vaebook.fit` trains
      each step with :meth:`at_progress`, and ``beta`` itself never changes.
    - ``free_bits`` (:math:`\lambda`, nats per latent coordinate; 0 by default) replaces the KL term by
      :func:`free_bits_kl`, each coordinate's batch-average KL floored at :math:`\lambda`
      (Kingma et al., 2016), so that the optimiser gains nothing by pushing a coordinate's KL
      below :math:`\lambda`. It needs the closed-form KL per coordinate, so the standard normal prior.

    The logged ``elbo``, ``recon`` and ``kl`` are always the true ELBO and its terms (weight 1,
    no free bits), whatever the loss minimises.

    Book: eq-elbo
    """

    beta: float = 1.0
    free_bits: float = 0.0
    warmup: float = 0.0

    def __post_init__(self) -> None:
        self.beta = check_number("beta (the KL weight)", self.beta, min=0.0)
        self.free_bits = check_number("free_bits (nats per latent coordinate)", self.free_bits, min=0.0)
        self.warmup = check_number("warmup (a fraction of training)", self.warmup, min=0.0, max=1.0)

    def kl_weight(self, progress: float = 1.0) -> float:
        """The KL weight after ``progress`` (0 to 1) of training: ``beta``, ramped up from 0 over the first ``warmup``."""
        if self.warmup == 0:
            return self.beta
        return self.beta * min(1.0, progress / self.warmup)

    def at_progress(self, progress: float) -> ELBOLoss:
        """The loss to train with after ``progress`` of training: this one, or during the warm-up a copy with the ramped weight."""
        if self.warmup == 0 or progress >= self.warmup:
            return self
        return ELBOLoss(beta=self.kl_weight(progress), free_bits=self.free_bits)

    def __call__(self, model: LatentModel, x: Tensor, target: Tensor) -> LossOutput:
        check_reconstruction_target(x, target)
        if self.free_bits == 0:
            terms = model_elbo(model, x)
            loss = -(terms.recon - self.beta * terms.kl).mean()
        else:
            if not model.prior_is_standard:
                raise ValueError(f"free_bits: expected a model with the standard normal prior (free bits floor the KL of "
                                 f"each coordinate, which a learned prior does not split into), got free_bits={self.free_bits:g} "
                                 f"for a {type(model).__name__} with a learned prior")
            x, mu, logvar, _, x_out = encode_and_decode(model, x)
            recon = likelihoods.of(model).log_prob(x, x_out)  # (b,)
            kl_j = kl_per_dimension(mu, logvar)  # (b, z_dim)
            kl = kl_j.sum(dim=1)  # (b,): the closed form, as gaussian_kl
            terms = ELBO(recon - kl, recon, kl)
            loss = -(recon.mean() - self.beta * free_bits_kl(kl_j, self.free_bits))
        return LossOutput(
            loss,
            {"elbo": terms.elbo.mean().detach(), "recon": terms.recon.mean().detach(), "kl": terms.kl.mean().detach()},
        )


def calibrated_gaussian_nll(x: Tensor, x_mean: Tensor) -> Tensor:
    r"""``-log p(x | z)`` per example for a Gaussian decoder whose variance is calibrated on the batch (Rybkin et al., 2021).

    .. math:: c^* = \frac1{bD}\sum_{i=1}^b \lVert x_i - \hat x_i\rVert^2, \qquad
              -\log p(x_i\mid z_i) = \frac{\lVert x_i - \hat x_i\rVert^2}{2c^*} + \frac D2 \log(2\pi c^*)

    ``x`` and ``x_mean`` (:math:`\hat x`, the decoder's means): ``(b, ...)`` of the same shape, with
    :math:`D` values per example. :math:`c^*`, the mean squared error per value over the whole batch,
    is the variance that minimises the batch's summed negative log-likelihood, so the batch's total
    is :math:`\frac{bD}2\log(2\pi e\,c^*)`. At that minimum the derivative in :math:`c` is zero, so
    the gradient with respect to ``x_mean`` is the same whether or not :math:`c^*` is treated as a
    constant. A ``(b,)`` tensor.

    Book: eq-calibrated-decoder
    """
    check_float_tensor("x", x)
    check_float_tensor("x_mean", x_mean)
    check_same_shape("x", x, "x_mean", x_mean)
    if x.dim() < 2 or x.numel() == 0:
        raise ValueError(f"x: expected a non-empty batch of shape (b, ...), got shape {tuple(x.shape)}")
    return -stats.gaussian_log_prob(x, x_mean, _calibrated_c(x, x_mean))


def _calibrated_c(x: Tensor, x_mean: Tensor) -> Tensor:
    """c*, the mean squared error per value over the whole batch (kept above 0, where ``gaussian_log_prob`` needs it)."""
    err = (x - x_mean).pow(2)
    return err.mean().clamp_min(torch.finfo(err.dtype).tiny)


@dataclass
class CalibratedGaussianLoss:
    r"""The negative ELBO of a Gaussian-decoder VAE with its variance calibrated on each batch: the σ-VAE of Rybkin et al. (2021).

    The reconstruction term is :func:`calibrated_gaussian_nll`: the decoder's variance is not the
    model's ``c`` but, on every batch, the value :math:`c^*` that maximises the batch's ELBO, its mean
    squared error per pixel. The KL term is the model's, as in :func:`vaebook.model_elbo`. The logged
    ``c`` is :math:`c^*`; ``elbo``, ``recon`` and ``kl`` are the ELBO and its terms with that variance.
    The model's own ``c`` is left as it is (it is what ``sample`` and ``log_likelihood`` use).

    Book: eq-calibrated-decoder
    """

    def __call__(self, model: LatentModel, x: Tensor, target: Tensor) -> LossOutput:
        lik = getattr(model, "likelihood", None)
        if not isinstance(lik, (likelihoods.Likelihood, str)) or not isinstance(likelihoods.of(model), likelihoods.Gaussian):
            got = lik.name if isinstance(lik, likelihoods.Likelihood) else lik
            raise ValueError(f"model: expected a VAE with a Gaussian decoder (likelihood='gaussian'), got likelihood={got!r}")
        check_reconstruction_target(x, target)
        coded = encode_and_decode(model, x)
        # The ELBO at c = c*, with c* held fixed: the ELBO is stationary in c there, so the gradients are
        # those of calibrated_gaussian_nll, which lets c* follow the decoder.
        c = _calibrated_c(coded.x, coded.x_out).detach()
        terms = elbo_terms(model, coded, likelihood=likelihoods.Gaussian(c))
        return LossOutput(
            -terms.elbo.mean(),
            {"elbo": terms.elbo.mean().detach(), "recon": terms.recon.mean().detach(), "kl": terms.kl.mean().detach(), "c": c},
        )


@dataclass
class CrossEntropyLoss:
    """Cross-entropy of a classifier's logits against integer labels, and its accuracy."""

    def __call__(self, model: nn.Module, x: Tensor, target: Tensor) -> LossOutput:
        logits = model(x)
        n_classes = logits.shape[-1]
        if target.dtype != torch.int64 or target.shape != logits.shape[:1]:
            raise TypeError(f"target (class labels): expected int64 labels of shape ({logits.shape[0]},), "
                            f"got {describe(target)}")
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= n_classes):
            raise ValueError(f"target (class labels): expected labels from 0 to {n_classes - 1}, "
                             f"got labels from {int(target.min())} to {int(target.max())}")
        loss = F.cross_entropy(logits, target)
        acc = (logits.argmax(-1) == target).float().mean()
        return LossOutput(loss, {"cross_entropy": loss.detach(), "accuracy": acc.detach()})


_DEFAULTS: tuple[tuple[type, Callable[[], Callable[..., LossOutput]]], ...] = (
    (Autoencoder, ReconstructionLoss),
    (SuperResolver, ReconstructionLoss),
    (VAE, ELBOLoss),
    (DigitClassifier, CrossEntropyLoss),
)


def default_loss(model: nn.Module) -> Callable[..., LossOutput]:
    """A new loss object for one of the library's models: reconstruction, negative ELBO, or cross-entropy."""
    for cls, make in _DEFAULTS:
        if isinstance(model, cls):
            return make()
    raise TypeError(
        f"model: expected one of the library's models for a default loss, got a {type(model).__name__}; "
        "pass loss=fn(model, x, target) -> LossOutput to fit"
    )


def check_loss_output(out, where: str = "loss") -> LossOutput:
    """The value a loss returned, if it is a :class:`LossOutput` with a scalar loss; else a clear TypeError."""
    if not isinstance(out, LossOutput):
        raise TypeError(f"{where}: expected the loss function to return a vaebook.LossOutput(loss, metrics), got {describe(out)}")
    if not isinstance(out.loss, Tensor) or out.loss.dim() != 0:
        raise TypeError(f"{where}: expected LossOutput.loss to be a scalar tensor, got {describe(out.loss)}")
    return out
