"""vaebook: the library behind the executable course on autoencoders and variational autoencoders.

Chapters use it as ``import vaebook as vb``. Everything public is re-exported here; nothing is
defined here but :data:`LAYERS`, the one place that states how the modules build on each other:
each module imports only modules that come before it in :data:`LAYERS` (``tests/test_layers.py``
reads every module's imports and holds the code to it). The README and the API page point here.

``vaebook.authoring.book`` and ``vaebook.authoring.assign`` are authoring tools for the course's repository, not used
by the chapters.
"""

from . import baselines, batches, callbacks, checks, diffusion, labels, latent_diffusion, likelihoods, plot, priors, progress, recipes, vq, widgets
from .bounds import BoundGradients, IWAELoss, bound_gradients, gradient_snr, iwae_bound, iwae_objective
from .checkpoints import CheckpointError, build_model, load, save
from .data import (
    NATURAL_IMAGE_NAMES,
    ImageData,
    OfflineDataWarning,
    add_gaussian_noise,
    binarize,
    default_data_root,
    downsample,
    extract_patches,
    load_mnist,
    mask_pixels,
    natural_images,
    salt_and_pepper,
    square_symmetries,
    upsample,
)
from .estimators import (
    RateDistortion,
    log_likelihood,
    log_weights,
    model_elbo,
    rate_distortion,
    reparameterized_gradient,
    score_function_gradient,
)
from .diagnostics import (
    AggregatePosterior,
    ELBODecomposition,
    active_units,
    aggregate_posterior_grid,
    elbo_decomposition,
    kl_per_dimension,
    log_aggregate_posterior,
    mutual_information,
    unit_activity,
)
from .exact import GridPosterior, best_diagonal_gaussian, grid_kl, grid_posterior, ppca_elbo, ppca_em_step
from .losses import (
    CalibratedGaussianLoss,
    CrossEntropyLoss,
    ELBOLoss,
    LossOutput,
    ReconstructionLoss,
    calibrated_gaussian_nll,
    default_loss,
    free_bits_kl,
)
from .metrics import RealismScore, classifier_features, digit_classifier, psnr, realism_score
from .configs import AEConfig, ClassifierConfig, SRConfig, VAEConfig
from .models import VAE, Autoencoder, DigitClassifier, LatentModel, LinearGaussian, SuperResolver, VAEOutput
from .objectives import ELBO, elbo, log_px_given_z, reconstruction_error
from .results import record
from .stats import (
    bernoulli_log_prob,
    continuous_bernoulli_log_prob,
    diag_gaussian_log_prob,
    gaussian_kl,
    gaussian_log_prob,
    interpolate,
    log_mean_exp,
    reparameterize,
    standard_normal_log_prob,
)
from .callbacks import Callback, History, TimeBudget, TrainState
from .likelihoods import Bernoulli, ContinuousBernoulli, Gaussian, Likelihood
from .progress import ProgressBar
from .recipes import KLWarmup, train_2d_vae, train_budget_vae, train_vae
from .train import default_device, evaluate, fit, seed_everything

# The layer order, bottom first: a module may import only the modules listed before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("guards", "files", "colab"),  # argument checks, atomic writes, Colab's widget manager
    ("draws", "stats", "likelihoods", "priors"),  # random draws made on the CPU; tensor math; p(x|z) and p(z) objects
    ("data", "configs", "networks", "models", "checkpoints"),  # MNIST and the corruptions; the models, their configs and networks; saving them
    ("objectives", "estimators", "exact", "diagnostics", "losses", "bounds", "vq"),  # the ELBO, its estimators, training losses; discrete codes
    ("fused", "callbacks", "batches", "progress", "train", "recipes", "labels"),  # the hand-derived step; the training engine and its batches; the VAE recipes; labels
    ("diffusion", "latent_diffusion", "metrics", "baselines", "plot", "widgets", "results"),  # chapter 13's models, chapter 16's glue; scores; figures; the Results page
    ("checks",),  # the exercises' checks, on top of everything
)

__version__ = "0.1.0"

__all__ = [
    # modules used as vb.<module>.<name>
    "baselines", "batches", "callbacks", "checks", "diffusion", "labels", "latent_diffusion", "likelihoods", "plot", "priors", "progress", "recipes", "vq", "widgets",
    "LAYERS",
    # the decoders' likelihoods
    "Likelihood", "Bernoulli", "Gaussian", "ContinuousBernoulli",
    # importance-weighted bounds
    "BoundGradients", "IWAELoss", "bound_gradients", "gradient_snr", "iwae_bound", "iwae_objective",
    # checkpoints
    "CheckpointError", "build_model", "load", "save",
    # data
    "NATURAL_IMAGE_NAMES", "ImageData", "OfflineDataWarning", "add_gaussian_noise", "binarize",
    "default_data_root", "downsample", "extract_patches", "load_mnist", "mask_pixels", "natural_images",
    "salt_and_pepper", "square_symmetries", "upsample",
    # estimators, exact answers, losses
    "RateDistortion", "log_likelihood", "log_weights", "model_elbo", "rate_distortion", "reparameterized_gradient",
    "score_function_gradient",
    "GridPosterior", "best_diagonal_gaussian", "grid_kl", "grid_posterior", "ppca_elbo", "ppca_em_step",
    "CalibratedGaussianLoss", "CrossEntropyLoss", "ELBOLoss", "LossOutput", "ReconstructionLoss", "calibrated_gaussian_nll",
    "default_loss", "free_bits_kl",
    # diagnostics: the aggregate posterior, the ELBO's decomposition, active units
    "AggregatePosterior", "ELBODecomposition", "active_units", "aggregate_posterior_grid", "elbo_decomposition",
    "kl_per_dimension", "log_aggregate_posterior", "mutual_information", "unit_activity",
    # metrics
    "RealismScore", "classifier_features", "digit_classifier", "psnr", "realism_score",
    # models
    "VAE", "AEConfig", "Autoencoder", "ClassifierConfig", "DigitClassifier", "LatentModel", "LinearGaussian",
    "SRConfig", "SuperResolver", "VAEConfig", "VAEOutput",
    # objectives, results
    "ELBO", "elbo", "log_px_given_z", "reconstruction_error", "record",
    # stats
    "bernoulli_log_prob", "continuous_bernoulli_log_prob", "diag_gaussian_log_prob", "gaussian_kl", "gaussian_log_prob", "interpolate",
    "log_mean_exp", "reparameterize", "standard_normal_log_prob",
    # training
    "Callback", "History", "KLWarmup", "ProgressBar", "TimeBudget", "TrainState", "default_device",
    "evaluate", "fit", "seed_everything", "train_vae", "train_budget_vae", "train_2d_vae",
]
