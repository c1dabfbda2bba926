r"""Training the models of :mod:`vaebook.labels` with :func:`vaebook.fit`, and the classifier's test error.

M2 needs a few labelled images and many unlabelled ones in every batch, which ``fit``'s batches of
one data set do not give; :class:`LabelBatches` makes those batches, and :class:`LabelLoss` scores
them, so that ``fit`` trains these models as it trains every other one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..callbacks import History
from ..data import ImageData, binarize
from ..guards import check_choice, check_int, check_number, describe
from ..losses import LossOutput
from ..batches import BatchSource
from ..train import fit
from .bounds import labelled_elbo, m2_loss
from .models import M2, ConditionalVAE, check_model

# --------------------------------------------------------------------------- training
OBJECTIVES = ("cvae", "m2", "classifier")
LOG_EVERY = 100  # steps per pass of fit: the history holds each metric averaged over every 100 steps


def _check_data(name: str, data, model: ConditionalVAE, labelled: bool) -> tuple[Tensor, Tensor | None]:
    if labelled and not isinstance(data, ImageData):
        raise TypeError(f"{name}: expected an ImageData with labels (e.g. vb.load_mnist('train')[:100]), got {describe(data)}")
    x = data.x if isinstance(data, ImageData) else data
    x2 = model.check_x(f"{name} (images)", x)
    y = model.check_y(f"{name} (labels)", data.y, x2.shape[0]) if labelled else None
    return x2, y


class LabelBatches(BatchSource):
    """Batches of ``labelled_batch_size`` labelled images and, with ``unlabelled``, ``batch_size`` unlabelled ones.

    Each set is drawn in passes over a fresh permutation, however small it is (100 labelled images
    come back every few steps), and every batch is binarized afresh. ``cut`` returns the labelled
    images followed by the unlabelled ones, and the labels of the labelled ones:
    :class:`LabelLoss` splits them again.
    """

    def __init__(self, x_labelled: Tensor, y_labelled: Tensor, x_unlabelled: Tensor | None, labelled_batch_size: int,
                 batch_size: int):
        self.sets = {"labelled": (x_labelled, labelled_batch_size)}
        if x_unlabelled is not None:
            self.sets["unlabelled"] = (x_unlabelled, batch_size)
        self.y = y_labelled
        self.size = sum(bs for _, bs in self.sets.values())
        self.per_epoch = LOG_EVERY
        self.queues = {kind: torch.empty(0, dtype=torch.int64) for kind in self.sets}

    def _next(self, kind: str) -> Tensor:  # indices of the next batch, in passes over a fresh permutation
        x, bs = self.sets[kind]
        while self.queues[kind].numel() < bs:
            self.queues[kind] = torch.cat([self.queues[kind], torch.randperm(x.shape[0], generator=self.generator)])
        idx, self.queues[kind] = self.queues[kind][:bs], self.queues[kind][bs:]
        return idx

    def order(self) -> Tensor:
        return torch.empty(0)  # nothing to draw per pass: the sets keep their own permutations

    def cut(self, order: Tensor, i: int) -> tuple[Tensor, Tensor]:
        idx = self._next("labelled")
        x = binarize(self.sets["labelled"][0][idx], self.generator)
        y = self.y[idx]
        if "unlabelled" in self.sets:
            x = torch.cat([x, binarize(self.sets["unlabelled"][0][self._next("unlabelled")], self.generator)])
        return x.to(self.device), y.to(self.device)


class LabelLoss:
    """What :func:`vaebook.fit` minimises for ``objective`` on :class:`LabelBatches`: ``loss(model, x, y)``.

    The first ``len(y)`` images of ``x`` are the labelled ones. ``"cvae"``: the negative labelled
    bound; ``"m2"``: :func:`~vaebook.labels.m2_loss` with ``alpha``, the rest of ``x`` unlabelled;
    ``"classifier"``: the cross-entropy of the classifier (``model`` is then the classifier itself).
    """

    def __init__(self, objective: str, alpha: float = 0.0):
        self.objective = check_choice("objective", objective, OBJECTIVES)
        self.alpha = check_number("alpha", alpha, min=0.0)

    def __call__(self, model, x: Tensor, y: Tensor) -> LossOutput:
        x_l, x_u = x[:len(y)], x[len(y):]
        if self.objective == "cvae":
            bound = labelled_elbo(model, x_l, y).elbo
            return LossOutput(-bound.mean(), {"elbo": bound.mean().detach()})
        if self.objective == "classifier":
            ce = F.cross_entropy(model(x_l), y)
            return LossOutput(ce, {"cross_entropy": ce.detach()})
        return m2_loss(model, x_l, y, x_u, self.alpha)


def train_labels(
    model: ConditionalVAE,
    labelled: ImageData,
    unlabelled: ImageData | Tensor | None = None,
    *,
    objective: str,
    steps: int,
    alpha: float = 0.0,
    batch_size: int = 100,
    labelled_batch_size: int = 50,
    lr: float = 2e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> History:
    r"""Train a model of this module with :func:`vaebook.fit`, dynamically binarizing every batch; the model ends in eval mode.

    - ``objective="cvae"``: :class:`ConditionalVAE` (or :class:`M2`) on ``labelled`` alone,
      minimising :math:`-\mathcal L(\mathbf x, y)` over batches of ``batch_size``.
    - ``objective="m2"``: :class:`M2` with :func:`m2_loss`; each step takes ``labelled_batch_size``
      labelled images (drawn in passes over the labelled set, however small it is) and
      ``batch_size`` images of ``unlabelled`` (their labels, if any, are not read).
    - ``objective="classifier"``: only :class:`M2`'s classifier, on the cross-entropy of
      ``labelled`` (batches of ``labelled_batch_size``): the supervised baseline for the same
      number of steps.

    The learning rate ``lr`` is held, then decays linearly to 0 over the last 30% of the steps
    (``fit``'s ``"wsd"`` schedule). The returned :class:`~vaebook.History` holds each metric
    averaged over every 100 steps (``fit``'s epochs here). Seeded: a run on the CPU repeats bit for bit.
    """
    objective = check_choice("objective", objective, OBJECTIVES)
    check_model(model, M2 if objective != "cvae" else ConditionalVAE)
    steps = check_int("steps", steps, min=1)
    loss = LabelLoss(objective, alpha)
    batch_size = check_int("batch_size", batch_size, min=1)
    labelled_batch_size = check_int("labelled_batch_size", labelled_batch_size, min=1)
    xl, yl = _check_data("labelled", labelled, model, labelled=True)
    if (unlabelled is None) != (objective != "m2"):
        raise ValueError(f"unlabelled: expected images for objective='m2' and None otherwise, got {describe(unlabelled)} "
                         f"with objective={objective!r}")
    xu = _check_data("unlabelled", unlabelled, model, labelled=False)[0] if unlabelled is not None else None
    assert yl is not None
    batches = LabelBatches(xl, yl, xu, labelled_batch_size if objective != "cvae" else batch_size, batch_size)
    net = model.classifier if isinstance(model, M2) and objective == "classifier" else model
    history = fit(net, batches, steps=steps, lr=lr, loss=loss, schedule="wsd", seed=check_int("seed", seed), device=device,
                  progress=progress)
    model.eval()
    return history


@torch.no_grad()
def error_rate(model: M2, data: ImageData, *, seed: int = 0, batch_size: int = 2000) -> float:
    r"""The share of ``data``'s images whose most probable label under :math:`q_\phi(y\mid\mathbf x)` is wrong.

    The images are binarized once, with ``seed``, as the model saw binary images in training.
    """
    check_model(model, M2)
    x, y = _check_data("data", data, model, labelled=True)
    seed = check_int("seed", seed)
    batch_size = check_int("batch_size", batch_size, min=1)
    assert y is not None
    x = binarize(x, torch.Generator().manual_seed(seed))
    wrong = sum(int((model.classifier(x[i:i + batch_size]).argmax(-1) != y[i:i + batch_size]).sum())
                for i in range(0, x.shape[0], batch_size))
    return wrong / x.shape[0]
