"""The models' configs: frozen dataclasses that say how each model is built, and what a checkpoint stores.

:class:`ModelConfig` gives each config its argument checks and its ``to_dict``/``from_dict`` (which
:mod:`vaebook.checkpoints` uses); :func:`config_from` builds a model's config from a config and keyword
overrides. The models themselves are in :mod:`vaebook.models`, built from these by :mod:`vaebook.networks`.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from . import likelihoods
from .guards import check_choice, check_int, check_int_tuple, check_positive
from .priors import PRIORS

__all__ = ["ACTIVATIONS", "ARCHS", "ModelConfig", "AEConfig", "VAEConfig", "SRConfig", "ClassifierConfig", "check_conv_shape", "config_from"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "linear": nn.Identity,
}
ARCHS = ("mlp", "conv")


class ModelConfig:
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
class AEConfig(ModelConfig):
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
            check_conv_shape(self)

    @property
    def output_kind(self) -> str:
        if self.output != "auto":
            return self.output
        return "identity" if self.activation == "linear" else "sigmoid"


@dataclass(frozen=True)
class VAEConfig(ModelConfig):
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
            check_conv_shape(self)


@dataclass(frozen=True)
class SRConfig(ModelConfig):
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
class ClassifierConfig(ModelConfig):
    """A small convolutional digit classifier (the sample-realism scorer's network)."""

    channels: tuple[int, int] = (16, 32)
    hidden: int = 64
    n_classes: int = 10

    def __post_init__(self) -> None:
        self._check_widths("channels", self.channels, length=2)
        self._check_positive_int("hidden", self.hidden)
        self._check_positive_int("n_classes", self.n_classes)


def check_conv_shape(cfg) -> None:
    _, h, w = cfg.image_shape
    if h % 4 or w % 4:
        raise ValueError(f"arch='conv' needs image H and W divisible by 4, got {cfg.image_shape}")
    if len(cfg.hidden) != 2:
        raise ValueError(f"arch='conv' takes two channel counts in hidden, e.g. (32, 64); got {cfg.hidden}")


def config_from(cls, config, overrides: dict):
    if config is None:
        return cls.from_dict(overrides)
    if not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    if overrides:
        return cls.from_dict({**config.to_dict(), **overrides})
    return config
