"""Networks: autoencoders, VAEs, a linear-Gaussian model with exact answers, a super-resolution net.

Models compute network outputs only; the objectives that train them live in
:mod:`vaebook.objectives`. Each model is built from a frozen dataclass config, which is what a
checkpoint stores (:mod:`vaebook.checkpoints`), so ``vb.load`` can rebuild it. What the estimators
need from a latent variable model is written down once, as the :class:`LatentModel` protocol.

Images go in as ``(b, 1, 28, 28)`` or flattened ``(b, 784)`` (any ``image_shape`` of the config);
they come out as ``(b, *image_shape)``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import likelihoods, stats
from .guards import check_choice, check_finite, check_float_tensor, check_int, check_int_tuple, check_number, check_positive, check_range
from .priors import PRIORS, MixturePrior, StandardNormalPrior, build_prior

__all__ = [
    "AEConfig",
    "VAEConfig",
    "SRConfig",
    "ClassifierConfig",
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

ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "linear": nn.Identity,
}
ARCHS = ("mlp", "conv")


# --------------------------------------------------------------------------- configs
class _Config:
    """Validation shared by the configs: known options only, and readable errors."""

    image_shape: tuple[int, int, int]

    @classmethod
    def from_dict(cls, options: dict) -> Any:
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]  # every subclass is a dataclass
        unknown = [k for k in options if k not in names]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, names, n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError(
                f"unknown {cls.__name__} option {', '.join(hints)}; expected one of: {', '.join(names)}"
            )
        fixed = dict(options)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # checkpoints store tuples as lists
            if f.name in fixed and isinstance(fixed[f.name], list):
                fixed[f.name] = tuple(fixed[f.name])
        return cls(**fixed)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass

    def _check_choice(self, name: str, value, choices) -> None:
        check_choice(f"{type(self).__name__}.{name}", value, choices)

    def _check_positive_int(self, name: str, value) -> None:
        check_int(f"{type(self).__name__}.{name}", value, min=1)

    def _check_widths(self, name: str, value, length: int | None = None) -> None:
        check_int_tuple(f"{type(self).__name__}.{name}", value, length=length)

    def _check_image_shape(self) -> None:
        shape = self.image_shape
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)):
            raise ValueError(f"{type(self).__name__}.image_shape must be (channels, H, W), got {shape!r}")


@dataclass(frozen=True)
class AEConfig(_Config):
    """A deterministic autoencoder ``f_theta = decoder o encoder`` with a ``z_dim``-wide bottleneck.

    - ``arch``: ``"mlp"`` (fully connected) or ``"conv"`` (two stride-2 convolutions each way).
    - ``hidden``: MLP layer widths, or conv channels per stage, listed from the image inwards.
    - ``activation``: ``"linear"`` makes the whole autoencoder linear (it then spans PCA's subspace).
    - ``output``: ``"sigmoid"`` keeps reconstructions in [0, 1]; ``"identity"`` does not.
      ``"auto"`` picks identity for a linear autoencoder and sigmoid otherwise.
    """

    arch: str = "mlp"
    z_dim: int = 32
    hidden: tuple[int, ...] = (512, 256)
    activation: str = "relu"
    output: str = "auto"
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        self._check_choice("arch", self.arch, ARCHS)
        self._check_positive_int("z_dim", self.z_dim)
        self._check_widths("hidden", self.hidden)
        self._check_choice("activation", self.activation, ACTIVATIONS)
        self._check_choice("output", self.output, ("auto", "sigmoid", "identity"))
        self._check_image_shape()
        if self.arch == "conv":
            _check_conv_shape(self)

    @property
    def output_kind(self) -> str:
        if self.output != "auto":
            return self.output
        return "identity" if self.activation == "linear" else "sigmoid"


@dataclass(frozen=True)
class VAEConfig(_Config):
    r"""A variational autoencoder: encoder ``e_phi(x) = (mu, log sigma^2)``, decoder ``d_theta(z)``.

    - ``likelihood``: ``"bernoulli"`` (the decoder outputs logits, for binary pixels),
      ``"gaussian"`` (the decoder outputs the mean of ``N(d_theta(z), c I)``, for grey levels), or
      ``"continuous_bernoulli"`` (logits of a density on grey levels in [0, 1]).
    - ``c``: the Gaussian decoder's variance, a hyperparameter, or its starting value when
      ``learn_c=True`` makes it a parameter trained with the rest (as :math:`\log c`).
    - ``prior``: ``"standard"`` (:math:`\mathcal N(0, I)`, the lecture's) or ``"mixture"``, a learned
      mixture of ``prior_components`` Gaussians (:mod:`vaebook.priors`).
    - ``arch``, ``hidden``, ``activation``: as in :class:`AEConfig`. The defaults (784-400-400-32,
      ELU) are the architecture of :func:`vaebook.train_vae`'s recipe.
    """

    arch: str = "mlp"
    z_dim: int = 32
    hidden: tuple[int, ...] = (400, 400)
    activation: str = "elu"
    likelihood: str = "bernoulli"
    c: float = 1.0
    learn_c: bool = False
    prior: str = "standard"
    prior_components: int = 10
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        self._check_choice("arch", self.arch, ARCHS)
        self._check_positive_int("z_dim", self.z_dim)
        self._check_widths("hidden", self.hidden)
        self._check_choice("activation", self.activation, ACTIVATIONS)
        self._check_choice("likelihood", self.likelihood, likelihoods.NAMES)
        check_positive("VAEConfig.c (the Gaussian decoder's variance)", self.c)
        if not isinstance(self.learn_c, bool):
            raise TypeError(f"VAEConfig.learn_c: expected True or False, got {self.learn_c!r}")
        if self.learn_c and not isinstance(likelihoods.likelihood(self.likelihood), likelihoods.Gaussian):
            raise ValueError(f"VAEConfig.learn_c: only the Gaussian decoder has a variance c to learn, got likelihood={self.likelihood!r}")
        self._check_choice("prior", self.prior, PRIORS)
        self._check_positive_int("prior_components", self.prior_components)
        self._check_image_shape()
        if self.arch == "conv":
            _check_conv_shape(self)


@dataclass(frozen=True)
class SRConfig(_Config):
    """A super-resolution net that works at low resolution and upsamples late (sub-pixel convolution).

    ``scale`` is the upsampling factor, ``channels`` the width, ``n_layers`` the number of 3x3
    convolutions before the sub-pixel layer. The net predicts the residual over bicubic upsampling.
    """

    scale: int = 4
    channels: int = 64
    n_layers: int = 4
    in_channels: int = 1

    def __post_init__(self) -> None:
        self._check_positive_int("scale", self.scale)
        self._check_positive_int("channels", self.channels)
        self._check_positive_int("n_layers", self.n_layers)
        self._check_positive_int("in_channels", self.in_channels)


@dataclass(frozen=True)
class ClassifierConfig(_Config):
    """A small convolutional digit classifier (the sample-realism scorer's network)."""

    channels: tuple[int, int] = (16, 32)
    hidden: int = 64
    n_classes: int = 10

    def __post_init__(self) -> None:
        self._check_widths("channels", self.channels, length=2)
        self._check_positive_int("hidden", self.hidden)
        self._check_positive_int("n_classes", self.n_classes)


def _check_conv_shape(cfg) -> None:
    _, h, w = cfg.image_shape
    if h % 4 or w % 4:
        raise ValueError(f"arch='conv' needs image H and W divisible by 4, got {cfg.image_shape}")
    if len(cfg.hidden) != 2:
        raise ValueError(f"arch='conv' takes two channel counts in hidden, e.g. (32, 64); got {cfg.hidden}")


def _config_from(cls, config, overrides: dict):
    if config is None:
        return cls.from_dict(overrides)
    if not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    if overrides:
        return cls.from_dict({**config.to_dict(), **overrides})
    return config


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


# --------------------------------------------------------------------------- building blocks
def _mlp(widths: list[int], activation: str) -> nn.Sequential:
    """Linear layers with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class _ConvEncoder(nn.Module):
    """Two stride-2 convolutions (H -> H/4), then a linear map to ``out_dim`` features."""

    def __init__(self, image_shape, channels, out_dim, activation):
        super().__init__()
        c, h, w = image_shape
        c1, c2 = channels
        act = ACTIVATIONS[activation]
        self.net = nn.Sequential(
            nn.Conv2d(c, c1, 3, stride=2, padding=1), act(),  # (b, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), act(),  # (b, c2, H/4, W/4)
            nn.Flatten(),  # (b, c2 * H/4 * W/4)
            nn.Linear(c2 * (h // 4) * (w // 4), out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class _ConvDecoder(nn.Module):
    """The mirror image: a linear map up to ``(c2, H/4, W/4)``, then two stride-2 transposed convolutions."""

    def __init__(self, image_shape, channels, z_dim, activation):
        super().__init__()
        c, h, w = image_shape
        c1, c2 = channels
        act = ACTIVATIONS[activation]
        self.shape = (c2, h // 4, w // 4)
        self.fc = nn.Sequential(nn.Linear(z_dim, c2 * (h // 4) * (w // 4)), act())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), act(),  # (b, c1, H/2, W/2)
            nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1),  # (b, c, H, W)
        )

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(-1, *self.shape)  # (b, c2, H/4, W/4)
        return self.net(h)


def _encoder(cfg, out_dim: int) -> nn.Module:
    if cfg.arch == "conv":
        return _ConvEncoder(cfg.image_shape, cfg.hidden, out_dim, cfg.activation)
    d = math.prod(cfg.image_shape)
    return nn.Sequential(nn.Flatten(), _mlp([d, *cfg.hidden, out_dim], cfg.activation))


def _decoder(cfg) -> nn.Module:
    if cfg.arch == "conv":
        return _ConvDecoder(cfg.image_shape, cfg.hidden, cfg.z_dim, cfg.activation)
    d = math.prod(cfg.image_shape)
    return _mlp([cfg.z_dim, *reversed(cfg.hidden), d], cfg.activation)


class _ImageModel(nn.Module):
    """Shape checks at the door: images ``(b, *image_shape)`` or flattened ``(b, prod(image_shape))``."""

    config: AEConfig | VAEConfig
    encoder: nn.Module
    decoder: nn.Module

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.config.image_shape)

    @property
    def z_dim(self) -> int:
        """The width of the latent code."""
        return self.config.z_dim

    def as_images(self, x: Tensor, name: str = "x") -> Tensor:
        """``x`` as ``(b, *image_shape)``: images, or flattened ones; float, of the model's own dtype."""
        shape = self.data_shape
        check_float_tensor(name, x, dtype=next(self.parameters()).dtype)
        if x.dim() == 2 and x.shape[1] == math.prod(shape):
            return x.view(x.shape[0], *shape)  # (b, d) -> (b, c, H, W)
        if x.dim() == 1 + len(shape) and tuple(x.shape[1:]) == shape:
            return x
        raise ValueError(
            f"{name}: expected images of shape (b, {', '.join(map(str, shape))}) or (b, {math.prod(shape)}) "
            f"for this {type(self).__name__}, got shape {tuple(x.shape)}"
        )

    def _check_z(self, z: Tensor) -> None:
        check_float_tensor("z", z, dtype=next(self.parameters()).dtype)
        if z.dim() < 2 or z.shape[-1] != self.config.z_dim:
            raise ValueError(f"z: expected codes of shape (..., b, {self.config.z_dim}), got shape {tuple(z.shape)}")

    def _decode_raw(self, z: Tensor) -> Tensor:
        """Run the decoder on ``z`` of shape ``(..., b, z_dim)``; return ``(..., b, *image_shape)``."""
        self._check_z(z)
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))  # (prod(lead), ...)
        return out.reshape(*lead, *self.data_shape)  # (..., b, c, H, W)

    def _output_is_logit(self) -> bool:
        """Whether the decoder's last layer produces logits that a sigmoid maps to grey levels."""
        raise NotImplementedError

    @torch.no_grad()
    def init_output_bias(self, x: Tensor) -> None:
        """Start the decoder at the data's mean: set the last layer's bias so that it outputs the mean of ``x``.

        With zero-mean weights the first outputs are then about the average image rather than grey
        0.5 everywhere, which spares training the first long descent of the reconstruction error.
        An MLP decoder has one bias per pixel and starts at the **mean image**; a convolutional one
        has one bias per channel and starts at the **mean grey level**. Through a sigmoid output the
        bias is the logit of that mean (clamped to [0.001, 0.999]); with an identity output, the mean.
        """
        last = [m for m in self.decoder.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d))][-1]
        if last.bias is None:
            raise TypeError("init_output_bias needs a decoder whose last layer has a bias")
        x = self.as_images(x)
        if len(x) == 0:
            raise ValueError("x: expected at least one image to take the mean of, got an empty batch")
        check_range("x", x, 0.0, 1.0) if self._output_is_logit() else check_finite("x", x)
        mean = x.mean(0) if isinstance(last, nn.Linear) else x.mean(dim=(0, 2, 3))  # (c, H, W) or (c,)
        if self._output_is_logit():
            mean = torch.logit(mean.clamp(1e-3, 1 - 1e-3))
        last.bias.copy_(mean.flatten())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


# --------------------------------------------------------------------------- autoencoder
class Autoencoder(_ImageModel):
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
        self.config = _config_from(AEConfig, config, overrides)
        self.encoder = _encoder(self.config, self.config.z_dim)
        self.decoder = _decoder(self.config)

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


class VAE(_ImageModel):
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
        self.config = _config_from(VAEConfig, config, overrides)
        self.encoder = _encoder(self.config, 2 * self.config.z_dim)
        self.decoder = _decoder(self.config)
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
        self.config = cfg = _config_from(SRConfig, config, overrides)
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
        self.config = cfg = _config_from(ClassifierConfig, config, overrides)
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
