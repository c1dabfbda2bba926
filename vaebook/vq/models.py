r"""The models of :mod:`vaebook.vq`: :class:`VQVAE` and its loss, and :class:`GridGaussianVAE`, the Gaussian VAE with the
same grid of codes that chapter 15 compares it with, and its loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import draws, stats
from ..estimators import RateDistortion
from ..guards import check_float_tensor, check_int, check_int_tuple, check_number, check_tensor, describe
from ..losses import LossOutput
from .quantize import VectorQuantizer, VQTerms, code_usage, nearest_code


# --------------------------------------------------------------------------- the configuration
@dataclass(frozen=True)
class VQVAEConfig:
    r"""A VQ-VAE for 28 x 28 images: two stride-2 convolutions to a 7 x 7 grid of ``code_dim`` vectors, each quantized.

    - ``codebook_size``: :math:`M`, the number of entries; the rate is :math:`49 \log M` nats per image.
    - ``code_dim``: the width of each entry (the book writes no letter for it: :math:`D` is the distortion).
    - ``channels``: the widths of the two convolutions (and of the decoder's mirror).
    - ``commitment``: :math:`\beta_c`, the weight of the commitment term (0.25 in the paper).
    - ``ema``: the decay :math:`\gamma` of the moving-average codebook; ``0`` trains the codebook by
      its loss term instead (the paper's first variant).
    - ``restart_every``: every so many training steps, each entry that no vector chose since the
      last restart is moved onto a randomly chosen encoder output of the batch; ``0`` never.
    """

    codebook_size: int = 64
    code_dim: int = 8
    channels: tuple[int, int] = (16, 32)
    commitment: float = 0.25
    ema: float = 0.0
    restart_every: int = 0
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        check_int("VQVAEConfig.codebook_size", self.codebook_size, min=2)
        check_int("VQVAEConfig.code_dim", self.code_dim, min=1)
        check_int_tuple("VQVAEConfig.channels", self.channels, length=2)
        check_number("VQVAEConfig.commitment", self.commitment, min=0.0)
        check_number("VQVAEConfig.ema (a decay in [0, 1); 0: no moving averages)", self.ema, min=0.0, max=0.9999)
        check_int("VQVAEConfig.restart_every (steps; 0: never)", self.restart_every, min=0)
        shape = check_int_tuple("VQVAEConfig.image_shape", self.image_shape, length=3)
        if shape[1] % 4 or shape[2] % 4:
            raise ValueError(f"VQVAEConfig.image_shape: expected a height and width divisible by 4 (two stride-2 "
                             f"convolutions), got {shape}")


# --------------------------------------------------------------------------- the model
def _grid_encoder(cfg: VQVAEConfig, out_channels: int) -> nn.Sequential:
    c = cfg.image_shape[0]
    c1, c2 = cfg.channels
    return nn.Sequential(
        nn.Conv2d(c, c1, 3, stride=2, padding=1), nn.ReLU(),  # (b, c1, H/2, W/2)
        nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),  # (b, c2, H/4, W/4)
        nn.Conv2d(c2, out_channels, 1),  # (b, out, H/4, W/4)
    )


def _grid_decoder(cfg: VQVAEConfig) -> nn.Sequential:
    # a sub-pixel decoder (chapter 3's pixel shuffle): each 4 x 4 patch of logits from the codes around it;
    # on a CPU it trains faster than transposed convolutions
    c, c2 = cfg.image_shape[0], cfg.channels[1]
    return nn.Sequential(
        nn.Conv2d(cfg.code_dim, 2 * c2, 3, padding=1), nn.ReLU(),  # (b, 2 c2, H/4, W/4)
        nn.Conv2d(2 * c2, 16 * c, 1),  # (b, 16 c, H/4, W/4)
        nn.PixelShuffle(4),  # (b, c, H, W): logits
    )


def _as_images(cfg: VQVAEConfig, x: Tensor, dtype: torch.dtype) -> Tensor:
    shape = cfg.image_shape
    check_float_tensor("x", x, dtype=dtype)
    if x.dim() == 2 and x.shape[1] == math.prod(shape):
        return x.view(x.shape[0], *shape)  # (b, d) -> (b, c, H, W)
    if x.dim() == 4 and tuple(x.shape[1:]) == shape:
        return x
    raise ValueError(f"x: expected images of shape (b, {', '.join(map(str, shape))}) or (b, {math.prod(shape)}), "
                     f"got shape {tuple(x.shape)}")


def _config(config, overrides: dict) -> VQVAEConfig:
    if config is not None and not isinstance(config, VQVAEConfig):
        raise TypeError(f"config: expected a VQVAEConfig, got {describe(config)}")
    return VQVAEConfig(**{**(config.__dict__ if config else {}), **overrides})


class VQVAEOutput(NamedTuple):
    x_logits: Tensor  # (b, c, H, W)
    indices: Tensor  # (b, H/4, W/4)
    terms: VQTerms  # per image: (b,)


class VQVAE(nn.Module):
    r"""A small convolutional VQ-VAE with a Bernoulli decoder: ``encode`` to a grid of vectors, quantize, ``decode``.

    Encoder: ``Conv(c -> c1, stride 2) -> Conv(c1 -> c2, stride 2) -> Conv1x1(c2 -> code_dim)``: a grid of
    ``(H/4) x (W/4)`` vectors (7 x 7 for digits). Decoder: ``Conv(code_dim -> 2 c2) -> Conv1x1(2 c2 -> 16 c)``,
    then a pixel shuffle that turns each position's 16 c channels into a 4 x 4 patch of logits.
    ``VQVAE(codebook_size=..., ...)`` overrides :class:`VQVAEConfig`'s fields.

    Book: eq-vq-loss
    """

    def __init__(self, config: VQVAEConfig | None = None, **overrides):
        super().__init__()
        self.config = cfg = _config(config, overrides)
        self.encoder = _grid_encoder(cfg, cfg.code_dim)
        self.quantizer = VectorQuantizer(cfg.codebook_size, cfg.code_dim, ema=cfg.ema, restart_every=cfg.restart_every)
        self.decoder = _grid_decoder(cfg)

    @property
    def grid(self) -> tuple[int, int]:
        """The shape of the grid of codes, ``(H/4, W/4)``."""
        return self.config.image_shape[1] // 4, self.config.image_shape[2] // 4

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def rate(self) -> float:
        r"""Nats per image under the uniform prior over the codebook: :math:`\log M` per grid position (Book: eq-vq-rate)."""
        h, w = self.grid
        return h * w * math.log(self.codebook_size)

    def as_images(self, x: Tensor) -> Tensor:
        """``x`` as ``(b, c, H, W)``: images, or flattened ones, of the model's dtype."""
        return _as_images(self.config, x, next(self.parameters()).dtype)

    def encode(self, x: Tensor) -> Tensor:
        """The encoder's grid of vectors :math:`z_e`, shape ``(b, H/4, W/4, code_dim)``."""
        return self.encoder(self.as_images(x)).permute(0, 2, 3, 1)  # (b, code_dim, h, w) -> (b, h, w, code_dim)

    def codes(self, x: Tensor) -> Tensor:
        """The index of the nearest entry at each grid position, shape ``(b, H/4, W/4)``."""
        with torch.no_grad():
            return nearest_code(self.encode(x), self.quantizer.codebook)

    def decode_vectors(self, z: Tensor) -> Tensor:
        """Decoder logits from a grid of vectors ``(b, H/4, W/4, code_dim)``."""
        return self.decoder(z.permute(0, 3, 1, 2))  # (b, code_dim, h, w)

    def decode_codes(self, indices: Tensor) -> Tensor:
        """Decoder logits from a grid of indices ``(b, H/4, W/4)``."""
        check_tensor("indices", indices, dims=3)
        if indices.is_floating_point() or tuple(indices.shape[1:]) != self.grid:
            raise ValueError(f"indices: expected integer indices of shape (b, {self.grid[0]}, {self.grid[1]}), got "
                             f"{indices.dtype} of shape {tuple(indices.shape)}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.codebook_size):
            raise ValueError(f"indices: expected values from 0 to {self.codebook_size - 1}, got values from "
                             f"{indices.min().item()} to {indices.max().item()}")
        return self.decode_vectors(self.quantizer.codebook[indices])  # (b, h, w, code_dim) -> logits

    def forward(self, x: Tensor) -> VQVAEOutput:
        z_e = self.encode(x)  # (b, h, w, code_dim)
        b, h, w, d = z_e.shape
        out = self.quantizer(z_e.reshape(-1, d))  # (b*h*w, code_dim)
        x_logits = self.decode_vectors(out.z_q.view(b, h, w, d))
        terms = VQTerms(*(t.view(b, h * w).sum(1) for t in out.terms))  # (b,)
        return VQVAEOutput(x_logits, out.indices.view(b, h, w), terms)

    def distortion(self, x: Tensor) -> Tensor:
        r"""``-log p(x | z_q)`` per image, ``(b,)``, in nats: the distortion :math:`D` of the deterministic code (Book: eq-vq-rate)."""
        with torch.no_grad():
            x = self.as_images(x)
            return -stats.bernoulli_log_prob(x, self.decode_codes(self.codes(x)))

    def reconstruct(self, x: Tensor) -> Tensor:
        """The decoder's mean image for the codes of ``x``."""
        with torch.no_grad():
            return torch.sigmoid(self.decode_codes(self.codes(x)))


def _check_autoencoding(model, cls: type, kind: str, x: Tensor, target: Tensor) -> None:
    """What both losses of this module ask of ``fit``'s call: their own model, and images that are their own targets."""
    if not isinstance(model, cls):
        raise TypeError(f"model: expected a vaebook.vq.{cls.__name__}, got {describe(model)}")
    if target is not x and not torch.equal(target, x):
        raise ValueError(f"target: {kind} is trained to reproduce its input; pass images without separate targets")


@dataclass
class VQVAELoss:
    r"""What :func:`vaebook.fit` minimises for a :class:`VQVAE`: the batch mean of three terms per image.

    .. math:: L = -\log p(x\mid z_q) + \lVert \operatorname{sg}[z_e] - e\rVert^2 + \beta_c \lVert z_e - \operatorname{sg}[e]\rVert^2

    With ``ema > 0`` the codebook term is left out (the moving averages move the entries). Logged:
    ``recon`` (the first term), ``codebook``, ``commitment``, and ``perplexity`` of the batch's codes.

    Book: eq-vq-loss
    """

    def __call__(self, model: VQVAE, x: Tensor, target: Tensor) -> LossOutput:
        _check_autoencoding(model, VQVAE, "a VQ-VAE", x, target)
        x = model.as_images(x)
        out = model(x)
        recon = -stats.bernoulli_log_prob(x, out.x_logits)  # (b,)
        loss = recon + model.config.commitment * out.terms.commitment
        if model.config.ema == 0:
            loss = loss + out.terms.codebook
        usage = code_usage(out.indices, model.codebook_size)
        metrics = {"recon": recon.mean().detach(), "codebook": out.terms.codebook.mean().detach(),
                   "commitment": out.terms.commitment.mean().detach(), "perplexity": torch.tensor(usage.perplexity)}
        return LossOutput(loss.mean(), metrics)


class GridGaussianVAE(nn.Module):
    r"""The VQ-VAE's twin with continuous codes: the same networks, a Gaussian :math:`q` at each grid position.

    The encoder's last layer gives :math:`2D` channels, :math:`\mu` and :math:`\log\sigma^2` of a
    diagonal Gaussian over each position's ``code_dim`` coordinates; the prior is :math:`\mathcal N(0, I)`;
    the decoder is :class:`VQVAE`'s. Only the code differs from the VQ-VAE with the same ``config``
    (whose codebook fields it ignores). Train it with :class:`GridVAELoss`.

    Book: eq-rate-distortion
    """

    def __init__(self, config: VQVAEConfig | None = None, **overrides):
        super().__init__()
        self.config = cfg = _config(config, overrides)
        self.encoder = _grid_encoder(cfg, 2 * cfg.code_dim)
        self.decoder = _grid_decoder(cfg)

    def as_images(self, x: Tensor) -> Tensor:
        """``x`` as ``(b, c, H, W)``: images, or flattened ones, of the model's dtype."""
        return _as_images(self.config, x, next(self.parameters()).dtype)

    def rate_distortion(self, x: Tensor, eps: Tensor | None = None, generator: torch.Generator | None = None) -> RateDistortion:
        r"""Distortion :math:`-\log p(x\mid z)` for one draw :math:`z \sim q`, and rate :math:`\mathrm{KL}(q\,\Vert\,p)` in closed form, per image.

        ``eps``: the standard normal noise, ``(b, h, w, code_dim)``, or drawn from ``generator``.
        """
        x = self.as_images(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (b, code_dim, h, w) each
        if eps is not None:
            check_float_tensor("eps", eps)
            if eps.shape != (mu.shape[0], *mu.shape[2:], mu.shape[1]):
                raise ValueError(f"eps: expected shape {(mu.shape[0], *mu.shape[2:], mu.shape[1])}, got {tuple(eps.shape)}")
            eps = eps.permute(0, 3, 1, 2)  # (b, h, w, code_dim) -> (b, code_dim, h, w)
        else:
            eps = draws.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = stats.reparameterize(mu, logvar, eps)  # (b, code_dim, h, w)
        distortion = -stats.bernoulli_log_prob(x, self.decoder(z))  # (b,)
        rate = stats.gaussian_kl(mu.flatten(1), logvar.flatten(1))  # (b,)
        return RateDistortion(distortion, rate)


@dataclass
class GridVAELoss:
    r"""The batch mean of :math:`D + \beta R` for a :class:`GridGaussianVAE`, or, with ``target_rate``, of :math:`D + |\bar R - R^*|`.

    ``target_rate`` (:math:`R^*`, nats per image) holds the batch's average rate :math:`\bar R` near a
    chosen value, so that the model can be compared with another at the same rate (the penalty of
    Alemi et al., 2018, on the rate alone); ``beta`` is then unused. Logged: ``distortion``, ``rate``.

    Book: eq-rate-distortion
    """

    beta: float = 1.0
    target_rate: float | None = None

    def __post_init__(self) -> None:
        self.beta = check_number("beta", self.beta, min=0.0)
        if self.target_rate is not None:
            self.target_rate = check_number("target_rate (nats per image)", self.target_rate, min=0.0)

    def __call__(self, model: GridGaussianVAE, x: Tensor, target: Tensor) -> LossOutput:
        _check_autoencoding(model, GridGaussianVAE, "a VAE", x, target)
        rd = model.rate_distortion(x)
        d, r = rd.distortion.mean(), rd.rate.mean()
        loss = d + (r - self.target_rate).abs() if self.target_rate is not None else d + self.beta * r
        return LossOutput(loss, {"distortion": d.detach(), "rate": r.detach()})
