r"""The denoising network: :class:`DDPMConfig` and :class:`DDPM`, an MLP told the time step."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from ..guards import (
    check_choice,
    check_float_tensor,
    check_int,
    describe,
)
from .inputs import check_batch, check_t, per_example
from .samplers import ddpm_sample
from .schedules import NOISE_SCHEDULES, NoiseSchedule, to_signed, to_unit

__all__ = ["PREDICTS", "DDPMConfig", "DDPM"]


PREDICTS = ("x0", "eps")


@dataclass(frozen=True)
class DDPMConfig:
    r"""A small DDPM: ``T`` steps of a ``schedule``, and an MLP that denoises.

    The network flattens :math:`x_t`, adds an embedding of :math:`t` (sinusoidal features, then an
    MLP), and runs ``blocks`` residual blocks of width ``hidden`` (SiLU activations), each told
    :math:`t` again. An MLP is the cheapest network that does the job on a CPU for small images;
    DDPMs on larger images use convolutional U-Nets.

    ``predict``: what the network outputs, the clean image :math:`\hat x_0(x_t, t)` (``"x0"``: a
    denoiser, as in chapter 2, told the noise level) or the noise :math:`\hat\epsilon_\theta(x_t, t)`
    (``"eps"``, Ho et al.'s choice). Either estimate gives the other, through
    :math:`x_t = \sqrt{\bar\alpha_t}\,\hat x_0 + \sqrt{1-\bar\alpha_t}\,\hat\epsilon`
    (:meth:`NoiseSchedule.predict_x0`), so the model answers both.
    """

    image_shape: tuple[int, int, int] = (1, 14, 14)
    T: int = 100
    schedule: str = "linear"
    hidden: int = 384
    blocks: int = 1
    time_features: int = 64
    predict: str = "x0"

    def __post_init__(self) -> None:
        shape = self.image_shape
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise ValueError(f"DDPMConfig.image_shape: expected (channels, H, W), got {shape!r}")
        check_int("DDPMConfig.T", self.T, min=2)
        check_choice("DDPMConfig.schedule", self.schedule, NOISE_SCHEDULES)
        check_int("DDPMConfig.hidden", self.hidden, min=1)
        check_int("DDPMConfig.blocks", self.blocks, min=0)
        check_int("DDPMConfig.time_features", self.time_features, min=2)
        check_choice("DDPMConfig.predict", self.predict, PREDICTS)
        if self.time_features % 2:
            raise ValueError(f"DDPMConfig.time_features: expected an even number (sines and cosines), got {self.time_features}")


class _Block(nn.Module):
    """A residual MLP block that is told the time step: h + W2 silu(W1 silu(h) + e(t))."""

    def __init__(self, width: int):
        super().__init__()
        self.inner = nn.Linear(width, width)
        self.time = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)
        self.act = nn.SiLU()

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        return h + self.outer(self.act(self.inner(self.act(h)) + self.time(e)))


class DDPM(nn.Module):
    r"""A denoising diffusion probabilistic model (Ho et al., 2020): a fixed noise schedule and a noise predictor.

    - ``schedule``: its :class:`NoiseSchedule` (``config.T`` steps), fixed: the "encoder"
      :math:`q(x_{1:T}\mid x_0)` has no parameters.
    - ``denoise(x_t, t)``: the estimate :math:`\hat x_0(x_t, t)` of the clean image, for ``x_t`` in the
      model's scale (:math:`[-1, 1]` plus noise), shape ``(b, *image_shape)``, and integer steps ``t`` (b,);
    - ``forward(x_t, t)``: the predicted noise :math:`\hat\epsilon_\theta(x_t, t)`, the same estimate
      seen from the other side, :math:`x_t = \sqrt{\bar\alpha_t}\,\hat x_0 + \sqrt{1-\bar\alpha_t}\,\hat\epsilon`.
    - ``sample(n, steps=None, generator=None)``: images in [0, 1] by ancestral sampling
      (:func:`ddpm_sample`), on all T steps or on ``steps`` of them.

    Train it with ``vb.fit(ddpm, images, loss=DiffusionLoss())`` on images in [0, 1].

    Book: eq-reverse-process
    """

    freqs: Tensor  # the time embedding's frequencies, a buffer

    def __init__(self, config: DDPMConfig | None = None, **overrides):
        super().__init__()
        if config is not None and not isinstance(config, DDPMConfig):
            raise TypeError(f"config: expected a DDPMConfig, got {describe(config)}")
        base = config if config is not None else DDPMConfig()
        self.config = cfg = DDPMConfig(**{**base.__dict__, **overrides}) if overrides else base
        self.schedule = NoiseSchedule.named(cfg.schedule, cfg.T)
        d, w = math.prod(cfg.image_shape), cfg.hidden
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_features, w), nn.SiLU(), nn.Linear(w, w))
        self.inp = nn.Linear(d, w)
        self.blocks = nn.ModuleList([_Block(w) for _ in range(cfg.blocks)])
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(w, d))
        half = cfg.time_features // 2
        # frequencies from 1 to 1/1000 per step, as in the Transformer's positions (Vaswani et al., 2017)
        self.register_buffer("freqs", torch.exp(-math.log(1000.0) * torch.arange(half) / half), persistent=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    def _time_features(self, t: Tensor) -> Tensor:
        angle = t.to(self.freqs.dtype).unsqueeze(1) * (1000.0 / self.config.T) * self.freqs  # (b, half)
        return torch.cat([angle.sin(), angle.cos()], dim=1)  # (b, time_features)

    def _network(self, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """The network's raw output (x0 or eps, as configured), and the checked steps."""
        check_float_tensor("x_t", x_t, dtype=self.inp.weight.dtype)
        shape = self.image_shape
        if x_t.dim() != 4 or tuple(x_t.shape[1:]) != shape:
            raise ValueError(f"x_t: expected images of shape (b, {', '.join(map(str, shape))}), got shape {tuple(x_t.shape)}")
        t = check_t("t", t, self.config.T, x_t.shape[0]).to(x_t.device)
        e = self.time_mlp(self._time_features(t))  # (b, hidden)
        h = self.inp(x_t.flatten(1)) + e  # (b, hidden)
        for block in self.blocks:
            h = block(h, e)
        return self.out(h).view_as(x_t), t  # (b, *image_shape)

    @torch.no_grad()
    def init_output_bias(self, x: Tensor) -> None:
        """Start the denoiser at the mean of the images ``x`` (in [0, 1]): its first guess at any noise level.

        With ``predict="x0"`` the untrained network then outputs roughly the mean image, the best
        constant denoiser, rather than grey noise, as chapter 2's autoencoder starts at the mean grey level.
        """
        self.init_output_mean(x, signed=True)

    @torch.no_grad()
    def init_output_mean(self, x0: Tensor, *, signed: bool, name: str = "x") -> None:
        """Set the output layer's bias to the mean of the clean examples ``x0`` (``predict="x0"`` only).

        ``signed=True``: ``x0`` are images in [0, 1], moved to the network's [-1, 1] first (what
        :meth:`init_output_bias` does); ``False``: ``x0`` are already on the network's scale, such as
        chapter 16's scaled latents. ``name`` is the argument that errors name.
        """
        check_batch(name, x0)
        if tuple(x0.shape[1:]) != self.image_shape:
            raise ValueError(f"{name}: expected examples of shape (b, {', '.join(map(str, self.image_shape))}), got shape {tuple(x0.shape)}")
        if self.config.predict != "x0":
            raise ValueError(f"predict: the output is the clean example only with predict='x0', got predict={self.config.predict!r}")
        last = self.out[1]
        assert isinstance(last, nn.Linear)
        last.bias.copy_((to_signed(x0) if signed else x0).mean(0).flatten().to(last.bias))

    def denoise(self, x_t: Tensor, t: Tensor) -> Tensor:
        r"""The estimate :math:`\hat x_0(x_t, t)` of the clean image: chapter 2's denoiser, at noise level t."""
        out, t = self._network(x_t, t)
        if self.config.predict == "x0":
            return out
        return self.schedule.predict_x0(x_t, out, t.cpu())

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        r"""The predicted noise :math:`\hat\epsilon_\theta(x_t, t)`, shape of ``x_t``."""
        out, t = self._network(x_t, t)
        if self.config.predict == "eps":
            return out
        ab = per_example(self.schedule.alpha_bars[t.cpu()], x_t)  # (b, 1, 1, 1)
        return (x_t - ab.sqrt() * out) / (1 - ab).sqrt()  # x_t = sqrt(ab) x0 + sqrt(1 - ab) eps, solved for eps

    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None, clip: bool = True) -> Tensor:
        """``n`` images in [0, 1], ``(n, *image_shape)``: :func:`ddpm_sample` on ``steps`` of the T steps (all by default)."""
        n = check_int("n", n, min=1)
        was_training = self.training
        self.eval()
        try:
            x = ddpm_sample(self, self.schedule, (n, *self.image_shape), steps=steps, clip=clip, generator=generator,
                            device=self.inp.weight.device)
        finally:
            self.train(was_training)
        return to_unit(x)
