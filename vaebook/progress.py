"""The progress bar of :func:`vaebook.fit`: a callback, attached by ``fit(progress=...)`` (on by default in notebooks)."""

from __future__ import annotations

from .callbacks import Callback, TrainState
from .colab import ensure_widget_support

__all__ = ["ProgressBar"]


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
