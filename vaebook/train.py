"""Training: seeding, device choice, :func:`fit`, and checkpoints.

``fit`` knows nothing about the model it trains: it asks :func:`vaebook.objectives.training_loss`
(or the ``loss`` you pass) for a scalar to minimise and for metrics to log. Anything else — a live
plot, KL warm-up, early stopping — attaches through callbacks.

Batches are cut from tensors held in memory (on the training device), with no per-item Python
transforms in the loop: that is what makes it several times faster than a ``DataLoader`` over
torchvision's ``ToTensor`` (see ``benchmarks/train_speed.py``).
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from . import stats
from .data import ImageData, binarize as _binarize
from .models import MODEL_CLASSES, VAE, build_model
from .objectives import LossOutput, training_loss

__all__ = [
    "seed_everything",
    "default_device",
    "History",
    "Callback",
    "KLWarmup",
    "TrainState",
    "fit",
    "train_vae",
    "evaluate",
    "save",
    "load",
    "CheckpointError",
]

CHECKPOINT_FORMAT = "vaebook-checkpoint"
CHECKPOINT_VERSION = 1


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators, so a run repeats bit for bit on the CPU."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """CUDA if a GPU is present (as on a Colab GPU runtime), else Apple's MPS, else the CPU.

    ``$VAEBOOK_DEVICE`` overrides the choice (e.g. ``cpu`` to compare timings).
    """
    env = os.environ.get("VAEBOOK_DEVICE")
    if env:
        return torch.device(env)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class History:
    """Per-epoch metrics of a :func:`fit` run: ``train[name][epoch]`` and ``test[name][epoch]``."""

    train: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, list[float]] = field(default_factory=dict)
    lr: list[float] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    images: int = 0
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")

    def last(self, name: str, split: str = "test") -> float:
        """The final epoch's value of a metric (``split`` is ``"train"`` or ``"test"``)."""
        table = {"train": self.train, "test": self.test}.get(split)
        if table is None:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if name not in table:
            raise KeyError(f"no {split} metric {name!r}; recorded: {sorted(table)}")
        return table[name][-1]

    def __repr__(self) -> str:
        parts = [f"{self.epochs} epochs, {self.steps} steps, {self.seconds:.1f} s ({self.images_per_second:,.0f} img/s)"]
        for split, table in (("train", self.train), ("test", self.test)):
            if table:
                parts.append(split + ": " + ", ".join(f"{k}={v[-1]:.4g}" for k, v in table.items()))
        return "History(" + "; ".join(parts) + ")"


@dataclass
class TrainState:
    """What callbacks see: the model and optimizer, where training is, and the history so far."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    step: int = 0
    total_steps: int = 0
    progress: float = 0.0  # fraction of the training budget used, in [0, 1]
    metrics: dict[str, float] = field(default_factory=dict)  # the last step's, or the last epoch's
    stop: bool = False  # a callback sets this to end training after the current step


class Callback:
    """Hooks into :func:`fit`. Override any of these; each receives the :class:`TrainState`."""

    def on_fit_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_fit_end(self, state: TrainState) -> None: ...


class KLWarmup(Callback):
    """Anneal the KL weight ``model.beta`` linearly from 0 to 1 over the first ``fraction`` of training.

    Early on, a full KL term pushes every posterior onto the prior before the decoder has learned to
    use ``z``; warming it up keeps more latent units active (Bowman et al., 2016; Sønderby et al., 2016).
    The reported ``elbo`` metric is always the true ELBO (weight 1).
    """

    def __init__(self, fraction: float = 0.2):
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def on_fit_start(self, state: TrainState) -> None:
        state.model.beta = 0.0

    def on_step_end(self, state: TrainState) -> None:
        state.model.beta = min(1.0, state.progress / self.fraction)

    def on_fit_end(self, state: TrainState) -> None:
        state.model.beta = 1.0


def _as_pair(data, name: str) -> tuple[Tensor, Tensor | None]:
    """Accept ImageData, a tensor of inputs, or an (inputs, targets) pair."""
    if isinstance(data, ImageData):
        return data.x, None
    if isinstance(data, Tensor):
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        x, t = data
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"{name}: inputs and targets differ in length ({x.shape[0]} vs {t.shape[0]})")
        return x, t
    raise TypeError(
        f"{name} must be an ImageData, a tensor of examples, or an (inputs, targets) pair of tensors; "
        f"got {type(data).__name__}"
    )


SCHEDULES = ("constant", "cosine", "linear", "wsd")
WSD_DECAY = 0.3  # the fraction of training over which "wsd" decays the learning rate to 0


def _adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel where this PyTorch has one for the device (same update, one pass).

    For a small model on a CPU the optimizer's per-tensor loop is a large share of a step; the
    fused kernel makes ``fit`` about a third faster than a loop with the default Adam
    (``benchmarks/train_speed.py``).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older PyTorch, or no fused kernel for this device
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _lr_factor(schedule: str, progress: float, warmup: float) -> float:
    """The learning-rate multiplier at ``progress`` (the fraction of training done, 0 to 1)."""
    if warmup > 0 and progress < warmup:
        return progress / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "wsd":  # warm-up, stable, decay: constant, then linear to 0 over the last 30%
        return max(0.0, min(1.0, (1.0 - progress) / WSD_DECAY))
    p = (progress - warmup) / max(1e-12, 1 - warmup)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
    return max(0.0, 1.0 - p)  # linear


def _progress_bar(total: int, enabled: bool | None):
    if enabled is None:
        enabled = os.environ.get("VAEBOOK_PROGRESS", "1") != "0"
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", leave=False, mininterval=0.5)


def _batch(
    x: Tensor,
    target: Tensor | None,
    idx: Tensor,
    binarize: bool,
    corrupt: Callable | None,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    xb = x[idx]
    if target is not None:
        return xb, target[idx]
    if binarize:
        xb = _binarize(xb, generator)
    return (corrupt(xb, generator) if corrupt is not None else xb), xb


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data,
    *,
    batch_size: int = 1000,
    binarize: bool = False,
    corrupt: Callable | None = None,
    loss: Callable[..., LossOutput] | None = None,
    seed: int = 12345,
) -> dict[str, float]:
    """Average the loss and metrics of ``model`` over ``data`` (weighted by batch size), without gradients.

    Binarization and corruption use a generator seeded with ``seed``, so the same data give the same
    numbers at every epoch.
    """
    loss_fn = loss or training_loss
    x, target = _as_pair(data, "data")
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    n = x.shape[0]
    # The loss may draw noise from the global generator (a VAE's z ~ q): fork it and seed the fork,
    # so evaluating neither changes the random numbers of the training that follows nor depends on them.
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(n, start + batch_size))
            xb, tb = _batch(x, target, idx, binarize, corrupt, g)
            out = loss_fn(model, xb.to(device), tb.to(device))
            w = len(idx)
            for k, v in {"loss": out.loss, **out.metrics}.items():
                sums[k] = sums.get(k, 0.0) + float(v) * w
    model.train(was_training)
    return {k: v / n for k, v in sums.items()}


def fit(
    model: nn.Module,
    data,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    lr: float = 1e-3,
    batch_size: int = 128,
    test_data=None,
    binarize: bool = False,
    corrupt: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    loss: Callable[..., LossOutput] | None = None,
    schedule: str = "constant",
    warmup: float = 0.0,
    weight_decay: float = 0.0,
    max_seconds: float | None = None,
    callbacks: Iterable[Callback] = (),
    device: torch.device | str | None = None,
    seed: int | None = 0,
    progress: bool | None = None,
) -> History:
    """Train ``model`` with Adam on in-memory batches; return the per-epoch :class:`History`.

    - ``data``: an :class:`~vaebook.ImageData`, a tensor (the targets are the inputs), or an
      ``(inputs, targets)`` pair, e.g. precomputed (noisy, clean) images.
    - ``epochs`` (default 10) passes over the data, or ``steps``: exactly that many batches, the
      last pass cut short where it ends, so that a run is as long on a data set of any size.
    - ``binarize=True``: dynamic binarization, a fresh Bernoulli draw of every batch.
    - ``corrupt(x, generator) -> x_in``: a fresh corruption of every batch (denoising and
      super-resolution pairs): the model sees ``x_in`` and is scored against the clean ``x``.
    - ``loss(model, x, target) -> LossOutput``: the objective; default
      :func:`vaebook.objectives.training_loss`.
    - ``schedule``: the learning rate: ``"constant"``; ``"cosine"`` or ``"linear"`` decay to 0; or
      ``"wsd"`` (warm-up, stable, decay): constant, then a linear decay to 0 over the last 30%,
      which suits short budgets (the VAE recipe uses it). ``warmup`` is a linear ramp over that
      fraction of training first.
    - ``max_seconds``: stop when the wall-clock budget is spent (then the schedule follows time).
    - ``test_data``: evaluated after each epoch (fixed binarization/corruption seed).
    - ``seed``: seeds everything first, so a run on the CPU repeats bit for bit. ``None`` does not seed.
    - ``device``: where to train, default :func:`default_device` (a GPU when there is one). The
      model is moved back to the device it came from when training ends, so the chapters' code
      that follows runs on CPU tensors everywhere.
    - ``progress``: a tqdm bar (``None``: on unless ``$VAEBOOK_PROGRESS=0``).

    A non-finite loss stops training with a ``FloatingPointError`` that names the epoch and step.
    """
    if epochs is not None and steps is not None:
        raise ValueError(f"give epochs or steps, not both (got epochs={epochs!r}, steps={steps!r})")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    epochs = 10 if epochs is None and steps is None else epochs
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup must be a fraction in [0, 1), got {warmup!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    x, target = _as_pair(data, "data")
    if target is not None and (binarize or corrupt is not None):
        raise ValueError("binarize and corrupt apply to plain data; pass either (inputs, targets) pairs or them")
    if x.shape[0] == 0:
        raise ValueError("data is empty")
    loss_fn = loss or training_loss
    callbacks = list(callbacks)
    if seed is not None:
        seed_everything(seed)

    device = torch.device(device) if device is not None else default_device()
    home = next(model.parameters()).device  # where the caller keeps the model; it goes back there
    model.to(device)
    model.train()
    x = x.to(device)
    target = target.to(device) if target is not None else None
    g = torch.Generator(device=device).manual_seed(seed if seed is not None else torch.seed() % 2**63)
    opt = _adam(model, lr, weight_decay)

    n = x.shape[0]
    bs = min(batch_size, n)
    steps_per_epoch = n // bs  # the last partial batch is dropped: every step sees bs examples
    if steps is not None:
        total_steps = steps
        epochs = -(-steps // steps_per_epoch)  # the last one may be cut short
    else:
        total_steps = epochs * steps_per_epoch
    history = History()
    state = TrainState(model, opt, history, total_steps=total_steps)
    factor = _lr_factor(schedule, 0.0, warmup)
    for cb in callbacks:
        cb.on_fit_start(state)
    bar = _progress_bar(total_steps, progress)
    t0 = time.perf_counter()
    out_of_time = False
    try:
        for epoch in range(1, epochs + 1):
            state.epoch = epoch
            sums: dict[str, Tensor] = {}
            perm = torch.randperm(n, generator=g, device=device)
            steps_this_epoch = 0
            for i in range(min(steps_per_epoch, total_steps - state.step)):
                if max_seconds is not None:
                    elapsed = time.perf_counter() - t0
                    state.progress = max(state.step / total_steps, elapsed / max_seconds)
                    if elapsed >= max_seconds:
                        out_of_time = True
                        break
                factor = _lr_factor(schedule, state.progress, warmup)
                for group in opt.param_groups:
                    group["lr"] = lr * factor
                # the first batch is checked in full; after that, skip the value scans (same data path)
                with stats.value_checks(state.step == 0):
                    xb, tb = _batch(x, target, perm[i * bs:(i + 1) * bs], binarize, corrupt, g)
                    out = loss_fn(model, xb, tb)
                if not torch.isfinite(out.loss):
                    raise FloatingPointError(
                        f"the loss became {out.loss.item()} at epoch {epoch}, step {i + 1} "
                        f"(step {state.step + 1} overall) with lr={lr * factor:.3g}; "
                        "try a lower learning rate, or check the data for NaN or infinite values"
                    )
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                opt.step()
                state.step += 1
                steps_this_epoch += 1
                state.progress = state.step / total_steps
                if max_seconds is not None:
                    state.progress = max(state.progress, (time.perf_counter() - t0) / max_seconds)
                for k, v in {"loss": out.loss.detach(), **out.metrics}.items():
                    sums[k] = sums.get(k, 0.0) + v
                for cb in callbacks:
                    cb.on_step_end(state)
                if bar is not None:
                    bar.update(1)
                if state.stop:
                    break
            if steps_this_epoch:
                history.epochs = epoch
                history.lr.append(lr * factor)
                for k, v in sums.items():
                    history.train.setdefault(k, []).append(float(v) / steps_this_epoch)
                history.steps = state.step
                history.images = state.step * bs
                if test_data is not None:
                    for k, v in evaluate(model, test_data, binarize=binarize, corrupt=corrupt, loss=loss_fn).items():
                        history.test.setdefault(k, []).append(v)
                    model.train()
                state.metrics = {k: v[-1] for k, v in history.train.items()}
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in list(state.metrics.items())[:3]}, refresh=False)
                for cb in callbacks:
                    cb.on_epoch_end(state)
            if out_of_time or state.stop:
                break
    finally:
        if bar is not None:
            bar.close()
        history.seconds = time.perf_counter() - t0
    model.eval()
    for cb in callbacks:
        cb.on_fit_end(state)
    model.to(home)
    return history


def train_vae(
    vae: VAE,
    data,
    *,
    epochs: int | None = None,
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
    (importance-sampled test NLL, k=200). Give ``epochs``, or ``max_seconds`` for a wall-clock
    budget (the schedule then follows time). Other keywords go to :func:`fit`.
    """
    if not isinstance(vae, VAE):
        raise TypeError(f"train_vae trains a vaebook.VAE, got {type(vae).__name__}")
    if epochs is None and max_seconds is None:
        raise ValueError("give epochs, or max_seconds for a wall-clock budget")
    x, target = _as_pair(data, "data")
    if target is not None:
        raise ValueError("a VAE learns to reproduce its input: pass images, not (inputs, targets) pairs")
    if vae.config.arch == "mlp":
        vae.init_output_bias(x)
    return fit(
        vae,
        data,
        epochs=epochs if epochs is not None else 10**6,
        max_seconds=max_seconds,
        lr=lr,
        batch_size=batch_size,
        schedule=schedule,
        binarize=vae.likelihood == "bernoulli",
        **fit_kwargs,
    )


# --------------------------------------------------------------------------- checkpoints
class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, or does not match the model it claims to hold."""


def save(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model`` (its class, config and weights) to ``path``, atomically.

    The file is written beside ``path`` under a temporary name and renamed into place, so a crash
    never leaves a half-written checkpoint. Load it with :func:`load`.
    """
    name = type(model).__name__
    if name not in MODEL_CLASSES or not hasattr(model, "config"):
        raise TypeError(f"save() stores vaebook models ({', '.join(sorted(MODEL_CLASSES))}), got {name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "class": name,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save`: its class from the file, its config, then its weights.

    Reads with ``weights_only=True`` (no code in the file is run). A missing, corrupt or
    mismatched file raises :class:`CheckpointError` saying what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable vaebook checkpoint (corrupt or truncated?): {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a vaebook checkpoint (expected a dict with format={CHECKPOINT_FORMAT!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')!r}; this vaebook reads version {CHECKPOINT_VERSION}"
        )
    try:
        model = build_model(payload["class"], payload["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds a model that cannot be rebuilt: {err}") from err
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: the weights do not match a {payload['class']} with config {payload['config']}: {err}"
        ) from err
    model.eval()
    return model
