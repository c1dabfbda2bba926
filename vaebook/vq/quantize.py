r"""The quantizer of :mod:`vaebook.vq`: pure tensor functions (the nearest entry, the straight-through gradient,
the VQ terms, the moving-average codebook, code usage) and :class:`VectorQuantizer`, the layer built on them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import draws
from ..guards import check_float_tensor, check_int, check_number, check_tensor


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
