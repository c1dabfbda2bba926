"""vaebook: the library behind the executable course on autoencoders and variational autoencoders.

Chapters use it as ``import vaebook as vb``. Everything public is re-exported here; nothing is
defined here. The modules build on each other in one direction:
``stats`` -> ``data``, ``models`` -> ``objectives`` -> ``train`` -> ``metrics`` -> ``plot``, ``widgets``.
"""

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
    upsample,
)
from .metrics import RealismScore, classifier_features, digit_classifier, psnr, realism_score
from .models import (
    VAE,
    AEConfig,
    Autoencoder,
    ClassifierConfig,
    DigitClassifier,
    LinearGaussian,
    SRConfig,
    SuperResolver,
    VAEConfig,
    VAEOutput,
)
from .objectives import (
    ELBO,
    GridPosterior,
    LossOutput,
    best_diagonal_gaussian,
    elbo,
    grid_kl,
    grid_posterior,
    log_likelihood,
    log_px_given_z,
    model_elbo,
    ppca_elbo,
    ppca_em_step,
    reconstruction_error,
    reparameterized_gradient,
    score_function_gradient,
    training_loss,
)
from .stats import (
    bernoulli_log_prob,
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
    CheckpointError,
    History,
    KLWarmup,
    TrainState,
    default_device,
    evaluate,
    fit,
    load,
    save,
    seed_everything,
    train_vae,
)

from . import baselines, checks, plot, widgets  # noqa: E402  (vb.plot.image_grid, vb.checks.elbo, ...)

__version__ = "0.1.0"
