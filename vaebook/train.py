"""Training: seeding, device choice, and :func:`fit`, with the hooks that attach to it.

``fit`` knows nothing about the model it trains: it asks the loss (by default
:func:`vaebook.losses.default_loss` for the model) for a scalar to minimise and for metrics to log.
The one exception is a speed-up, not a change of objective: for an MLP VAE with a Bernoulli
decoder and the standard prior under the default ELBO loss, it takes the loss and its gradients
from :mod:`vaebook.fused`, which computes them without autograd's graph (``fit(fused=False)``
turns this off).
Everything else attaches through callbacks, as in minGPT's trainer: the progress bar
(:class:`ProgressBar`), a wall-clock budget (:class:`TimeBudget`), KL warm-up (:class:`KLWarmup`),
a live plot, early stopping.

Batches are cut from tensors held in memory, with no per-item Python transforms in the loop: that
is what makes it faster than a ``DataLoader`` over torchvision's ``ToTensor`` (see
``benchmarks/train_speed.py``). The data are checked once, at the door, for NaN, infinity and (for
binary likelihoods) values outside [0, 1], rather than at every batch.

A seeded run gives the same numbers on every device, up to floating-point rounding. CUDA's generator
draws other numbers than the CPU's for the same seed, so every random draw of training is made on the
CPU: the batch order, the binarization and the corruption of each batch (cut from the data on the
CPU, with a CPU generator, then moved to the training device), and the noise of the losses
(:mod:`vaebook.draws`). Models are built on the CPU and moved by ``fit``, so their initial weights
are the CPU's too. On a GPU this copies each batch to the device at every step, about 0.4 MB for
128 digits.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from .colab import ensure_widget_support
from .data import ImageData, binarize as _binarize
from .guards import (
    check_callable,
    check_device,
    check_choice,
    check_finite,
    check_float_tensor,
    check_int,
    check_number,
    check_positive,
    check_range,
    describe,
    value_checks,
)
from .fused import AdamStep, fused_elbo_step
from .losses import ELBOLoss, LossOutput, check_loss_output, default_loss
from .models import VAE

__all__ = [
    "seed_everything",
    "default_device",
    "History",
    "Callback",
    "KLWarmup",
    "ProgressBar",
    "TimeBudget",
    "TrainState",
    "fit",
    "train_vae",
    "train_budget_vae",
    "train_2d_vae",
    "evaluate",
]

WEIGHT_LIMIT = 1e4  # a weight this large means training diverged (trained models here stay below about 10)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators, so a run repeats bit for bit on the CPU."""
    seed = check_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """CUDA if a GPU is present (as on a Colab GPU runtime), else Apple's MPS, else the CPU.

    ``$VAEBOOK_DEVICE`` overrides the choice (e.g. ``cpu`` to compare timings).
    """
    env = os.environ.get("VAEBOOK_DEVICE")
    if env:
        return check_device("$VAEBOOK_DEVICE", env)
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
    """What callbacks see: the model, optimizer and loss, where training is, and the history so far."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss: Callable[..., LossOutput]
    history: History
    epoch: int = 0
    step: int = 0
    total_steps: int | None = None  # None: a run bounded by time alone
    progress: float = 0.0  # fraction of the training budget used, in [0, 1]; the schedule follows it
    metrics: dict[str, float] = field(default_factory=dict)  # the last epoch's training metrics
    stop: bool = False  # a callback sets this to end training after the current step


class Callback:
    """Hooks into :func:`fit`. Override any of these; each receives the :class:`TrainState`.

    ``on_fit_end`` runs however training ends, also when it fails.
    """

    def on_fit_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_fit_end(self, state: TrainState) -> None: ...


class KLWarmup(Callback):
    """Anneal the KL weight ``beta`` of an :class:`~vaebook.losses.ELBOLoss` from 0 up to the loss's own
    ``beta`` (1 for the ELBO) over the first ``fraction`` of training.

    Early on, a full KL term pushes every posterior onto the prior before the decoder has learned to
    use ``z``; warming it up keeps more latent units active (Bowman et al., 2016; Sønderby et al., 2016).
    The loss's ``beta`` is the target: a β-VAE's ``ELBOLoss(beta=0.5)`` warms up to 0.5, and its
    ``beta`` is 0.5 again when training ends, however it ends. The reported ``elbo`` metric is always
    the true ELBO (weight 1).
    """

    def __init__(self, fraction: float = 0.2):
        self.fraction = check_number("fraction", fraction, min=0.0, min_open=True, max=1.0)
        self.target: float | None = None  # the loss's beta, read when training starts

    def on_fit_start(self, state: TrainState) -> None:
        if not isinstance(state.loss, ELBOLoss):
            raise TypeError(f"KLWarmup: expected fit's loss to be a vaebook.ELBOLoss (it anneals its beta), got {describe(state.loss)}")
        self.target = state.loss.beta
        state.loss.beta = 0.0

    def on_step_end(self, state: TrainState) -> None:
        assert isinstance(state.loss, ELBOLoss) and self.target is not None  # set at the start
        state.loss.beta = self.target * min(1.0, state.progress / self.fraction)

    def on_fit_end(self, state: TrainState) -> None:
        if isinstance(state.loss, ELBOLoss) and self.target is not None:
            state.loss.beta, self.target = self.target, None


class TimeBudget(Callback):
    """Stop after ``max_seconds`` of wall-clock time; the learning-rate schedule then follows time."""

    def __init__(self, max_seconds: float):
        self.max_seconds = check_positive("max_seconds", max_seconds)
        self.t0 = 0.0

    def on_fit_start(self, state: TrainState) -> None:
        self.t0 = time.perf_counter()

    def on_step_end(self, state: TrainState) -> None:
        used = (time.perf_counter() - self.t0) / self.max_seconds
        state.progress = min(1.0, max(state.progress, used))
        state.stop = state.stop or used >= 1.0


class ProgressBar(Callback):
    """A tqdm bar over the steps (a widget in notebooks, text elsewhere), with the last epoch's metrics."""

    def __init__(self):
        self.bar = None

    def on_fit_start(self, state: TrainState) -> None:
        from tqdm.auto import tqdm

        ensure_widget_support()  # tqdm.auto draws an ipywidgets bar in a notebook
        self.bar = tqdm(total=state.total_steps, unit="step", leave=False, mininterval=0.5)

    def on_step_end(self, state: TrainState) -> None:
        self.bar.update(1)

    def on_epoch_end(self, state: TrainState) -> None:
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in list(state.metrics.items())[:3]}, refresh=False)

    def on_fit_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()


def _as_pair(data, name: str) -> tuple[Tensor, Tensor | None]:
    """Accept ImageData, a tensor of inputs, or an (inputs, targets) pair; check them at the door."""
    if isinstance(data, ImageData):
        x, t = data.x, None
    elif isinstance(data, Tensor):
        x, t = data, None
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(v, Tensor) for v in data):
        x, t = data
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"{name}: expected as many targets as inputs, got {x.shape[0]} inputs and {t.shape[0]} targets")
    else:
        raise TypeError(f"{name}: expected an ImageData, a tensor of examples, or an (inputs, targets) pair of tensors; got {describe(data)}")
    check_float_tensor(f"{name} (inputs)", x)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch of examples, got shape {tuple(x.shape)}")
    check_finite(f"{name} (inputs)", x)
    if t is not None and t.is_floating_point():
        check_finite(f"{name} (targets)", t)
    elif t is not None and (t.dtype == torch.bool or not t.dtype.is_signed and t.dtype != torch.uint8):
        raise TypeError(f"{name} (targets): expected float targets or int64 class labels, got dtype {t.dtype}")
    return x, t


SCHEDULES = ("constant", "cosine", "linear", "wsd")
WSD_DECAY = 0.3  # the fraction of training over which "wsd" decays the learning rate to 0


def _adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel where this PyTorch has one for the device (same update, one pass).

    For a small model on a CPU the optimizer's per-tensor loop is a large share of a step; the
    fused kernel makes ``fit`` about a third faster than a loop with the default Adam
    (``benchmarks/train_speed.py``).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model: expected parameters to train, but this {type(model).__name__} has none that require gradients")
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


def _batch(
    x: Tensor,
    target: Tensor | None,
    idx: Tensor,
    binarize: bool,
    corrupt: Callable | None,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """One batch ``(input, target)`` on ``device``: cut, binarized and corrupted where ``x`` is (the CPU, in fit), then moved.

    A batch that is its own target is moved once, so that the loss sees the same tensor twice.
    """
    xb = x.index_select(0, idx)  # as x[idx], in half the time for a batch of MNIST digits
    if target is not None:
        return xb.to(device), target.index_select(0, idx).to(device)
    if binarize:
        xb = _binarize(xb, generator)
    if corrupt is None:
        xb = xb.to(device)
        return xb, xb
    return corrupt(xb, generator).to(device), xb.to(device)


def _check_weights(model: nn.Module, where: str) -> None:
    """Stop a run whose weights have diverged, although its loss may still be finite."""
    for name, p in model.named_parameters():
        top = p.detach().abs().max()
        if not bool(top <= WEIGHT_LIMIT):  # also catches NaN
            raise FloatingPointError(
                f"training diverged {where}: the largest |weight| of {name} is {top.item():.3g} "
                f"(limit {WEIGHT_LIMIT:g}); try a lower learning rate"
            )


def _check_callbacks(callbacks) -> list[Callback]:
    out = list(callbacks) if isinstance(callbacks, (list, tuple)) else None
    if out is None:
        raise TypeError(f"callbacks: expected a list of vaebook.Callback objects, got {describe(callbacks)}")
    for i, cb in enumerate(out):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}]: expected a vaebook.Callback (subclass it and override its hooks), got {describe(cb)}")
    return out


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

    Binarization and corruption use a CPU generator seeded with ``seed``, so the same data give the
    same numbers at every epoch, and on every device: each batch is cut, binarized and corrupted on
    the CPU, then moved to the model's device.
    """
    batch_size = check_int("batch_size", batch_size, min=1)
    seed = check_int("seed", seed)
    loss_fn = check_callable("loss", loss, "a loss function") if loss is not None else default_loss(model)
    x, target = _as_pair(data, "data")
    if binarize:
        check_range("data (binarize=True needs grey levels)", x, 0.0, 1.0)
    x, target = x.cpu(), (target.cpu() if target is not None else None)
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)  # on the CPU, whatever the model's device
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    n = x.shape[0]
    # The loss may draw noise from the global generator (a VAE's z ~ q): fork it and seed the fork,
    # so evaluating neither changes the random numbers of the training that follows nor depends on them.
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for start in range(0, n, batch_size):
                idx = torch.arange(start, min(n, start + batch_size))
                xb, tb = _batch(x, target, idx, binarize, corrupt, g, device)
                out = check_loss_output(loss_fn(model, xb, tb))
                w = len(idx)
                for k, v in {"loss": out.loss, **out.metrics}.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * w
    finally:  # the model's mode as it came, also when the loss raises
        model.train(was_training)
    return {k: v / n for k, v in sums.items()}


def _length(epochs, steps, max_seconds) -> tuple[int | None, int | None, float | None]:
    if epochs is not None and steps is not None:
        raise ValueError(f"epochs, steps: expected one of them, not both, got epochs={epochs!r} and steps={steps!r}")
    steps = check_int("steps", steps, min=1) if steps is not None else None
    epochs = check_int("epochs", epochs, min=1) if epochs is not None else None
    max_seconds = check_positive("max_seconds", max_seconds) if max_seconds is not None else None
    if epochs is None and steps is None and max_seconds is None:
        epochs = 10
    return epochs, steps, max_seconds


def _training_data(data, binarize: bool, corrupt) -> tuple[Tensor, Tensor | None]:
    x, target = _as_pair(data, "data")
    if target is not None and (binarize or corrupt is not None):
        raise ValueError("binarize, corrupt: these make pairs from plain data; pass either (inputs, targets) pairs or them")
    if binarize:
        check_range("data (binarize=True needs grey levels)", x, 0.0, 1.0)
    if corrupt is not None:
        check_callable("corrupt", corrupt, "a function corrupt(x, generator) -> x_in")
    return x, target


def _check_test_data(test_data, x: Tensor, target: Tensor | None, binarize: bool) -> None:
    """``test_data`` must be what ``data`` is: examples of the same shape, with targets where it has them."""
    tx, tt = _as_pair(test_data, "test_data")
    if tx.shape[1:] != x.shape[1:]:
        raise ValueError(f"test_data: expected examples of the training data's shape {tuple(x.shape[1:])}, "
                         f"got {tuple(tx.shape[1:])}")
    if (tt is None) != (target is None):
        has = "(inputs, targets) pairs" if target is not None else "plain examples"
        raise ValueError(f"test_data: expected {has}, as the training data, got "
                         + ("plain examples" if tt is None else "(inputs, targets) pairs"))
    if binarize:
        check_range("test_data (binarize=True needs grey levels)", tx, 0.0, 1.0)


def _with_builtin_callbacks(callbacks: list[Callback], progress: bool | None, max_seconds: float | None) -> list[Callback]:
    """The caller's callbacks, with the time budget first and the progress bar last where they apply."""
    if progress if progress is not None else os.environ.get("VAEBOOK_PROGRESS", "1") != "0":
        callbacks.append(ProgressBar())
    if max_seconds is not None:
        callbacks.insert(0, TimeBudget(max_seconds))
    return callbacks


def fit(
    model: nn.Module,
    data,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    max_seconds: float | None = None,
    lr: float = 1e-3,
    batch_size: int = 128,
    test_data=None,
    binarize: bool = False,
    corrupt: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    loss: Callable[..., LossOutput] | None = None,
    schedule: str = "constant",
    warmup: float = 0.0,
    weight_decay: float = 0.0,
    callbacks: Iterable[Callback] = (),
    device: torch.device | str | None = None,
    seed: int | None = 0,
    progress: bool | None = None,
    fused: bool = True,
) -> History:
    """Train ``model`` with Adam on in-memory batches; return the per-epoch :class:`History`.

    - ``data``: an :class:`~vaebook.ImageData`, a tensor (the targets are the inputs), or an
      ``(inputs, targets)`` pair, e.g. precomputed (noisy, clean) images. Checked once, at the door,
      for NaN and infinity (and for values in [0, 1] where ``binarize`` needs them).
    - Length: ``epochs`` passes over the data (default 10); or ``steps``, exactly that many batches,
      the last pass cut short where it ends; or ``max_seconds`` of wall-clock time (then the schedule
      follows time; with ``epochs`` or ``steps`` too, whichever ends first).
    - ``binarize=True``: dynamic binarization, a fresh Bernoulli draw of every batch.
    - ``corrupt(x, generator) -> x_in``: a fresh corruption of every batch (denoising and
      super-resolution pairs): the model sees ``x_in`` and is scored against the clean ``x``.
    - ``loss(model, x, target) -> LossOutput``: the objective; default
      :func:`vaebook.losses.default_loss` for the model (e.g. an :class:`~vaebook.losses.ELBOLoss` for a VAE).
    - ``schedule``: the learning rate: ``"constant"``; ``"cosine"`` or ``"linear"`` decay to 0; or
      ``"wsd"`` (warm-up, stable, decay): constant, then a linear decay to 0 over the last 30%,
      which suits short budgets (the VAE recipe uses it). ``warmup`` is a linear ramp over that
      fraction of training first.
    - ``test_data``: evaluated after each epoch (fixed binarization/corruption seed).
    - ``callbacks``: :class:`Callback` objects; ``progress`` adds a :class:`ProgressBar` (``None``: on
      unless ``$VAEBOOK_PROGRESS=0``), ``max_seconds`` a :class:`TimeBudget`.
    - ``seed``: seeds everything first, so a run on the CPU repeats bit for bit. ``None`` does not seed.
    - ``device``: where to train, default :func:`default_device` (a GPU when there is one). The
      model goes back to the device it came from when training ends. The data stay on the CPU, where
      each batch is cut, binarized and corrupted (``corrupt`` receives CPU tensors and a CPU
      generator), and every random draw is made on the CPU: a seeded run on a GPU draws the same
      batches and noise as on the CPU, and its numbers differ by floating-point rounding alone.
    - ``fused``: for an MLP :class:`~vaebook.VAE` with a Bernoulli decoder and the standard prior
      under the default :class:`~vaebook.ELBOLoss`, on the CPU, compute each step's gradients with
      the hand-derived backward pass of :mod:`vaebook.fused` rather than autograd's graph: the same
      loss, the same noise, gradients equal to rounding, and a faster step. The first step always
      runs through autograd (and the loss's own checks). ``False`` uses autograd throughout.

    A non-finite loss stops training with a ``FloatingPointError`` that names the epoch and step, and
    so do weights that diverge (checked every 100 steps and after every epoch).
    """
    epochs, steps, max_seconds = _length(epochs, steps, max_seconds)
    batch_size, lr = check_int("batch_size", batch_size, min=1), check_positive("lr", lr)
    check_choice("schedule", schedule, SCHEDULES)
    warmup = check_number("warmup", warmup, min=0.0, max=0.99)
    weight_decay = check_number("weight_decay", weight_decay, min=0.0)
    if not isinstance(fused, bool):
        raise TypeError(f"fused: expected True or False, got {describe(fused)}")
    x, target = _training_data(data, binarize, corrupt)
    if test_data is not None:  # checked here, not when the first epoch ends
        _check_test_data(test_data, x, target, binarize)
    device = check_device("device", device) if device is not None else default_device()
    loss_fn = check_callable("loss", loss, "a loss function loss(model, x, target)") if loss is not None else default_loss(model)
    callbacks = _with_builtin_callbacks(_check_callbacks(callbacks), progress, max_seconds)
    if seed is not None:
        seed_everything(seed)

    home = next(model.parameters()).device  # where the caller keeps the model; it goes back there
    model.to(device).train()
    x, target = x.cpu(), (target.cpu() if target is not None else None)  # batches are cut on the CPU, then moved
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)  # the CPU's, whatever the device
    opt = _adam(model, lr, weight_decay)
    adam_step = AdamStep(opt)  # opt.step(), with less Python around the fused kernel
    fused_step = fused_elbo_step(model, loss_fn) if fused and target is None and corrupt is None else None
    n = x.shape[0]
    bs = min(batch_size, n)
    steps_per_epoch = n // bs  # the last partial batch is dropped: every step sees bs examples
    total = steps if steps is not None else (epochs * steps_per_epoch if epochs is not None else None)
    n_epochs = -(-total // steps_per_epoch) if total is not None else math.inf  # the last one may be cut short
    history = History()
    state = TrainState(model, opt, loss_fn, history, total_steps=total)
    t0 = time.perf_counter()
    try:
        for cb in callbacks:
            cb.on_fit_start(state)
        while state.epoch < n_epochs and not state.stop:
            state.epoch += 1
            sums: dict[str, Tensor | float] = {}
            perm = torch.randperm(n, generator=g)
            first_step = state.step
            for i in range(steps_per_epoch if total is None else min(steps_per_epoch, total - state.step)):
                factor = _lr_factor(schedule, state.progress, warmup)
                for group in opt.param_groups:
                    group["lr"] = lr * factor
                # the data were scanned at the door; the first batch also checks the loss's own inputs
                by_hand = fused_step if state.step > 0 else None
                with value_checks(state.step == 0):
                    xb, tb = _batch(x, target, perm[i * bs:(i + 1) * bs], binarize, corrupt, g, device)
                    out = by_hand(xb) if by_hand is not None else check_loss_output(loss_fn(model, xb, tb))
                if not torch.isfinite(out.loss):
                    raise FloatingPointError(
                        f"the loss became {out.loss.item()} at epoch {state.epoch}, step {i + 1} "
                        f"(step {state.step + 1} overall) with lr={lr * factor:.3g}; "
                        "try a lower learning rate, or check the data for NaN or infinite values"
                    )
                if by_hand is None:  # the fused step has set every .grad already
                    opt.zero_grad(set_to_none=True)
                    out.loss.backward()
                adam_step()
                state.step += 1
                if total is not None:
                    state.progress = state.step / total
                for k, v in {"loss": out.loss.detach(), **out.metrics}.items():
                    sums[k] = sums.get(k, 0.0) + v
                if state.step % 100 == 0:
                    _check_weights(model, f"by step {state.step}")
                for cb in callbacks:
                    cb.on_step_end(state)
                if state.stop:
                    break
            if state.step == first_step:
                break
            _check_weights(model, f"in epoch {state.epoch}")
            history.epochs, history.steps, history.images = state.epoch, state.step, state.step * bs
            history.lr.append(lr * factor)
            for k, summed in sums.items():
                history.train.setdefault(k, []).append(float(summed) / (state.step - first_step))
            if test_data is not None:
                for k, mean in evaluate(model, test_data, binarize=binarize, corrupt=corrupt, loss=loss_fn).items():
                    history.test.setdefault(k, []).append(mean)
                model.train()
            state.metrics = {k: v[-1] for k, v in history.train.items()}
            for cb in callbacks:
                cb.on_epoch_end(state)
    finally:
        history.seconds = time.perf_counter() - t0
        model.eval()
        model.to(home)
        for cb in callbacks:
            cb.on_fit_end(state)
    return history


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
    x, target = _as_pair(data, "data")
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
        binarize=vae.likelihood == "bernoulli",
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
