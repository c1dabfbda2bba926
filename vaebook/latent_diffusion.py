r"""Latent diffusion (Rombach et al., 2022): a diffusion model trained on a VAE's latent grid, not on pixels.

The two stages are the library's own pieces; this module is only the glue between them.

- Stage 1, the autoencoder: a :class:`vaebook.vq.GridGaussianVAE`, a convolutional VAE whose code
  is a grid (here :math:`7 \times 7` positions of ``code_dim`` numbers), trained with
  :class:`vaebook.vq.GridVAELoss` and a KL weight :math:`\beta` far below 1. :func:`encode` gives
  the posterior means, :func:`decode` the decoder's Bernoulli means.
- The scale: :func:`latent_scale` measures :math:`1/\hat\sigma_{\mathbf z}` on the data's latents;
  :func:`scale_latents` and :func:`unscale_latents` multiply and divide by it.
- Stage 2, diffusion in the latent: a :class:`vaebook.diffusion.DDPM` with ``image_shape`` the
  latent grid's, trained with :class:`LatentDiffusionLoss` on the scaled latents (chapter 13's
  loss without its conversion of grey levels to :math:`[-1, 1]`: the latents are already centred
  near 0 with unit variance).
- :class:`LatentDiffusion` holds the two stages and the scale, and samples: noise, the DDPM's
  ancestral sampler, unscale, decode.

Book: chapter 16 (16_latent_diffusion)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import draws
from .diffusion import DDPM, ddpm_sample
from .diffusion.inputs import check_batch, check_generator, check_values
from .guards import check_float_tensor, check_int, check_number, describe
from .losses import LossOutput
from .objectives import reconstruction_error
from .vq import GridGaussianVAE

__all__ = [
    "encode", "decode", "latent_scale", "scale_latents", "unscale_latents", "init_latent_output_bias",
    "LatentDiffusionLoss", "LatentDiffusion",
]


def _check_vae(vae) -> GridGaussianVAE:
    if not isinstance(vae, GridGaussianVAE):
        raise TypeError(f"vae: expected a vaebook.vq.GridGaussianVAE (the first stage), got {describe(vae)}")
    return vae


def _check_latents(name: str, z: Tensor, vae: GridGaussianVAE) -> Tensor:
    check_float_tensor(name, z, dtype=next(vae.parameters()).dtype)
    c = vae.config.code_dim
    h, w = vae.config.image_shape[1] // 4, vae.config.image_shape[2] // 4
    if z.dim() != 4 or tuple(z.shape[1:]) != (c, h, w):
        raise ValueError(f"{name}: expected latent grids of shape (b, {c}, {h}, {w}), got shape {tuple(z.shape)}")
    return z


@torch.no_grad()
def encode(vae: GridGaussianVAE, x: Tensor, batch_size: int = 2000) -> Tensor:
    r"""The posterior means :math:`\mu(x)` of the first stage, ``(b, code_dim, H/4, W/4)``: the latents that diffusion models.

    ``x``: images ``(b, c, H, W)`` (or flattened) in the model's dtype; encoded ``batch_size`` at a time.
    The means, not draws of :math:`q`: with a small KL weight its standard deviations are small
    beside the means' spread (Rombach et al. draw from :math:`q`; the difference is that noise).

    Book: eq-ldm-first-stage
    """
    _check_vae(vae)
    batch_size = check_int("batch_size", batch_size, min=1)
    x = vae.as_images(x)
    was_training = vae.training
    vae.eval()
    try:
        mus = [vae.encoder(x[i:i + batch_size]).chunk(2, dim=1)[0] for i in range(0, len(x), batch_size)]  # (b, code_dim, h, w) each
    finally:
        vae.train(was_training)
    return torch.cat(mus)


@torch.no_grad()
def decode(vae: GridGaussianVAE, z: Tensor) -> Tensor:
    r"""The decoder's Bernoulli means :math:`\sigma(d_\theta(z))`, images ``(b, c, H, W)`` in [0, 1], for latent grids ``z``."""
    _check_vae(vae)
    _check_latents("z", z, vae)
    return torch.sigmoid(vae.decoder(z))


def latent_scale(z: Tensor) -> float:
    r"""The latent scale :math:`1/\hat\sigma_{\mathbf z}`, one number for every coordinate of every position.

    .. math::

        \hat\sigma_{\mathbf z}^2 = \frac{1}{n_z}\sum_{i=1}^{n_z} (z_i - \bar z)^2,

        \bar z = \frac{1}{n_z}\sum_{i=1}^{n_z} z_i,

    over all :math:`n_z` numbers of the latents ``z`` (any shape, at least two numbers), as Rombach
    et al. rescale their KL-regularized latents. :func:`scale_latents` then multiplies by it,
    which gives the latents unit variance; it does not centre them.

    Book: eq-latent-scale
    """
    check_values("z", z)
    if z.numel() < 2:
        raise ValueError(f"z: expected at least two numbers to measure a spread, got shape {tuple(z.shape)}")
    sigma = z.double().std(unbiased=False).item()  # one spread for all coordinates, computed in float64
    if not sigma > 0:
        raise ValueError("z: expected latents that vary, got every number equal (standard deviation 0): no scale makes them unit variance")
    return 1.0 / sigma


def _check_scale(scale) -> float:
    return check_number("scale", scale, min=0.0, min_open=True)  # finite and positive


def scale_latents(z: Tensor, scale: float) -> Tensor:
    r"""The latents as the diffusion model sees them: :math:`\mathbf w = \mathbf z/\hat\sigma_{\mathbf z}`, ``z`` times ``scale``. Book: eq-latent-scale"""
    check_values("z", z)
    return z * _check_scale(scale)


def unscale_latents(z_scaled: Tensor, scale: float) -> Tensor:
    r"""Back to the decoder's scale: ``z_scaled / scale``, the inverse of :func:`scale_latents`."""
    check_values("z_scaled", z_scaled)
    return z_scaled / _check_scale(scale)


@torch.no_grad()
def init_latent_output_bias(ddpm: DDPM, z_scaled: Tensor) -> None:
    """Start a DDPM that predicts the clean latent (``predict="x0"``) at the mean of the latents ``z_scaled``.

    The latent counterpart of :meth:`vaebook.diffusion.DDPM.init_output_bias`, which takes grey
    levels in [0, 1] and moves them to [-1, 1]; latents are used as they are
    (:meth:`~vaebook.diffusion.DDPM.init_output_mean` with ``signed=False``).
    """
    if not isinstance(ddpm, DDPM):
        raise TypeError(f"ddpm: expected a vaebook.diffusion.DDPM, got {describe(ddpm)}")
    ddpm.init_output_mean(z_scaled, signed=False, name="z_scaled")


@dataclass
class LatentDiffusionLoss:
    r"""Chapter 13's diffusion loss on scaled latents, for :func:`vaebook.fit`: denoising at a random step per latent.

    For a batch of scaled latents :math:`z_0` it draws :math:`t` uniformly from 1 to T and
    :math:`\epsilon \sim \mathcal N(0, I)` (from the CPU's global generator, as
    :class:`vaebook.diffusion.DiffusionLoss` does), forms :math:`z_t = \sqrt{\bar\alpha_t}\,z_0 + \sqrt{1-\bar\alpha_t}\,\epsilon`,
    and averages :math:`\lVert z_0 - \hat z_0(z_t, t)\rVert^2` over the batch, per number. It is
    ``DiffusionLoss(weighting="x0")`` without the conversion of grey levels to [-1, 1]. Logged: ``mse``.

    Book: eq-diffusion-loss
    """

    def __call__(self, model: DDPM, z0: Tensor, target: Tensor) -> LossOutput:
        if not isinstance(model, DDPM):
            raise TypeError(f"model: expected a vaebook.diffusion.DDPM, got {describe(model)}")
        if target is not z0 and (target.shape != z0.shape or not torch.equal(target, z0)):
            raise ValueError("target: a diffusion model is trained on latents alone; pass latents without separate targets")
        check_batch("z0", z0)
        b = z0.shape[0]
        t = draws.randint(1, model.config.T + 1, (b,))  # on the CPU, whatever the model's device
        eps = draws.randn(z0.shape, dtype=z0.dtype, device=z0.device)
        z_t = model.schedule.q_sample(z0, t, eps)  # eq-forward-marginal
        err = reconstruction_error(z0, model.denoise(z_t, t))  # (b,): the denoising error at step t
        loss = err.mean() / z0[0].numel()  # per number of the latent
        return LossOutput(loss, {"mse": loss.detach()})


@dataclass
class LatentDiffusion:
    r"""A latent diffusion model: the first stage ``vae``, the ``scale`` :math:`1/\hat\sigma_{\mathbf z}`, and the second stage ``ddpm`` on the scaled means.

    ``sample(n, steps, generator)`` draws scaled latents by ancestral sampling (without clipping:
    latents have no fixed range), divides them by ``scale`` and decodes: images in [0, 1].

    Book: eq-latent-diffusion
    """

    vae: GridGaussianVAE
    ddpm: DDPM
    scale: float

    def __post_init__(self) -> None:
        _check_vae(self.vae)
        if not isinstance(self.ddpm, DDPM):
            raise TypeError(f"ddpm: expected a vaebook.diffusion.DDPM (the second stage), got {describe(self.ddpm)}")
        self.scale = _check_scale(self.scale)
        cfg = self.vae.config
        grid = (cfg.code_dim, cfg.image_shape[1] // 4, cfg.image_shape[2] // 4)
        if self.ddpm.image_shape != grid:
            raise ValueError(f"ddpm: expected a DDPM on the first stage's latent grid, image_shape {grid}, got {self.ddpm.image_shape}")

    def encode(self, x: Tensor) -> Tensor:
        """Images to the latents the DDPM models: ``scale`` times the posterior means, ``(b, code_dim, H/4, W/4)``."""
        return scale_latents(encode(self.vae, x), self.scale)

    def decode(self, z_scaled: Tensor) -> Tensor:
        """Scaled latents back to images in [0, 1]: the decoder's means at ``z_scaled / scale``."""
        return decode(self.vae, unscale_latents(z_scaled, self.scale))

    @torch.no_grad()
    def sample_latents(self, n: int, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` scaled latents from the DDPM, ``(n, *ddpm.image_shape)``, on ``steps`` of its T steps (all by default)."""
        n = check_int("n", n, min=1)
        check_generator(generator)
        was_training = self.ddpm.training
        self.ddpm.eval()
        try:
            return ddpm_sample(self.ddpm, self.ddpm.schedule, (n, *self.ddpm.image_shape), steps=steps, clip=False,
                               generator=generator, device=self.ddpm.inp.weight.device)
        finally:
            self.ddpm.train(was_training)

    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images in [0, 1], ``(n, *vae.config.image_shape)``: latents from the DDPM, unscaled, decoded."""
        return self.decode(self.sample_latents(n, steps, generator))
