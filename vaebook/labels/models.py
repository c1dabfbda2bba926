r"""The models of :mod:`vaebook.labels`: the conditional VAE and M2, which adds the classifier :math:`q_\phi(y\mid\mathbf x)`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .. import draws
from ..guards import (
    check_float_tensor,
    check_int,
    check_range,
    check_tensor,
    describe,
    value_checks_enabled,
)


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


def check_model(model, cls: type | None = None) -> None:
    """Raise a ``TypeError`` that names ``model`` unless it is a ``cls``, by default a :class:`ConditionalVAE` (the functions of this package check their model with it)."""
    cls = cls if cls is not None else ConditionalVAE
    if not isinstance(model, cls):
        raise TypeError(f"model: expected a vaebook.labels.{cls.__name__}, got {describe(model)}")
