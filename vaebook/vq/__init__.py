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

In one module per kind: :mod:`~vaebook.vq.quantize` (the tensor functions and the layer),
:mod:`~vaebook.vq.models` (the VQ-VAE, the Gaussian VAE on the same grid, and their losses) and
:mod:`~vaebook.vq.prior`. Everything is re-exported here, as ``vb.vq.<name>``.

Book: chapter 15 (15_discrete_codes)
"""

from .models import VQVAE, GridGaussianVAE, GridVAELoss, VQVAEConfig, VQVAELoss, VQVAEOutput
from .prior import CodePrior
from .quantize import (
    CodeUsage,
    VectorQuantizer,
    VQOutput,
    VQTerms,
    code_usage,
    ema_codebook_update,
    nearest_code,
    straight_through,
    vq_terms,
)

__all__ = [
    "nearest_code", "straight_through", "VQTerms", "vq_terms", "ema_codebook_update", "CodeUsage", "code_usage",
    "VQVAEConfig", "VectorQuantizer", "VQOutput", "VQVAE", "VQVAEOutput", "VQVAELoss", "GridGaussianVAE", "GridVAELoss",
    "CodePrior",
]
