"""The models: autoencoders, VAEs, a linear-Gaussian model with exact answers, a super-resolution net, a classifier.

Models compute network outputs only; the objectives that train them live in
:mod:`vaebook.objectives`. Each model is built from a frozen dataclass config (:mod:`vaebook.configs`), which is what a checkpoint stores (:mod:`vaebook.checkpoints`), so ``vb.load`` can
rebuild it, out of the networks of :mod:`vaebook.networks`. What the estimators
need from a latent variable model is written down once, as the :class:`LatentModel` protocol.

Images go in as ``(b, 1, 28, 28)`` or flattened ``(b, 784)`` (any ``image_shape`` of the config);
they come out as ``(b, *image_shape)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import likelihoods, stats
from .guards import check_finite, check_float_tensor, check_int, check_number, check_positive
from .configs import AEConfig, ClassifierConfig, SRConfig, VAEConfig, config_from
from .networks import ImageModel, decoder_for, encoder_for
from .priors import MixturePrior, StandardNormalPrior, build_prior

__all__ = [
    "Autoencoder",
    "VAE",
    "VAEOutput",
    "LinearGaussian",
    "SuperResolver",
    "DigitClassifier",
    "LatentModel",
    "as_latent_model",
    "model_batch",
]


# --------------------------------------------------------------------------- what a latent model is
@runtime_checkable
class LatentModel(Protocol):
    r"""What the ELBO, importance sampling and quadrature need from a latent variable model.

    :class:`VAE` and :class:`LinearGaussian` provide it; so can any model of your own.

    - ``z_dim``: the width of the latent code :math:`z \in \mathbb R^{z\_dim}`, prior :math:`\mathcal N(0, I)`;
    - ``data_shape``: the shape of one example;
    - ``likelihood``: the decoder's :math:`p(x\mid z)`, a :class:`~vaebook.likelihoods.Likelihood`
      (:class:`~vaebook.likelihoods.Bernoulli`: ``decode`` gives logits; :class:`~vaebook.likelihoods.Gaussian`:
      ``decode`` gives the mean of :math:`\mathcal N(d_\theta(z), cI)`), or its name (``"bernoulli"``,
      ``"gaussian"``, ``"continuous_bernoulli"``), with ``c`` the Gaussian's variance;
    - ``log_prior(z)``: :math:`\log p(z)`; ``prior_is_standard``: whether :math:`p(z) = \mathcal N(0, I)`,
      in which case the ELBO's KL term has a closed form;
    - ``encode(x) -> (mu, logvar)``, each ``(b, z_dim)``: the Gaussian :math:`q(z \mid x)`;
    - ``decode(z)`` for ``z`` of shape ``(..., b, z_dim)``: the decoder's output ``(..., b, *data_shape)``.
    """

    @property
    def z_dim(self) -> int: ...

    @property
    def data_shape(self) -> tuple[int, ...]: ...

    @property
    def likelihood(self) -> str | likelihoods.Likelihood: ...

    @property
    def c(self) -> float | Tensor: ...

    @property
    def prior_is_standard(self) -> bool: ...

    def log_prior(self, z: Tensor) -> Tensor: ...

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]: ...

    def decode(self, z: Tensor) -> Tensor: ...


def as_latent_model(name: str, model) -> "LatentModel":
    """``model`` if it provides :class:`LatentModel`, else a TypeError that names what it lacks."""
    if isinstance(model, LatentModel):
        return model
    missing = [a for a in ("z_dim", "data_shape", "likelihood", "c", "prior_is_standard", "log_prior", "encode", "decode")
               if not hasattr(model, a)]
    raise TypeError(
        f"{name}: expected a latent variable model (vaebook.VAE, vaebook.LinearGaussian, or one with "
        f"z_dim, data_shape, likelihood, c, encode and decode), got a {type(model).__name__} without {', '.join(missing)}"
    )


def model_batch(model: "LatentModel", x: Tensor, name: str = "x") -> Tensor:
    """``x`` as ``(b, *model.data_shape)`` (flattened examples are reshaped), of the model's dtype; else a clear error."""
    shape = tuple(model.data_shape)
    params = list(model.parameters()) if isinstance(model, nn.Module) else []
    check_float_tensor(name, x, dtype=params[0].dtype if params else None)
    if x.dim() >= 2 and x.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got an empty batch of shape {tuple(x.shape)}")
    if x.dim() >= 2 and math.prod(x.shape[1:]) == math.prod(shape):
        return x.reshape(x.shape[0], *shape)  # (b, ...) -> (b, *data_shape)
    raise ValueError(f"{name}: expected examples of shape {shape} (or flattened) in a batch, got shape {tuple(x.shape)}")


# --------------------------------------------------------------------------- autoencoder
class Autoencoder(ImageModel):
    r"""A bottleneck autoencoder :math:`f_\theta(x) = \mathrm{dec}(\mathrm{enc}(x))`.

    The bottleneck code ``encode(x)`` is the extracted feature vector. Train it with
    :func:`vaebook.fit`, which minimises the squared reconstruction error.
    ``init_output_bias(x)`` starts the decoder at the mean of ``x`` (the mean image for an MLP
    decoder, the mean grey level for a convolutional one), which shortens training.

    Book: eq-ae-objective
    """

    config: AEConfig

    def __init__(self, config: AEConfig | None = None, **overrides):
        super().__init__()
        self.config = config_from(AEConfig, config, overrides)
        self.encoder = encoder_for(self.config, self.config.z_dim)
        self.decoder = decoder_for(self.config)

    def encode(self, x: Tensor) -> Tensor:
        """The bottleneck code ``z`` of shape ``(b, z_dim)``."""
        return self.encoder(self.as_images(x))

    def decode(self, z: Tensor) -> Tensor:
        """The reconstruction ``x_hat`` of shape ``(b, *image_shape)``."""
        out = self._decode_raw(z)
        return torch.sigmoid(out) if self.config.output_kind == "sigmoid" else out

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def _output_is_logit(self) -> bool:
        return self.config.output_kind == "sigmoid"


# --------------------------------------------------------------------------- VAE
class VAEOutput(NamedTuple):
    """What a VAE's forward pass returns: decoder output, posterior parameters, and the sample."""

    x_out: Tensor  # Bernoulli logits or Gaussian mean, (b, *image_shape)
    mu: Tensor  # (b, z_dim)
    logvar: Tensor  # (b, z_dim)
    z: Tensor  # (b, z_dim)


class VAE(ImageModel):
    r"""A variational autoencoder (Kingma & Welling, 2013).

    - ``encode(x)`` returns ``(mu, logvar)``, the parameters of
      :math:`q(z\mid x;\phi) = \mathcal N(\mu, \operatorname{diag}\sigma^2)`.
    - ``decode(z)`` returns Bernoulli (or continuous Bernoulli) **logits** or the Gaussian
      **mean** :math:`d_\theta(z)` (``likelihood="gaussian"``), of shape ``(..., b, *image_shape)``.
    - ``prior``: the prior over ``z``, a submodule (:mod:`vaebook.priors`), so a learned one trains
      with the rest; ``log_prior(z)`` is its log-density.
    - ``c``: the Gaussian decoder's variance: the config's, or :math:`\exp` of the parameter
      ``log_c`` when ``learn_c=True`` (then a tensor that carries its gradient).
    - ``sample(n)`` draws :math:`z` from the prior and returns images in [0, 1].
    - ``init_output_bias(x)`` starts the decoder at the mean of ``x`` (the mean image for an MLP
      decoder, the mean grey level for a convolutional one); :func:`vaebook.train_vae` does it for MLPs.

    Book: eq-variational-family
    """

    config: VAEConfig
    prior: StandardNormalPrior | MixturePrior

    def __init__(self, config: VAEConfig | None = None, **overrides):
        super().__init__()
        self.config = config_from(VAEConfig, config, overrides)
        self.encoder = encoder_for(self.config, 2 * self.config.z_dim)
        self.decoder = decoder_for(self.config)
        self.prior = build_prior(self.config.prior, self.config.z_dim, self.config.prior_components)
        self.log_c = nn.Parameter(torch.tensor(math.log(self.config.c))) if self.config.learn_c else None
        self._output = likelihoods.likelihood(self.config.likelihood)  # what decode and mean_image need: no c

    @property
    def likelihood(self) -> likelihoods.Likelihood:
        """The decoder's :math:`p(x\\mid z)`, a :class:`~vaebook.likelihoods.Likelihood` (equal to its name, e.g. ``"gaussian"``)."""
        return likelihoods.likelihood(self.config.likelihood, self.c, learned=self.log_c is not None)

    @property
    def c(self) -> float | Tensor:
        return self.log_c.exp() if self.log_c is not None else float(self.config.c)

    @property
    def prior_is_standard(self) -> bool:
        """Whether the prior is N(0, I), the case in which the ELBO's KL term has a closed form."""
        return self.config.prior == "standard"

    def log_prior(self, z: Tensor) -> Tensor:
        """``log p(z)`` under the model's prior, ``(...,)`` for ``z`` of shape ``(..., z_dim)``."""
        return self.prior.log_prob(z)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)``, each ``(b, z_dim)``: the encoder network ``e_phi(x)``."""
        h = self.encoder(self.as_images(x))  # (b, 2 * z_dim)
        mu, logvar = h.chunk(2, dim=-1)  # (b, z_dim) each
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        """Decoder output ``d_theta(z)``: logits (Bernoulli) or mean (Gaussian), ``(..., b, *image_shape)``.

        The Gaussian mean passes through a sigmoid, since grey levels lie in [0, 1].
        """
        return self._output.network_output(self._decode_raw(z))

    def _output_is_logit(self) -> bool:
        return True  # Bernoulli logits, or the Gaussian mean through a sigmoid

    def mean_image(self, z: Tensor) -> Tensor:
        """``E[x | z]`` in [0, 1]: sigmoid of the logits, the continuous Bernoulli's mean, or the Gaussian mean."""
        return self._output.mean(self.decode(z))

    def forward(self, x: Tensor, eps: Tensor | None = None) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = stats.reparameterize(mu, logvar, eps)
        return VAEOutput(self.decode(z), mu, logvar, z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, mean: bool = True) -> Tensor:
        """Generate ``n`` images: ``z`` from the prior, then ``E[x | z]`` (``mean=True``) or a draw of ``x | z``.

        Every draw is made where ``generator`` lives (the CPU's global generator when none is given,
        :mod:`vaebook.draws`), so a model on a GPU samples the images it samples on the CPU, to rounding.
        """
        n = check_int("n", n, min=1)
        z = self.prior.sample(n, generator=generator, device=self.device)
        out = self.decode(z)
        return self._output.mean(out) if mean else self.likelihood.sample(out, generator)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """``E[x | z = mu(x)]``: decode the posterior mean, in [0, 1]."""
        mu, _ = self.encode(x)
        return self.mean_image(mu)


# --------------------------------------------------------------------------- linear-Gaussian model
class LinearGaussian(nn.Module):
    r"""Probabilistic PCA: :math:`z\sim\mathcal N(0, I)`, :math:`x\mid z\sim\mathcal N(Wz + b, cI)`.

    A deep latent variable model whose decoder is linear, so everything the VAE chapters
    approximate has a closed form here: :math:`p(x) = \mathcal N(b, WW^\top + cI)` and the posterior
    :math:`p(z\mid x) = \mathcal N(M^{-1}W^\top(x-b),\; cM^{-1})` with :math:`M = W^\top W + cI`.
    The tests use it as the oracle for the ELBO and the importance-sampled log-likelihood.

    ``encode(x)`` returns a diagonal Gaussian: the exact posterior mean and the diagonal of the exact
    posterior covariance, plus offsets set by :meth:`set_q_offsets` that make ``q`` deliberately
    worse (for the ELBO-gap demonstrations). The variance ``c`` changes through :meth:`set_c` (EM's
    M-step does); ``W`` and ``b`` are parameters.
    """

    def __init__(self, W: Tensor, b: Tensor, c: float):
        super().__init__()
        check_float_tensor("W", W, dims=2)
        check_finite("W", W)
        check_float_tensor("b", b, dtype=W.dtype)
        check_finite("b", b)
        if b.shape != W.shape[:1]:
            raise ValueError(f"b: expected shape ({W.shape[0]},) to match W's {W.shape[0]} rows, got shape {tuple(b.shape)}")
        self.W = nn.Parameter(W.clone())
        self.b = nn.Parameter(b.clone())
        self._c = check_positive("c (the observation variance)", c)
        self._mu_shift = 0.0
        self._logvar_shift = 0.0

    @property
    def c(self) -> float:
        return self._c

    @property
    def likelihood(self) -> likelihoods.Gaussian:
        """:math:`\\mathcal N(Wz + b, cI)`: a Gaussian with this model's ``c``, its mean as the linear map gives it."""
        return likelihoods.Gaussian(self._c, squash=False)

    prior_is_standard = True

    def log_prior(self, z: Tensor) -> Tensor:
        """``log N(z; 0, I)``: probabilistic PCA's prior."""
        return stats.standard_normal_log_prob(z)

    def set_c(self, c: float) -> None:
        """Set the observation variance ``c`` (> 0)."""
        self._c = check_positive("c (the observation variance)", c)

    @property
    def q_offsets(self) -> tuple[float, float]:
        """``(mu_shift, logvar_shift)``: what :meth:`encode` adds to the exact posterior's mean and log-variances."""
        return self._mu_shift, self._logvar_shift

    def set_q_offsets(self, mu_shift: float = 0.0, logvar_shift: float = 0.0) -> None:
        """Make ``q`` deliberately imperfect: shift its mean by ``mu_shift`` and its log-variances by ``logvar_shift``.

        ``set_q_offsets()`` restores the exact posterior's mean and marginal variances.
        """
        self._mu_shift = check_number("mu_shift", mu_shift)
        self._logvar_shift = check_number("logvar_shift", logvar_shift)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self.W.shape[0],)

    @property
    def z_dim(self) -> int:
        return self.W.shape[1]

    def _check_x(self, x: Tensor) -> None:
        check_float_tensor("x", x, dtype=self.W.dtype)
        if x.dim() != 2 or x.shape[1] != self.W.shape[0]:
            raise ValueError(f"x: expected shape (b, {self.W.shape[0]}), got shape {tuple(x.shape)}")

    def decode(self, z: Tensor) -> Tensor:
        """The mean ``W z + b``, for ``z`` of shape ``(..., b, z_dim)``."""
        return z @ self.W.T + self.b  # (..., b, d)

    def marginal(self) -> torch.distributions.MultivariateNormal:
        """The exact marginal ``p(x) = N(b, W W^T + c I)``."""
        d = self.W.shape[0]
        cov = self.W @ self.W.T + self.c * torch.eye(d, dtype=self.W.dtype)
        return torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov)

    def log_prob(self, x: Tensor) -> Tensor:
        """The exact ``log p(x)``, ``(b,)``."""
        self._check_x(x)
        return self.marginal().log_prob(x)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The exact posterior ``p(z | x) = N(mean, cov)``: mean ``(b, z_dim)``, covariance ``(z_dim, z_dim)``."""
        self._check_x(x)
        k = self.z_dim
        M = self.W.T @ self.W + self.c * torch.eye(k, dtype=self.W.dtype)  # (k, k)
        Minv = torch.linalg.inv(M)
        mean = (x - self.b) @ self.W @ Minv.T  # (b, k)
        return mean, self.c * Minv

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """A mean-field ``q(z|x)``: the exact posterior mean and marginal variances, plus the shifts."""
        mean, cov = self.posterior(x)
        logvar = torch.log(torch.diagonal(cov)).expand_as(mean)  # (b, k)
        return mean + self._mu_shift, logvar + self._logvar_shift


# --------------------------------------------------------------------------- super-resolution
class SuperResolver(nn.Module):
    r"""Super-resolution by sub-pixel convolution (Shi et al., 2016), on top of bicubic upsampling.

    The low-resolution image passes through ``n_layers`` 3x3 convolutions **at low resolution**; a
    last convolution makes ``scale**2`` channels per output channel, and ``PixelShuffle`` rearranges
    them into a ``scale``-times larger image. The net learns the residual that bicubic
    interpolation misses: ``f(x) = bicubic(x) + r_theta(x)``. Working at low resolution costs
    ``scale**2`` times fewer operations than convolving the upsampled image.

    Book: eq-sr-objective
    """

    def __init__(self, config: SRConfig | None = None, **overrides):
        super().__init__()
        self.config = cfg = config_from(SRConfig, config, overrides)
        layers: list[nn.Module] = []
        c_in = cfg.in_channels
        for _ in range(cfg.n_layers):
            layers += [nn.Conv2d(c_in, cfg.channels, 3, padding=1), nn.ReLU()]
            c_in = cfg.channels
        last = nn.Conv2d(c_in, cfg.in_channels * cfg.scale**2, 3, padding=1)
        layers += [last, nn.PixelShuffle(cfg.scale)]
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(last.weight)  # start as plain bicubic: the residual is 0
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]  # Conv2d has a bias by default

    def forward(self, x_low: Tensor) -> Tensor:
        check_float_tensor("x_low", x_low, dtype=next(self.parameters()).dtype)
        if x_low.dim() != 4 or x_low.shape[1] != self.config.in_channels:
            raise ValueError(
                f"x_low: expected low-resolution images (b, {self.config.in_channels}, h, w), got shape {tuple(x_low.shape)}"
            )
        s = self.config.scale
        base = F.interpolate(x_low, scale_factor=s, mode="bicubic", align_corners=False)  # (b, c, s*h, s*w)
        return base + self.body(x_low)  # (b, c, s*h, s*w)


# --------------------------------------------------------------------------- digit classifier
class DigitClassifier(nn.Module):
    """A small CNN for 28x28 digits; :mod:`vaebook.metrics` uses it to score sample realism."""

    def __init__(self, config: ClassifierConfig | None = None, **overrides):
        super().__init__()
        self.config = cfg = config_from(ClassifierConfig, config, overrides)
        c1, c2 = cfg.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (b, c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (b, c2, 7, 7)
            nn.Flatten(),
            nn.Linear(c2 * 49, cfg.hidden), nn.ReLU(),  # (b, hidden)
        )
        self.head = nn.Linear(cfg.hidden, cfg.n_classes)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (1, 28, 28)

    def embed(self, x: Tensor) -> Tensor:
        """Penultimate-layer features ``(b, hidden)``."""
        check_float_tensor("x", x, dtype=self.head.weight.dtype)
        if x.dim() == 2 and x.shape[1] == 784:
            x = x.view(-1, 1, 28, 28)  # (b, 784) -> (b, 1, 28, 28)
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"x: expected digits of shape (b, 1, 28, 28) or (b, 784), got shape {tuple(x.shape)}")
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(x))  # (b, n_classes) logits
