"""vaebook: the library behind the executable course on autoencoders and variational autoencoders.

Chapters use it as ``import vaebook as vb``. Everything public is re-exported here; nothing is
defined here. The modules build on each other in one direction, each importing only those before it:

1. ``guards`` (argument checks), ``files`` (atomic writes), ``colab`` (Colab's widget manager);
2. ``draws`` (random numbers drawn on the CPU and moved: the same on every device), ``stats``: pure tensor math;
3. ``data`` and ``models``; then ``checkpoints`` (save and load the models);
4. ``objectives`` (the ELBO and friends, on tensors), ``estimators`` (on a model: its ELBO, importance
   sampling, gradient estimators), ``exact`` (quadrature and EM, for small models), ``diagnostics``
   (the aggregate posterior, the ELBO's decomposition, active units), ``losses`` (what training minimises), ``bounds``
   (the importance-weighted bound, its training loss and its gradients' noise), ``vq`` (discrete codes: the
   VQ-VAE, its quantizer and losses, code usage, a prior over codes);
5. ``fused`` (the MLP VAE's hand-derived training step, and Adam's kernel called directly), then
   ``train``: ``fit`` and its callbacks; ``labels`` (the conditional VAE and the semi-supervised M2, with
   their own training loop);
6. ``metrics``, then ``baselines``; ``plot``, ``widgets`` and ``results`` (the Results page);
7. ``checks``: the exercises' checks, on top of everything.

``vaebook.authoring.book`` and ``vaebook.authoring.assign`` are authoring tools for the course's repository, not used
by the chapters.
"""

from . import baselines, checks, diffusion, labels, plot, priors, vq, widgets
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
from .models import (
    VAE,
    AEConfig,
    Autoencoder,
    ClassifierConfig,
    DigitClassifier,
    LatentModel,
    LinearGaussian,
    SRConfig,
    SuperResolver,
    VAEConfig,
    VAEOutput,
)
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
from .train import (
    Callback,
    History,
    KLWarmup,
    ProgressBar,
    TimeBudget,
    TrainState,
    default_device,
    evaluate,
    fit,
    seed_everything,
    train_2d_vae,
    train_budget_vae,
    train_vae,
)

__version__ = "0.1.0"

__all__ = [
    # modules used as vb.<module>.<name>
    "baselines", "checks", "diffusion", "labels", "plot", "priors", "vq", "widgets",
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
