"""The networks the models are built from: MLPs, a small convolutional encoder and decoder, and :class:`ImageModel`.

:class:`ImageModel` is the base of the autoencoder and the VAE: it checks image shapes at the door
and reshapes flattened inputs. :func:`encoder_for` and :func:`decoder_for` build the networks a
config asks for (``arch="mlp"`` or ``"conv"``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from .configs import ACTIVATIONS, AEConfig, VAEConfig
from .guards import check_finite, check_float_tensor, check_range

__all__ = ["mlp", "ConvEncoder", "ConvDecoder", "encoder_for", "decoder_for", "ImageModel"]


def mlp(widths: list[int], activation: str) -> nn.Sequential:
    """Linear layers with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
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


class ConvDecoder(nn.Module):
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


def encoder_for(cfg, out_dim: int) -> nn.Module:
    if cfg.arch == "conv":
        return ConvEncoder(cfg.image_shape, cfg.hidden, out_dim, cfg.activation)
    d = math.prod(cfg.image_shape)
    return nn.Sequential(nn.Flatten(), mlp([d, *cfg.hidden, out_dim], cfg.activation))


def decoder_for(cfg) -> nn.Module:
    if cfg.arch == "conv":
        return ConvDecoder(cfg.image_shape, cfg.hidden, cfg.z_dim, cfg.activation)
    d = math.prod(cfg.image_shape)
    return mlp([cfg.z_dim, *reversed(cfg.hidden), d], cfg.activation)


class ImageModel(nn.Module):
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
