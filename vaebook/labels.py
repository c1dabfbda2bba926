r"""Labels: the conditional VAE and the semi-supervised M2 model (Kingma et al., 2014).

Chapter 14 of the book. The generative model draws a label and a code independently and decodes
the image from both:

.. math:: p(y) = \tfrac1K, \qquad p(\mathbf z) = \mathcal N(\mathbf 0, \mathbf I), \qquad
          p_\theta(\mathbf x\mid\mathbf z, y) = \mathrm{Bernoulli}\big(\sigma(\mathbf d_\theta(\mathbf z, y))\big).

- :class:`ConditionalVAE` (Sohn et al., 2015; M2 with ``y`` always observed): an encoder
  :math:`q_\phi(\mathbf z\mid\mathbf x, y)` and the decoder above; :func:`labelled_elbo` is its bound.
- :class:`M2` adds a classifier :math:`q_\phi(y\mid\mathbf x)`, so that images without a label
  get a bound too: :func:`unlabelled_elbo` sums the labelled bound over the ``n_classes`` labels, weighted
  by :math:`q_\phi(y\mid\mathbf x)`, and adds the entropy of :math:`q_\phi(y\mid\mathbf x)`.
  :func:`m2_loss` is the training objective with the classification term weighted by ``alpha``.
- :func:`train_labels` trains either model, and the classifier alone as a supervised baseline,
  with dynamic binarization and batches that draw the few labelled images more often than the rest.

Labels are ``int64`` class indices from 0 to ``n_classes - 1``; images are ``(b, 1, 28, 28)`` (or any shape
whose trailing dimensions hold ``x_dim`` values) with values in [0, 1].
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import draws, stats
from .data import ImageData, binarize
from .guards import (
    check_choice,
    check_float_tensor,
    check_int,
    check_number,
    check_range,
    check_tensor,
    describe,
    value_checks,
    value_checks_enabled,
)
from .losses import LossOutput
from .train import seed_everything

__all__ = [
    "ConditionalVAE",
    "M2",
    "LabelledELBO",
    "UnlabelledELBO",
    "labelled_elbo",
    "unlabelled_elbo",
    "unlabelled_bound",
    "m2_loss",
    "LabelHistory",
    "train_labels",
    "error_rate",
]


# --------------------------------------------------------------------------- models
class ConditionalVAE(nn.Module):
    r"""A VAE whose encoder and decoder both see the label: :math:`q_\phi(\mathbf z\mid\mathbf x, y)`, :math:`p_\theta(\mathbf x\mid\mathbf z, y)`.

    One hidden layer of ``hidden_dim`` ELU units in each network. The label enters as a one-hot
    vector concatenated to the input; a linear layer on ``[x, onehot(y)]`` is a linear layer on ``x``
    plus one learned vector per label, which is how it is computed here (the images' part once,
    whatever the number of labels tried). Bernoulli decoder, standard normal prior on ``z``, uniform
    prior on ``y``.

    Book: eq-labels-model
    """

    def __init__(self, z_dim: int = 16, hidden_dim: int = 256, n_classes: int = 10, image_shape: tuple[int, ...] = (1, 28, 28)):
        super().__init__()
        self.z_dim = check_int("z_dim", z_dim, min=1)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, min=1)
        self.n_classes = check_int("n_classes", n_classes, min=2)
        if not isinstance(image_shape, tuple) or not image_shape or not all(isinstance(s, int) and s >= 1 for s in image_shape):
            raise TypeError(f"image_shape: expected a tuple of ints >= 1 such as (1, 28, 28), got {describe(image_shape)}")
        self.image_shape = image_shape
        self.x_dim = math.prod(image_shape)
        self.enc_x = nn.Linear(self.x_dim, hidden_dim)
        self.enc_y = nn.Embedding(n_classes, hidden_dim)  # the one-hot label's columns of the first layer
        self.enc_out = nn.Linear(hidden_dim, 2 * z_dim)  # mu and logvar
        self.dec_z = nn.Linear(z_dim, hidden_dim)
        self.dec_y = nn.Embedding(n_classes, hidden_dim)
        self.dec_out = nn.Linear(hidden_dim, self.x_dim)

    # the checks at the door, shared by every public function of the module
    def check_x(self, name: str, x) -> Tensor:
        """``x`` as ``(b, x_dim)``: a float tensor of the model's dtype whose trailing dimensions hold ``x_dim`` values."""
        check_float_tensor(name, x, dtype=self.enc_x.weight.dtype)
        if x.dim() < 2 or math.prod(x.shape[1:]) != self.x_dim:
            raise ValueError(f"{name}: expected a batch of images of shape (b, {', '.join(map(str, self.image_shape))}) "
                             f"or (b, {self.x_dim}), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one image, got an empty batch of shape {tuple(x.shape)}")
        if value_checks_enabled():
            check_range(name, x, 0.0, 1.0)
        return x.reshape(x.shape[0], self.x_dim)  # (b, x_dim)

    def check_y(self, name: str, y, b: int | None = None) -> Tensor:
        """``y``: int64 labels from 0 to ``n_classes - 1``, one per image (``b`` of them, when given)."""
        check_tensor(name, y)
        if y.dtype != torch.int64:
            raise TypeError(f"{name}: expected int64 class labels, got dtype {y.dtype}")
        if y.dim() != 1 or (b is not None and y.shape[0] != b):
            want = f"shape ({b},), one label per image" if b is not None else "shape (b,)"
            raise ValueError(f"{name}: expected {want}, got shape {tuple(y.shape)}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise ValueError(f"{name}: expected labels from 0 to {self.n_classes - 1}, "
                             f"got labels from {int(y.min())} to {int(y.max())}")
        return y

    def encode(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        r"""The mean and log-variance of :math:`q_\phi(\mathbf z\mid\mathbf x, y)`, each ``(b, z_dim)``."""
        x = self.check_x("x", x)
        y = self.check_y("y", y, x.shape[0])
        h = F.elu(self.enc_x(x) + self.enc_y(y))  # (b, hidden_dim): W [x, onehot(y)] + bias
        mu, logvar = self.enc_out(h).chunk(2, dim=-1)
        return mu, logvar

    def encode_every_label(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""The mean and log-variance of :math:`q_\phi(\mathbf z\mid\mathbf x, y)` under each label ``y``, each ``(n_classes, b, z_dim)``.

        The same as :meth:`encode` with every image repeated under every label, but the images'
        part of the first layer is computed once, not once per label.
        """
        x = self.check_x("x", x)
        h_x = self.enc_x(x)  # (b, hidden_dim): W_x x + bias, shared by every label
        h = F.elu(h_x.unsqueeze(0) + self.enc_y.weight.unsqueeze(1))  # (n_classes, 1, h) + (1, b, h) -> (n_classes, b, hidden_dim)
        mu, logvar = self.enc_out(h).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor, y: Tensor) -> Tensor:
        r"""The logits of :math:`p_\theta(\mathbf x\mid\mathbf z, y)`, shaped like the images: ``(b, *image_shape)``."""
        check_float_tensor("z", z, dtype=self.dec_z.weight.dtype)
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z: expected shape (b, {self.z_dim}), got shape {tuple(z.shape)}")
        y = self.check_y("y", y, z.shape[0])
        h = F.elu(self.dec_z(z) + self.dec_y(y))  # (b, hidden_dim)
        return self.dec_out(h).view(z.shape[0], *self.image_shape)  # (b, 784) -> (b, 1, 28, 28)

    @torch.no_grad()
    def sample(self, y: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        r"""One image per label in ``y``: :math:`\mathbf z\sim\mathcal N(\mathbf 0, \mathbf I)`, then the decoder's means :math:`\sigma(\mathbf d_\theta(\mathbf z, y))`."""
        y = self.check_y("y", y)
        z = draws.randn((y.shape[0], self.z_dim), generator=generator, dtype=self.dec_z.weight.dtype, device=self.dec_z.weight.device)
        return torch.sigmoid(self.decode(z, y))


class M2(ConditionalVAE):
    r"""Kingma et al.'s (2014) M2: a :class:`ConditionalVAE` with a classifier :math:`q_\phi(y\mid\mathbf x)`.

    The classifier has one hidden layer of ``hidden_dim`` ELU units, like the encoder; alone, it is
    the supervised baseline that the chapter compares M2 with.

    Book: eq-m2-loss
    """

    def __init__(self, z_dim: int = 16, hidden_dim: int = 256, n_classes: int = 10, image_shape: tuple[int, ...] = (1, 28, 28)):
        super().__init__(z_dim, hidden_dim, n_classes, image_shape)
        self.classifier = nn.Sequential(nn.Linear(self.x_dim, hidden_dim), nn.ELU(), nn.Linear(hidden_dim, n_classes))

    def classify(self, x: Tensor) -> Tensor:
        r"""The logits of :math:`q_\phi(y\mid\mathbf x)`, ``(b, n_classes)``."""
        return self.classifier(self.check_x("x", x))


def _check_model(model, cls: type = ConditionalVAE) -> None:
    if not isinstance(model, cls):
        raise TypeError(f"model: expected a vaebook.labels.{cls.__name__}, got {describe(model)}")


def _check_eps(eps, shape: tuple[int, ...], alt: tuple[int, ...] | None, dtype: torch.dtype) -> Tensor:
    check_float_tensor("eps", eps, dtype=dtype)
    if tuple(eps.shape) != shape and (alt is None or tuple(eps.shape) != alt):
        want = f"shape {shape}" + (f" or {alt}" if alt is not None else "")
        raise ValueError(f"eps: expected {want}, got shape {tuple(eps.shape)}")
    return eps


# --------------------------------------------------------------------------- the bounds
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
    _check_model(model)
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
    _check_model(model, M2)
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
    _check_model(model, M2)
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


# --------------------------------------------------------------------------- training
@dataclass
class LabelHistory:
    """What :func:`train_labels` did: ``steps``, wall-clock ``seconds``, and each logged metric averaged over every 100 steps."""

    steps: int = 0
    seconds: float = 0.0
    metrics: dict[str, list[float]] = field(default_factory=dict)


OBJECTIVES = ("cvae", "m2", "classifier")


def _check_data(name: str, data, model: ConditionalVAE, labelled: bool) -> tuple[Tensor, Tensor | None]:
    if labelled and not isinstance(data, ImageData):
        raise TypeError(f"{name}: expected an ImageData with labels (e.g. vb.load_mnist('train')[:100]), got {describe(data)}")
    x = data.x if isinstance(data, ImageData) else data
    x2 = model.check_x(f"{name} (images)", x)
    y = model.check_y(f"{name} (labels)", data.y, x2.shape[0]) if labelled else None
    return x2, y


def train_labels(
    model: ConditionalVAE,
    labelled: ImageData,
    unlabelled: ImageData | Tensor | None = None,
    *,
    objective: str,
    steps: int,
    alpha: float = 0.0,
    batch_size: int = 100,
    labelled_batch_size: int = 50,
    lr: float = 2e-3,
    seed: int = 0,
) -> LabelHistory:
    r"""Train a model of this module with Adam, dynamically binarizing every batch; the model ends in eval mode.

    - ``objective="cvae"``: :class:`ConditionalVAE` (or :class:`M2`) on ``labelled`` alone,
      minimising :math:`-\mathcal L(\mathbf x, y)` over batches of ``batch_size``.
    - ``objective="m2"``: :class:`M2` with :func:`m2_loss`; each step takes ``labelled_batch_size``
      labelled images (drawn in passes over the labelled set, however small it is) and
      ``batch_size`` images of ``unlabelled`` (their labels, if any, are not read).
    - ``objective="classifier"``: only :class:`M2`'s classifier, on the cross-entropy of
      ``labelled`` (batches of ``labelled_batch_size``): the supervised baseline for the same
      number of steps.

    The learning rate ``lr`` is held, then decays linearly to 0 over the last 30% of the steps.
    Seeded: a run on the CPU repeats bit for bit.
    """
    objective = check_choice("objective", objective, OBJECTIVES)
    _check_model(model, M2 if objective != "cvae" else ConditionalVAE)
    steps = check_int("steps", steps, min=1)
    alpha = check_number("alpha", alpha, min=0.0)
    batch_size = check_int("batch_size", batch_size, min=1)
    labelled_batch_size = check_int("labelled_batch_size", labelled_batch_size, min=1)
    lr = check_number("lr", lr, min=0.0)
    seed = check_int("seed", seed)
    xl, yl = _check_data("labelled", labelled, model, labelled=True)
    if (unlabelled is None) != (objective != "m2"):
        raise ValueError(f"unlabelled: expected images for objective='m2' and None otherwise, got {describe(unlabelled)} "
                         f"with objective={objective!r}")
    xu = _check_data("unlabelled", unlabelled, model, labelled=False)[0] if unlabelled is not None else None
    assert yl is not None

    seed_everything(seed)
    g = torch.Generator().manual_seed(seed)
    net: nn.Module = model.classifier if isinstance(model, M2) and objective == "classifier" else model
    params = list(net.parameters())
    try:  # the fused kernel where this PyTorch has one: the same update in one pass
        opt = torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.Adam(params, lr=lr)
    history = LabelHistory()
    sums: dict[str, float] = {}
    streams = {"labelled": (xl.shape[0], labelled_batch_size if objective != "cvae" else batch_size)}
    if xu is not None:
        streams["unlabelled"] = (xu.shape[0], batch_size)
    orders = {k: torch.empty(0, dtype=torch.int64) for k in streams}

    def next_batch(kind: str) -> Tensor:  # indices of the next batch, in passes over a fresh permutation
        n, bs = streams[kind]
        while orders[kind].numel() < bs:
            orders[kind] = torch.cat([orders[kind], torch.randperm(n, generator=g)])
        idx, orders[kind] = orders[kind][:bs], orders[kind][bs:]
        return idx

    model.train()
    t0 = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:  # constant, then linear decay to 0 over the last 30%
            group["lr"] = lr * min(1.0, (1.0 - step / steps) / 0.3)
        with value_checks(step == 0):  # the data were checked at the door; the first step checks the rest
            i = next_batch("labelled")
            x_l, y_l = binarize(xl[i], g), yl[i]
            if objective == "cvae":
                bound = labelled_elbo(model, x_l, y_l).elbo
                out = LossOutput(-bound.mean(), {"elbo": bound.mean().detach()})
            elif objective == "classifier":
                assert isinstance(model, M2)
                logits_y = model.classifier(x_l)
                ce = F.cross_entropy(logits_y, y_l)
                out = LossOutput(ce, {"cross_entropy": ce.detach()})
            else:
                assert xu is not None and isinstance(model, M2)
                out = m2_loss(model, x_l, y_l, binarize(xu[next_batch("unlabelled")], g), alpha)
        if not torch.isfinite(out.loss):
            raise FloatingPointError(f"the loss became {out.loss.item()} at step {step + 1}; try a lower learning rate")
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        for k, v in {"loss": out.loss.detach(), **out.metrics}.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            n_logged = (step % 100) + 1
            for name, total in sums.items():
                history.metrics.setdefault(name, []).append(total / n_logged)
            sums = {}
    history.steps, history.seconds = steps, time.perf_counter() - t0
    model.eval()
    return history


@torch.no_grad()
def error_rate(model: M2, data: ImageData, *, seed: int = 0, batch_size: int = 2000) -> float:
    r"""The share of ``data``'s images whose most probable label under :math:`q_\phi(y\mid\mathbf x)` is wrong.

    The images are binarized once, with ``seed``, as the model saw binary images in training.
    """
    _check_model(model, M2)
    x, y = _check_data("data", data, model, labelled=True)
    seed = check_int("seed", seed)
    batch_size = check_int("batch_size", batch_size, min=1)
    assert y is not None
    x = binarize(x, torch.Generator().manual_seed(seed))
    wrong = sum(int((model.classifier(x[i:i + batch_size]).argmax(-1) != y[i:i + batch_size]).sum())
                for i in range(0, x.shape[0], batch_size))
    return wrong / x.shape[0]
