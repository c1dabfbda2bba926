"""Classical baselines that the learned models are measured against (denoising filters, PCA projection).

Bicubic upsampling, the super-resolution baseline, is :func:`vaebook.upsample`.
"""

from __future__ import annotations

__all__: list[str] = []
