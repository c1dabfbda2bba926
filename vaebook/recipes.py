"""The library's VAE recipes, built on :func:`vaebook.fit`: the settings that train a VAE fastest on a CPU.

- :func:`train_vae`: the default recipe for a :class:`~vaebook.VAE` you built;
- :func:`train_budget_vae`: the best VAE for a CPU budget (a learned prior, larger batches);
- :func:`train_2d_vae`: the 2-D VAE of chapters 5 and 6;
- :class:`KLWarmup`: a callback that gives a run's :class:`~vaebook.ELBOLoss` a KL warm-up.

The engine below them (:mod:`vaebook.train`) knows no model; these know the VAE.
"""

from __future__ import annotations

import dataclasses

from .callbacks import Callback, History, TrainState
from .data import ImageData
from .guards import check_int, check_number, describe
from .losses import ELBOLoss
from .models import VAE
from .batches import data_pair
from .train import fit, seed_everything

__all__ = ["KLWarmup", "train_vae", "train_budget_vae", "train_2d_vae",
           "BUDGET_PRIOR_COMPONENTS", "BUDGET_BATCH_SIZE", "BUDGET_LR"]


class KLWarmup(Callback):
    """Warm up the KL weight of fit's :class:`~vaebook.ELBOLoss` from 0 to its ``beta`` over the first ``fraction`` of training.

    The same as training with ``ELBOLoss(beta=..., warmup=fraction)``. Early on, a full KL term
    pushes every posterior onto the prior before the decoder has learned to use ``z``; warming it up
    keeps more latent units active (Bowman et al., 2016; Sønderby et al., 2016). When training
    starts, the run gets a copy of the loss with this warm-up (``state.loss``); the caller's loss is
    not changed, so a β-VAE's ``ELBOLoss(beta=0.5)`` warms up to 0.5 and keeps ``beta = 0.5``.
    The reported ``elbo`` metric is always the true ELBO (weight 1).
    """

    def __init__(self, fraction: float = 0.2):
        self.fraction = check_number("fraction", fraction, min=0.0, min_open=True, max=1.0)

    def on_fit_start(self, state: TrainState) -> None:
        if not isinstance(state.loss, ELBOLoss):
            raise TypeError(f"KLWarmup: expected fit's loss to be a vaebook.ELBOLoss (it anneals its beta), got {describe(state.loss)}")
        state.loss = dataclasses.replace(state.loss, warmup=self.fraction)


def train_vae(
    vae: VAE,
    data,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    lr: float = 2e-3,
    batch_size: int = 128,
    schedule: str = "wsd",
    **fit_kwargs,
) -> History:
    """The library's default VAE recipe: :func:`fit` with the settings that train a VAE fastest on a CPU.

    - Bernoulli decoder on **dynamically binarized** data (a Gaussian decoder trains on the grey levels);
    - the decoder's output bias starts at the logit of the mean image (``VAE.init_output_bias``);
    - Adam, batch 128, learning rate 2e-3 held constant, then decayed linearly to 0 over the last
      30% of training (``schedule="wsd"``);
    - with :class:`VAEConfig`'s defaults: a 784-400-400-32 MLP with ELU activations.

    Each choice was measured on full MNIST against a plain recipe (ReLU, constant lr 1e-3) at the
    same 4,000 steps: ELU 98.1 -> 94.7 nats, then the decay tail and bias start -> 91.3 nats
    (importance-sampled test NLL, k=200). Give ``steps`` (batches), or ``max_seconds`` for a
    wall-clock budget (the schedule then follows time), or both. Other keywords go to :func:`fit`.
    """
    if not isinstance(vae, VAE):
        raise TypeError(f"vae: expected a vaebook.VAE, got {describe(vae)}")
    if steps is None and max_seconds is None:
        raise ValueError("steps, max_seconds: expected a number of steps, or a wall-clock budget in seconds, or both; got neither")
    if "epochs" in fit_kwargs:
        raise TypeError("epochs: train_vae counts training in steps (batches) or seconds, not epochs; pass steps=")
    x, target = data_pair(data, "data")
    if target is not None:
        raise ValueError("data: a VAE learns to reproduce its input; expected images, not (inputs, targets) pairs")
    if vae.config.arch == "mlp":
        vae.init_output_bias(x)
    return fit(
        vae,
        data,
        steps=steps,
        max_seconds=max_seconds,
        lr=lr,
        batch_size=batch_size,
        schedule=schedule,
        binarize=vae.likelihood.binary,
        **fit_kwargs,
    )


# train_budget_vae's choices over train_vae's, each measured on full MNIST (benchmarks/vae_quality.py)
BUDGET_PRIOR_COMPONENTS = 50
BUDGET_BATCH_SIZE = 256
BUDGET_LR = 3e-3


def train_budget_vae(
    data,
    *,
    max_seconds: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    **fit_kwargs,
) -> tuple[VAE, History]:
    r"""The library's best VAE for a CPU budget: :func:`train_vae`'s recipe, with a learned prior and larger batches.

    It builds and trains, seeded:

    - the recipe's 784-400-400-32 ELU MLP with a Bernoulli decoder, whose prior is a learned mixture
      of 50 Gaussians (``VAE(prior="mixture", prior_components=50)``, :class:`~vaebook.priors.MixturePrior`)
      instead of :math:`\mathcal N(0, I)`;
    - :func:`train_vae` at batch 256 and learning rate 3e-3 instead of 128 and 2e-3 (same ``"wsd"``
      schedule, dynamic binarization, output-bias start).

    Measured on full MNIST on a 2-core CPU (importance-sampled test NLL, k=1000, first 1,000 test
    images; ``benchmarks/vae_quality.py``, where the README's Performance section lists each run),
    each choice on the same wall-clock budget:

    =============================================  ============  ============
    recipe                                         60 s (nats)   600 s (nats)
    =============================================  ============  ============
    :func:`train_vae` (standard prior, batch 128)  88.4          84.7
    batch 256, lr 3e-3                             88.3
    and a mixture prior of 10 components           86.8
    and 50 components (this function)              86.3 to 86.7  82.9 to 83.0
    =============================================  ============  ============

    The learned prior gives most of the gain. Larger batches gain less: a step's fixed costs (the
    optimizer, the random draws, Python) are shared by more images, so about a fifth more images
    are seen per second at 60 s, each step a little less effective. The rows with the standard
    prior were measured before :func:`fit`'s hand-derived step (:mod:`vaebook.fused`), which
    applies to them and not to the mixture prior: with it, :func:`train_vae` reached 87.8 nats
    in 60 s.

    ``batch_size``, ``lr`` and other keywords go to :func:`train_vae` (and so to :func:`fit`) and
    override these choices. Give ``max_seconds`` or ``steps`` (or both), as for :func:`train_vae`.
    Returns the trained VAE (on the CPU, in eval mode) and its :class:`History`.
    """
    seed = check_int("seed", seed)
    seed_everything(seed)  # the weights' and the prior's starting values
    vae = VAE(prior="mixture", prior_components=BUDGET_PRIOR_COMPONENTS)
    options = {"batch_size": BUDGET_BATCH_SIZE, "lr": BUDGET_LR, **fit_kwargs}
    history = train_vae(vae, data, steps=steps, max_seconds=max_seconds, seed=seed, **options)
    return vae, history


def train_2d_vae(data: ImageData, *, steps: int = 640, n: int = 12_000, seed: int = 0, **fit_kwargs) -> tuple[VAE, History]:
    """The 2-D VAE of chapters 5 and 6: a 784-400-400-2 Bernoulli VAE, :func:`train_vae` for ``steps`` steps.

    It trains on the first ``n`` images of ``data`` (all 4,000 of the offline digits), seeded, so
    each chapter, run alone, trains the same model. A 2-D latent space is small enough for
    quadrature (:func:`vaebook.grid_posterior`), which gives those chapters their exact answers.
    """
    if not isinstance(data, ImageData):
        raise TypeError(f"data: expected an ImageData (vb.load_mnist), got {describe(data)}")
    n = check_int("n", n, min=1)
    seed = check_int("seed", seed)
    seed_everything(seed)
    vae = VAE(z_dim=2)  # 784-400-400-2 encoder, 2-400-400-784 decoder, Bernoulli likelihood
    history = train_vae(vae, data[:n], steps=steps, seed=seed, **fit_kwargs)
    return vae, history
