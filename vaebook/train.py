"""The training engine: seeding, device choice, :func:`evaluate`, and :func:`fit`.

``fit`` knows nothing about the model it trains. It checks every argument at the door, then asks
the loss (by default :func:`vaebook.losses.default_loss` for the model) for a scalar to minimise
and metrics to log, and it chooses once, before the first step, how each step's gradients are
computed: by autograd, or by the hand-derived step that :mod:`vaebook.fused` offers for the models
it covers (``fit(fused=False)`` turns this off). The loop itself reads a batch, takes the step,
updates the weights with Adam and calls the callbacks (:mod:`vaebook.callbacks`), with no branch
on the kind of model. Everything else attaches through callbacks: a wall-clock budget
(:class:`~vaebook.callbacks.TimeBudget`), the progress bar (:mod:`vaebook.progress`), a live plot,
early stopping. The library's VAE recipes, built on ``fit``, are in :mod:`vaebook.recipes`.

Batches (:mod:`vaebook.batches`) are cut from tensors held in memory, with no per-item Python transforms in the loop: that
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
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from .batches import BatchSource, DataBatches, cut_batch, data_pair
from .callbacks import Callback, History, TimeBudget, TrainState
from .fused import AdamStep, fused_elbo_step
from .guards import (
    check_callable,
    check_device,
    check_choice,
    check_int,
    check_number,
    check_positive,
    check_range,
    describe,
    value_checks,
)
from .losses import LossOutput, check_loss_output, default_loss
from .progress import ProgressBar

__all__ = ["seed_everything", "default_device", "evaluate", "fit", "LR_SCHEDULES", "WSD_DECAY"]

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


LR_SCHEDULES = ("constant", "cosine", "linear", "wsd")  # the learning-rate schedules of fit(schedule=...)
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
    x, target = data_pair(data, "data")
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
                xb, tb = cut_batch(x, target, idx, binarize, corrupt, g, device)
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


def _check_options(batch_size, lr, schedule, warmup, weight_decay, fused) -> tuple[int, float, float, float]:
    """fit's optimisation settings, checked: ``(batch_size, lr, warmup, weight_decay)``."""
    check_choice("schedule", schedule, LR_SCHEDULES)
    if not isinstance(fused, bool):
        raise TypeError(f"fused: expected True or False, got {describe(fused)}")
    return (check_int("batch_size", batch_size, min=1), check_positive("lr", lr),
            check_number("warmup", warmup, min=0.0, max=0.99), check_number("weight_decay", weight_decay, min=0.0))


def _batch_source(data, batch_size: int, binarize: bool, corrupt, test_data) -> BatchSource:
    """fit's data, checked at the door (``test_data`` too): the caller's :class:`BatchSource`, or batches cut from ``data``."""
    if isinstance(data, BatchSource):
        unused = [k for k, given in (("binarize", binarize), ("corrupt", corrupt is not None), ("test_data", test_data is not None)) if given]
        if unused:
            raise ValueError(f"{', '.join(unused)}: not used when data is a BatchSource, which makes its own batches; leave them out")
        if data.size < 1 or data.per_epoch < 1:
            raise ValueError(f"data: expected a BatchSource with size >= 1 and per_epoch >= 1, got size={data.size} "
                             f"and per_epoch={data.per_epoch}")
        return data
    x, target = data_pair(data, "data")
    if target is not None and (binarize or corrupt is not None):
        raise ValueError("binarize, corrupt: these make pairs from plain data; pass either (inputs, targets) pairs or them")
    if binarize:
        check_range("data (binarize=True needs grey levels)", x, 0.0, 1.0)
    if corrupt is not None:
        check_callable("corrupt", corrupt, "a function corrupt(x, generator) -> x_in")
    if test_data is not None:  # checked here, not when the first epoch ends
        _check_test_data(test_data, x, target, binarize)
    return DataBatches(x.cpu(), target.cpu() if target is not None else None, batch_size, binarize, corrupt)


def _check_test_data(test_data, x: Tensor, target: Tensor | None, binarize: bool) -> None:
    """``test_data`` must be what ``data`` is: examples of the same shape, with targets where it has them."""
    tx, tt = data_pair(test_data, "test_data")
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
      for NaN and infinity (and for values in [0, 1] where ``binarize`` needs them). Or a
      :class:`~vaebook.batches.BatchSource` that makes each batch itself.
    - Length: ``epochs`` passes over the data (default 10); or ``steps``, exactly that many batches,
      the last pass cut short where it ends; or ``max_seconds`` of wall-clock time (then the schedule
      follows time; with ``epochs`` or ``steps`` too, whichever ends first).
    - ``binarize=True``: dynamic binarization, a fresh Bernoulli draw of every batch.
    - ``corrupt(x, generator) -> x_in``: a fresh corruption of every batch (denoising and
      super-resolution pairs): the model sees ``x_in`` and is scored against the clean ``x``.
    - ``loss(model, x, target) -> LossOutput``: the objective; default
      :func:`vaebook.losses.default_loss` for the model (e.g. an :class:`~vaebook.losses.ELBOLoss` for a VAE).
      A loss with a method ``at_progress(progress)`` (an ``ELBOLoss`` with a warm-up) is asked
      before every step for the loss to use at that point of training.
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
    - ``fused``: where :mod:`vaebook.fused` offers a hand-derived step for the model and loss (an MLP
      :class:`~vaebook.VAE` with a Bernoulli or Gaussian decoder and the standard prior, an
      :class:`~vaebook.ELBOLoss`, the CPU), use it from the second step on, chosen once before the
      first: the same loss and noise, gradients equal to rounding, a faster step. ``False``: autograd.

    A non-finite loss stops training with a ``FloatingPointError`` that names the epoch and step, and
    so do weights that diverge (checked every 100 steps and after every epoch).
    """
    epochs, steps, max_seconds = _length(epochs, steps, max_seconds)
    batch_size, lr, warmup, weight_decay = _check_options(batch_size, lr, schedule, warmup, weight_decay, fused)
    batches = _batch_source(data, batch_size, binarize, corrupt, test_data)
    device = check_device("device", device) if device is not None else default_device()
    loss_fn = check_callable("loss", loss, "a loss function loss(model, x, target)") if loss is not None else default_loss(model)
    callbacks = _with_builtin_callbacks(_check_callbacks(callbacks), progress, max_seconds)
    if seed is not None:
        seed_everything(seed)

    home = next(model.parameters()).device  # where the caller keeps the model; it goes back there
    model.to(device).train()
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)  # the CPU's, whatever the device
    batches.start(g, device)
    opt = _adam(model, lr, weight_decay)
    total = steps if steps is not None else (epochs * batches.per_epoch if epochs is not None else None)
    state = TrainState(model, opt, loss_fn, History(), total_steps=total)
    lr_at = _LearningRate(opt, lr, schedule, warmup)
    t0 = time.perf_counter()
    try:
        for cb in callbacks:
            cb.on_fit_start(state)
        step = _choose_step(model, state.loss, opt, fused and batches.plain)  # once, at the door
        n_epochs = -(-total // batches.per_epoch) if total is not None else math.inf  # the last one may be cut short
        adam_step = AdamStep(opt)  # opt.step(), with less Python around the fused kernel
        while state.epoch < n_epochs and not state.stop and _run_epoch(state, step, adam_step, batches, lr_at, callbacks):
            if test_data is not None:  # with the loss as it stands at this point of training
                loss_now = _loss_at(state.loss, state.progress)
                for k, mean in evaluate(model, test_data, binarize=binarize, corrupt=corrupt, loss=loss_now).items():
                    state.history.test.setdefault(k, []).append(mean)
                model.train()
            for cb in callbacks:
                cb.on_epoch_end(state)
    finally:
        state.history.seconds = time.perf_counter() - t0
        model.eval()
        model.to(home)
        for cb in callbacks:
            cb.on_fit_end(state)
    return state.history


class _LearningRate:
    """Sets the optimizer's learning rate for a point of training, and remembers the last one set."""

    def __init__(self, opt: torch.optim.Optimizer, lr: float, schedule: str, warmup: float):
        self.opt, self.lr, self.schedule, self.warmup, self.last = opt, lr, schedule, warmup, lr

    def __call__(self, progress: float) -> float:
        self.last = self.lr * _lr_factor(self.schedule, progress, self.warmup)
        for group in self.opt.param_groups:
            group["lr"] = self.last
        return self.last


Step = Callable[[Tensor, Tensor, Callable[..., LossOutput], bool], LossOutput]


def _loss_at(loss: Callable[..., LossOutput], progress: float) -> Callable[..., LossOutput]:
    """The loss to use at ``progress``: a loss whose objective follows training (a KL warm-up) says which; any other is itself."""
    at = getattr(loss, "at_progress", None)
    return at(progress) if at is not None else loss


def _choose_step(model: nn.Module, loss: Callable[..., LossOutput], opt: torch.optim.Optimizer, may_fuse: bool) -> Step:
    """``step(x, target, loss, first) -> LossOutput``, with every parameter's ``.grad`` set: chosen once, before training.

    Autograd's backward pass, or where ``may_fuse`` and :func:`vaebook.fused.fused_elbo_step` covers
    the model and loss, the hand-derived one (from the second step on: the first runs through
    autograd and the loss's own checks).
    """
    by_hand = fused_elbo_step(model, loss) if may_fuse else None

    def autograd_step(xb: Tensor, tb: Tensor, loss_now: Callable[..., LossOutput], first: bool) -> LossOutput:
        out = check_loss_output(loss_now(model, xb, tb))
        if torch.isfinite(out.loss):  # a non-finite loss stops training: fit raises, with no backward pass
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
        return out

    if by_hand is None:
        return autograd_step

    def fused_step(xb: Tensor, tb: Tensor, loss_now: Callable[..., LossOutput], first: bool) -> LossOutput:
        return autograd_step(xb, tb, loss_now, first) if first else by_hand(xb, loss_now)  # type: ignore[arg-type]

    return fused_step


def _run_epoch(state: TrainState, step: Step, adam_step: Callable[[], None], batches: BatchSource, lr_at: _LearningRate,
               callbacks: list[Callback]) -> bool:
    """One pass over the data (cut short where training ends); record it. ``False`` if it took no step."""
    state.epoch += 1
    sums: dict[str, Tensor | float] = {}
    perm, first_step, total = batches.order(), state.step, state.total_steps
    for i in range(batches.per_epoch if total is None else min(batches.per_epoch, total - state.step)):
        lr = lr_at(state.progress)
        loss_now = _loss_at(state.loss, state.progress)
        with value_checks(state.step == 0):  # the data were scanned at the door; the first batch also checks the loss's inputs
            xb, tb = batches.cut(perm, i)
            out = step(xb, tb, loss_now, state.step == 0)
        if not torch.isfinite(out.loss):
            raise FloatingPointError(
                f"the loss became {out.loss.item()} at epoch {state.epoch}, step {i + 1} "
                f"(step {state.step + 1} overall) with lr={lr:.3g}; "
                "try a lower learning rate, or check the data for NaN or infinite values"
            )
        adam_step()
        state.step += 1
        if total is not None:
            state.progress = state.step / total
        for k, v in {"loss": out.loss.detach(), **out.metrics}.items():
            sums[k] = sums.get(k, 0.0) + v
        if state.step % 100 == 0:
            _check_weights(state.model, f"by step {state.step}")
        for cb in callbacks:
            cb.on_step_end(state)
        if state.stop:
            break
    if state.step == first_step:
        return False
    _check_weights(state.model, f"in epoch {state.epoch}")
    history = state.history
    history.epochs, history.steps, history.images = state.epoch, state.step, state.step * batches.size
    history.lr.append(lr_at.last)
    for k, summed in sums.items():
        history.train.setdefault(k, []).append(float(summed) / (state.step - first_step))
    state.metrics = {k: v[-1] for k, v in history.train.items()}
    return True
