"""What :func:`vaebook.fit` reports and how code attaches to it: :class:`History`, :class:`TrainState`, :class:`Callback`.

Callbacks are how everything beyond the loop attaches to training, as in minGPT's trainer: a
wall-clock budget (:class:`TimeBudget`, here), the progress bar (:class:`vaebook.progress.ProgressBar`),
a live plot, early stopping. A callback reads the :class:`TrainState` and may set ``state.stop``
or ``state.progress``; it does not write into the caller's model or loss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .guards import check_positive
from .losses import LossOutput

__all__ = ["History", "TrainState", "Callback", "TimeBudget"]


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
    loss: Callable[..., LossOutput]  # the run's loss: the caller's, or a copy that a callback set at the start
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

