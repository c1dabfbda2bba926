r"""Discrete codes: the vector-quantized VAE (VQ-VAE) of van den Oord et al. (2017), small enough for a CPU minute.

An encoder maps an image to a grid of vectors :math:`z_e`; each is replaced by the nearest of
:math:`M` codebook entries :math:`e_1, \dots, e_M`; the decoder reconstructs the image from the
entries. Nothing here is differentiable through the choice of entry, so the gradient *skips* the
quantizer (the straight-through estimator), and two extra terms train the codebook and keep the
encoder near it.

- pure tensor functions: :func:`nearest_code`, :func:`straight_through`, :func:`vq_terms`,
  :func:`ema_codebook_update`, :func:`code_usage`;
- :class:`VectorQuantizer`, the layer (codebook by its loss or by moving averages, dead codes restarted);
- :class:`VQVAE` (a small convolutional model for 28 x 28 digits, a 7 x 7 grid of codes) and
  :class:`VQVAELoss`, what :func:`vaebook.fit` minimises for it;
- :class:`CodePrior`, a categorical distribution per grid position, fitted by counting, to sample from.

The codebook size is :math:`M` in the book (:math:`K` counts importance samples there).

Book: chapter 15 (15_discrete_codes)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import draws, stats
from .guards import check_float_tensor, check_int, check_int_tuple, check_number, check_tensor, describe
from .estimators import RateDistortion
from .losses import LossOutput

__all__ = [
    "nearest_code", "straight_through", "VQTerms", "vq_terms", "ema_codebook_update", "CodeUsage", "code_usage",
    "VQVAEConfig", "VectorQuantizer", "VQOutput", "VQVAE", "VQVAEOutput", "VQVAELoss", "GridGaussianVAE", "GridVAELoss",
    "CodePrior",
]


# --------------------------------------------------------------------------- tensor math
def _check_codebook(codebook: Tensor) -> Tensor:
    check_float_tensor("codebook", codebook, dims=2)
    if codebook.shape[0] < 1:
        raise ValueError("codebook: expected at least one entry, shape (M, code_dim) with M >= 1, got shape (0, ...)")
    return codebook


def _check_vectors(name: str, z: Tensor, codebook: Tensor) -> Tensor:
    check_float_tensor(name, z)
    if z.dim() < 1 or z.shape[-1] != codebook.shape[1]:
        raise ValueError(f"{name}: expected vectors of shape (..., {codebook.shape[1]}), the codebook's width, "
                         f"got shape {tuple(z.shape)}")
    return z


def nearest_code(z_e: Tensor, codebook: Tensor) -> Tensor:
    r"""The index of the nearest codebook entry for each vector: :math:`k = \arg\min_j \lVert z_e - e_j\rVert^2`.

    ``z_e``: ``(..., code_dim)``; ``codebook``: ``(M, code_dim)``. Returns integer indices of shape ``(...)``. The
    squared distance is expanded as :math:`\lVert z\rVert^2 - 2 z\cdot e_j + \lVert e_j\rVert^2`, one
    matrix product for all pairs; ties go to the lowest index.

    Book: eq-vq-nearest
    """
    _check_codebook(codebook)
    _check_vectors("z_e", z_e, codebook)
    flat = z_e.reshape(-1, codebook.shape[1])  # (n, code_dim)
    d2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.T + codebook.pow(2).sum(1)  # (n, M)
    return d2.argmin(1).reshape(z_e.shape[:-1])  # (...)


def straight_through(z_e: Tensor, z_q: Tensor) -> Tensor:
    r"""The straight-through estimator: the value of ``z_q``, the gradient of ``z_e``.

    .. math:: \tilde z = z_e + \operatorname{sg}[z_q - z_e]

    Forward, :math:`\tilde z = z_q`; backward, :math:`\partial \tilde z / \partial z_e = I`, so the
    decoder's gradient with respect to its input is passed to the encoder unchanged, as if the
    quantizer were the identity. No gradient reaches ``z_q`` this way.

    Book: eq-straight-through
    """
    check_float_tensor("z_e", z_e)
    check_float_tensor("z_q", z_q)
    if z_e.shape != z_q.shape:
        raise ValueError(f"z_q: expected the shape of z_e, {tuple(z_e.shape)}, got {tuple(z_q.shape)}")
    return z_e + (z_q - z_e).detach()


class VQTerms(NamedTuple):
    """The two extra terms of the VQ-VAE, per example ``(b,)``: they have the same value and different gradients."""

    codebook: Tensor  # ||sg[z_e] - e||^2: moves the entries towards the encoder's outputs
    commitment: Tensor  # ||z_e - sg[e]||^2: keeps the encoder's outputs near their entries


def vq_terms(z_e: Tensor, z_q: Tensor) -> VQTerms:
    r"""The codebook and commitment terms, summed over each example's grid positions and coordinates.

    .. math::
        \text{codebook} = \lVert \operatorname{sg}[z_e] - z_q\rVert^2, \qquad
        \text{commitment} = \lVert z_e - \operatorname{sg}[z_q]\rVert^2

    ``z_e`` and ``z_q``: ``(b, ...)``, the encoder's outputs and their nearest entries. The first
    trains only the codebook, the second only the encoder.

    Book: eq-vq-loss
    """
    check_float_tensor("z_e", z_e)
    check_float_tensor("z_q", z_q)
    if z_e.shape != z_q.shape or z_e.dim() < 2:
        raise ValueError(f"z_q: expected the shape of z_e, (b, ...) with a batch dimension, got z_e {tuple(z_e.shape)} "
                         f"and z_q {tuple(z_q.shape)}")
    codebook = (z_e.detach() - z_q).pow(2).flatten(1).sum(1)  # (b,)
    commitment = (z_e - z_q.detach()).pow(2).flatten(1).sum(1)  # (b,)
    return VQTerms(codebook, commitment)


def ema_codebook_update(
    counts: Tensor, sums: Tensor, z_e: Tensor, indices: Tensor, decay: float, eps: float = 1e-5
) -> tuple[Tensor, Tensor, Tensor]:
    r"""One step of the moving-average codebook: each entry becomes the running mean of the vectors assigned to it.

    With :math:`n_j` the number of vectors of the batch assigned to entry :math:`j` and :math:`s_j`
    their sum, and the decay :math:`\gamma`:

    .. math::
        \begin{aligned}
        N_j &\leftarrow \gamma N_j + (1-\gamma)\, n_j, \qquad m_j \leftarrow \gamma m_j + (1-\gamma)\, s_j, \\
        e_j &= \frac{m_j}{\tilde N_j},\quad \tilde N_j = \frac{N_j + \epsilon}{\sum_i N_i + M\epsilon}\sum_i N_i
        \end{aligned}

    (the Laplace smoothing :math:`\tilde N_j` keeps an entry that nothing chooses from dividing by
    zero). ``counts``: ``(M,)``; ``sums``: ``(M, code_dim)``; ``z_e``: ``(n, code_dim)``; ``indices``: ``(n,)``.
    Returns the new ``(counts, sums, codebook)``; the inputs are not modified.

    Book: eq-vq-loss (the variant that replaces its codebook term)
    """
    check_float_tensor("counts", counts, dims=1)
    check_float_tensor("sums", sums, dims=2)
    if sums.shape[0] != counts.shape[0]:
        raise ValueError(f"sums: expected one row per entry of counts, ({counts.shape[0]}, code_dim), got shape {tuple(sums.shape)}")
    _check_vectors("z_e", z_e, sums)
    check_tensor("indices", indices)
    if indices.dtype not in (torch.int64, torch.int32) or indices.shape != z_e.shape[:-1]:
        raise ValueError(f"indices: expected integer indices of shape {tuple(z_e.shape[:-1])}, got "
                         f"{indices.dtype} of shape {tuple(indices.shape)}")
    decay = check_number("decay", decay, min=0.0, max=1.0)
    eps = check_number("eps", eps, min=0.0)
    m = counts.shape[0]
    flat, idx = z_e.reshape(-1, sums.shape[1]).detach(), indices.reshape(-1).long()  # (n, code_dim), (n,)
    if len(idx) and (idx.min() < 0 or idx.max() >= m):
        raise ValueError(f"indices: expected values from 0 to {m - 1}, got values from {idx.min().item()} to {idx.max().item()}")
    onehot = F.one_hot(idx, m).to(flat.dtype)  # (n, M)
    counts = decay * counts + (1 - decay) * onehot.sum(0)  # N_j
    sums = decay * sums + (1 - decay) * onehot.T @ flat  # m_j, (M, code_dim)
    total = counts.sum()
    smoothed = (counts + eps) / (total + m * eps) * total  # N~_j
    return counts, sums, sums / smoothed.unsqueeze(1)


class CodeUsage(NamedTuple):
    """How a set of codes uses the codebook: counts per entry, their perplexity, and the share never used."""

    counts: Tensor  # (M,)
    perplexity: float  # exp(entropy of the usage frequencies), from 1 to M
    dead_share: float  # share of the M entries used by no vector


def code_usage(indices: Tensor, codebook_size: int) -> CodeUsage:
    r"""Code usage statistics: :math:`\exp(H(p))` with :math:`p_j` the share of vectors assigned to entry :math:`j`.

    .. math:: \mathrm{perplexity} = \exp\Big(-\sum_{j=1}^M p_j \log p_j\Big)

    It is :math:`M` when every entry is used equally often and 1 when one entry takes every
    vector: the number of entries of a uniform code that would have the same entropy. The dead
    share is the fraction of entries that no vector chose.

    Book: eq-perplexity
    """
    m = check_int("codebook_size", codebook_size, min=1)
    check_tensor("indices", indices)
    if indices.is_floating_point() or indices.dtype == torch.bool or indices.numel() == 0:
        raise ValueError(f"indices: expected a non-empty tensor of integer indices, got {indices.dtype} of shape {tuple(indices.shape)}")
    idx = indices.reshape(-1).long()
    if idx.min() < 0 or idx.max() >= m:
        raise ValueError(f"indices: expected values from 0 to {m - 1}, got values from {idx.min().item()} to {idx.max().item()}")
    counts = torch.bincount(idx, minlength=m).double()  # (M,)
    p = counts / counts.sum()
    entropy = -torch.special.xlogy(p, p).sum()  # 0 log 0 = 0
    return CodeUsage(counts, math.exp(entropy.item()), (counts == 0).double().mean().item())


# --------------------------------------------------------------------------- the layer
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


class VQOutput(NamedTuple):
    z_q: Tensor  # the entries, with the straight-through gradient to z_e, (n, code_dim)
    indices: Tensor  # (n,)
    terms: VQTerms  # per vector: (n,)


class VectorQuantizer(nn.Module):
    r"""Replace each vector by its nearest codebook entry; train the codebook; restart dead entries.

    ``forward(z_e)`` with ``z_e`` of shape ``(n, code_dim)`` returns a :class:`VQOutput`. In training mode
    and with ``ema > 0`` it also moves the entries by :func:`ema_codebook_update` (the codebook is
    then a buffer, not a parameter); with ``restart_every > 0`` it counts the uses of each entry and
    every ``restart_every`` calls moves the unused ones onto encoder outputs of the batch, drawn
    from the CPU's global generator (which :func:`vaebook.fit` seeds).
    """

    codebook: Tensor  # (M, code_dim): a parameter, or a buffer with moving averages
    ema_counts: Tensor  # (M,)
    ema_sums: Tensor  # (M, code_dim)
    uses: Tensor  # (M,)
    calls: Tensor  # ()

    def __init__(self, codebook_size: int, code_dim: int, *, ema: float = 0.0, restart_every: int = 0):
        super().__init__()
        self.codebook_size, self.code_dim = check_int("codebook_size", codebook_size, min=2), check_int("code_dim", code_dim, min=1)
        self.ema = check_number("ema", ema, min=0.0, max=0.9999)
        self.restart_every = check_int("restart_every", restart_every, min=0)
        init = (torch.rand(codebook_size, code_dim) * 2 - 1) / codebook_size  # uniform in ±1/M, as in the paper's code
        if self.ema > 0:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_counts", torch.zeros(codebook_size))
            self.register_buffer("ema_sums", torch.zeros(codebook_size, code_dim))
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("uses", torch.zeros(codebook_size))  # uses since the last restart
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.restarted = 0  # entries moved so far

    def forward(self, z_e: Tensor) -> VQOutput:
        check_float_tensor("z_e", z_e, dims=2)
        if z_e.shape[1] != self.code_dim:
            raise ValueError(f"z_e: expected vectors of shape (n, {self.code_dim}), got shape {tuple(z_e.shape)}")
        indices = nearest_code(z_e.detach(), self.codebook)  # (n,)
        if self.training and self.ema > 0:
            with torch.no_grad():
                counts, sums, book = ema_codebook_update(self.ema_counts, self.ema_sums, z_e, indices, self.ema)
                self.ema_counts.copy_(counts)
                self.ema_sums.copy_(sums)
                self.codebook.copy_(book)
        if self.training and self.restart_every > 0:
            self._restart(z_e.detach(), indices)
        z_q = self.codebook[indices]  # (n, code_dim)
        terms = vq_terms(z_e, z_q)
        return VQOutput(straight_through(z_e, z_q), indices, terms)

    @torch.no_grad()
    def _restart(self, z_e: Tensor, indices: Tensor) -> None:
        self.uses.add_(torch.bincount(indices, minlength=self.codebook_size).to(self.uses.dtype))
        self.calls.add_(1)
        if int(self.calls) % self.restart_every:
            return
        dead = (self.uses == 0).nonzero().flatten()
        if len(dead):
            pick = draws.randint(0, z_e.shape[0], (len(dead),), device=z_e.device)  # encoder outputs to restart from
            self.codebook[dead] = z_e[pick]
            if self.ema > 0:  # the moving averages restart there too, as if each had been chosen once
                self.ema_sums[dead] = z_e[pick]
                self.ema_counts[dead] = 1.0
            self.restarted += len(dead)
        self.uses.zero_()


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


@dataclass
class VQVAELoss:
    r"""What :func:`vaebook.fit` minimises for a :class:`VQVAE`: the batch mean of three terms per image.

    .. math:: L = -\log p(x\mid z_q) + \lVert \operatorname{sg}[z_e] - e\rVert^2 + \beta_c \lVert z_e - \operatorname{sg}[e]\rVert^2

    With ``ema > 0`` the codebook term is left out (the moving averages move the entries). Logged:
    ``recon`` (the first term), ``codebook``, ``commitment``, and ``perplexity`` of the batch's codes.

    Book: eq-vq-loss
    """

    def __call__(self, model: VQVAE, x: Tensor, target: Tensor) -> LossOutput:
        if not isinstance(model, VQVAE):
            raise TypeError(f"model: expected a vaebook.vq.VQVAE, got {describe(model)}")
        if target is not x and not torch.equal(target, x):
            raise ValueError("target: a VQ-VAE is trained to reproduce its input; pass images without separate targets")
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
        if not isinstance(model, GridGaussianVAE):
            raise TypeError(f"model: expected a vaebook.vq.GridGaussianVAE, got {describe(model)}")
        if target is not x and not torch.equal(target, x):
            raise ValueError("target: a VAE is trained to reproduce its input; pass images without separate targets")
        rd = model.rate_distortion(x)
        d, r = rd.distortion.mean(), rd.rate.mean()
        loss = d + (r - self.target_rate).abs() if self.target_rate is not None else d + self.beta * r
        return LossOutput(loss, {"distortion": d.detach(), "rate": r.detach()})


# --------------------------------------------------------------------------- a prior over codes
class CodePrior:
    r"""A categorical distribution over the :math:`M` entries at each grid position, independent across positions.

    Fitted by counting the codes of training images, with ``alpha`` added to every count (Laplace
    smoothing, so that no code has probability 0):

    .. math:: p_{ij}(k) = \frac{\#\{\text{images with code } k \text{ at } (i, j)\} + \alpha}{n + M\alpha}

    ``log_prob(indices)`` is the sum over positions, ``(b,)``; ``sample(n, generator)`` draws grids.
    :meth:`uniform` is the VAE's fixed prior, :math:`1/M` everywhere.

    Book: eq-code-prior
    """

    def __init__(self, probs: Tensor):
        check_float_tensor("probs", probs, dims=3)
        if (probs < 0).any() or not torch.allclose(probs.sum(-1), torch.ones((), dtype=probs.dtype), atol=1e-5):
            raise ValueError("probs: expected probabilities (h, w, M), non-negative and summing to 1 over M at each position")
        self.probs = probs

    @classmethod
    def fit(cls, indices: Tensor, codebook_size: int, alpha: float = 1.0) -> CodePrior:
        m = check_int("codebook_size", codebook_size, min=2)
        alpha = check_number("alpha", alpha, min=0.0, min_open=True)
        check_tensor("indices", indices, dims=3)
        if indices.is_floating_point() or len(indices) == 0:
            raise ValueError(f"indices: expected integer codes of shape (n, h, w) with n >= 1, got {indices.dtype} "
                             f"of shape {tuple(indices.shape)}")
        if indices.min() < 0 or indices.max() >= m:
            raise ValueError(f"indices: expected values from 0 to {m - 1}, got values from {indices.min().item()} to {indices.max().item()}")
        counts = F.one_hot(indices.long(), m).sum(0).double()  # (h, w, M)
        return cls(((counts + alpha) / (len(indices) + m * alpha)).float())

    @classmethod
    def uniform(cls, grid: tuple[int, int], codebook_size: int) -> CodePrior:
        h, w = check_int_tuple("grid", grid, length=2)
        m = check_int("codebook_size", codebook_size, min=2)
        return cls(torch.full((h, w, m), 1.0 / m))

    def log_prob(self, indices: Tensor) -> Tensor:
        check_tensor("indices", indices, dims=3)
        if indices.is_floating_point() or tuple(indices.shape[1:]) != tuple(self.probs.shape[:2]):
            raise ValueError(f"indices: expected integer codes of shape (b, {self.probs.shape[0]}, {self.probs.shape[1]}), "
                             f"got {indices.dtype} of shape {tuple(indices.shape)}")
        logp = self.probs.log().expand(len(indices), *self.probs.shape)  # (b, h, w, M)
        return logp.gather(-1, indices.long().unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)  # (b,)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_int("n", n, min=1)
        h, w, m = self.probs.shape
        u = draws.rand((n, h, w, 1), generator=generator)  # inverse CDF: the same draws on every device
        cdf = self.probs.cumsum(-1)  # (h, w, M)
        return (u > cdf).sum(-1).clamp_max(m - 1)  # (n, h, w)

