"""Checks for the coding exercises: run the student's function on several inputs and compare it with ours.

Each exercise in a chapter ends with a check cell such as ``vb.checks.gaussian_kl(gaussian_kl)``.
The machinery (:func:`check`, :class:`Case`, :class:`CheckFailed`, and how a check reports to a
notebook and to graders) is in :mod:`vaebook.checks.core`; the checks themselves are grouped by the
topic they check, one module each, and all of them are reachable as ``vb.checks.<exercise>``.
"""

from .core import Case, CheckFailed, check
from .autoencoders import *  # noqa: F403  (autoencoders and their codes: chapters 0, 1, 4)
from .autoencoders import __all__ as _autoencoders
from .restoration import *  # noqa: F403  (corrupted pairs, denoising, super-resolution: chapters 2, 3)
from .restoration import __all__ as _restoration
from .likelihoods import *  # noqa: F403  (likelihoods, the ELBO and EM: chapters 5, 6, 8)
from .likelihoods import __all__ as _likelihoods
from .vae import *  # noqa: F403  (reparametrization, gradients, the VAE's loss, latent paths: chapters 7-9)
from .vae import __all__ as _vae
from .importance import *  # noqa: F403  (importance weights, the IWAE bound and its gradients: chapter 10)
from .importance import __all__ as _importance
from .failures import *  # noqa: F403  (posterior collapse and its diagnostics: chapter 11)
from .failures import __all__ as _failures
from .rate_distortion import *  # noqa: F403  (rate and distortion: chapter 12)
from .rate_distortion import __all__ as _rate_distortion
from .denoising_diffusion import *  # noqa: F403  (score matching and denoising diffusion: chapter 13)
from .denoising_diffusion import __all__ as _denoising_diffusion
from .labels import *  # noqa: F403  (conditional and semi-supervised VAEs: chapter 14)
from .labels import __all__ as _labels
from .codes import *  # noqa: F403  (discrete codes, the VQ-VAE: chapter 15)
from .codes import __all__ as _codes
from .latent_diffusion import *  # noqa: F403  (the latent scale: chapter 16)
from .latent_diffusion import __all__ as _latent_diffusion

__all__ = [
    "Case", "CheckFailed", "check",
    *_autoencoders, *_restoration, *_likelihoods, *_vae, *_importance, *_failures, *_rate_distortion, *_denoising_diffusion,
    *_labels, *_codes, *_latent_diffusion,
]
