r"""From denoising to diffusion: Tweedie's formula, denoising score matching, and a small DDPM.

Chapter 13 of the book, in one module per kind, each built on the ones before it:
:mod:`~vaebook.diffusion.tweedie`, :mod:`~vaebook.diffusion.schedules`, :mod:`~vaebook.diffusion.network`,
:mod:`~vaebook.diffusion.losses`, :mod:`~vaebook.diffusion.samplers` (and :mod:`~vaebook.diffusion.inputs`,
their argument checks). Everything is re-exported here, as ``vb.diffusion.<name>``. Three ideas:

- **Tweedie's formula** on a model whose every answer has a closed form: a mixture of diagonal
  Gaussians (:class:`GaussianMixture`). Noise of variance :math:`\sigma^2` keeps it a mixture, so
  the noisy density, its *score* :math:`\nabla_{\tilde x}\log p_\sigma(\tilde x)` and the posterior
  mean :math:`\mathbb E[x\mid\tilde x]` are exact. :func:`denoiser_score` reads the score off any
  denoiser, :func:`tweedie_denoise` goes back.
- **Denoising score matching** (Vincent, 2011): :func:`dsm_loss`, the objective whose minimiser is
  the score of the noisy data, and which is chapter 2's denoising objective up to a factor.
- **A diffusion model** (Ho et al., 2020) read as a hierarchical VAE whose encoder is fixed: the
  noise schedule and :math:`q(x_t\mid x_0)` (:class:`NoiseSchedule`), the :math:`\epsilon`-prediction
  network (:class:`DDPM`), its training loss (:class:`DiffusionLoss`, for :func:`vaebook.fit`), the
  ELBO term by term (:func:`diffusion_elbo`), and the ancestral sampler (:func:`ddpm_sample`), which
  can skip steps.

A DDPM works on images scaled to :math:`[-1, 1]`; :class:`DDPM` takes and returns images in
:math:`[0, 1]` (the library's convention) and converts at its door (:func:`to_signed`,
:func:`to_unit`). Time steps are integers :math:`t = 1, \dots, T`; the schedule's tensors have
:math:`T + 1` entries so that index ``t`` is step :math:`t` (index 0 is the clean data, with
:math:`\bar\alpha_0 = 1`).
"""

from . import inputs
from .losses import BIN, WEIGHTINGS, DiffusionELBO, DiffusionLoss, diffusion_elbo, discretized_gaussian_log_prob, eps_prediction_error, normal_kl
from .network import DDPM, PREDICTS, DDPMConfig
from .samplers import ddpm_sample, ddpm_step, sampling_timesteps
from .schedules import NOISE_SCHEDULES, NoiseSchedule, to_signed, to_unit
from .tweedie import GaussianMixture, denoiser_score, dsm_loss, tweedie_denoise

__all__ = [
    "GaussianMixture", "denoiser_score", "tweedie_denoise", "dsm_loss",
    "NOISE_SCHEDULES", "NoiseSchedule", "to_signed", "to_unit",
    "PREDICTS", "DDPMConfig", "DDPM",
    "WEIGHTINGS", "DiffusionLoss", "eps_prediction_error", "normal_kl", "BIN", "discretized_gaussian_log_prob", "DiffusionELBO", "diffusion_elbo",
    "sampling_timesteps", "ddpm_step", "ddpm_sample",
    "inputs",
]
