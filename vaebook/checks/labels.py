"""The checks of the coding exercises of chapter 14 (labels: conditional and semi-supervised VAEs), one function per exercise.

Each takes the student's function, runs it on the inputs listed here, and compares it with the
library's reference through :func:`vaebook.checks.core.check`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import labels as _labels
from .core import Case, check
from .core import gen as _gen

__all__ = ["unlabelled_bound"]


def unlabelled_bound(fn: Callable[[Tensor, Tensor], Tensor], *, strict: bool = False) -> None:
    """Exercise: ``fn(per_label, logits_y)`` is M2's bound for images without labels, per example ``(b,)``.

    ``per_label`` ``(b, K)`` holds the labelled bound of each image under each label, ``logits_y``
    ``(b, K)`` the classifier's logits; with ``q = softmax(logits_y)``, the bound is
    ``sum_y q_y per_label_y + H[q]``, the entropy ``H[q] = -sum_y q_y log q_y``.
    """
    g = _gen(140)
    per_label = -90.0 - 30.0 * torch.rand(6, 10, generator=g)
    logits = 3.0 * torch.randn(6, 10, generator=g)
    confident = torch.full((2, 10), -20.0)
    confident[:, 3] = 20.0
    cases = [
        Case((per_label, logits), "6 images, 10 labels, random bounds and logits"),
        Case((per_label[:2], torch.zeros(2, 10)), "a uniform q(y|x): the entropy is log 10"),
        Case((per_label[:2], confident), "a confident q(y|x) on label 3: the bound is almost L(x, 3)"),
        Case((torch.tensor([[-5.0, -7.0, -6.0]]), torch.tensor([[0.5, -1.0, 2.0]])), "one image, 3 labels"),
    ]

    def q(case):
        return torch.softmax(case.args[1], -1)

    def log_q(case):
        return torch.log_softmax(case.args[1], -1)

    hints = [
        (lambda r, case: (q(case) * case.args[0]).sum(-1) + (q(case) * log_q(case)).sum(-1),
         "the entropy is -sum_y q log q: add it, that is, subtract sum_y q log q."),
        (lambda r, case: (q(case) * case.args[0]).sum(-1),
         "the entropy of q(y|x) is missing: without it the bound is not a bound on log p(x)."),
        (lambda r, case: (case.args[1] * case.args[0]).sum(-1) - (q(case) * log_q(case)).sum(-1),
         "weight the labelled bounds with the probabilities q(y|x) = softmax(logits), not with the logits."),
        (lambda r, case: (q(case) * case.args[0]).mean(-1) - (q(case) * log_q(case)).sum(-1),
         "an expectation under q(y|x) is a weighted sum over the labels, not a mean."),
        (lambda r, case: torch.logsumexp(case.args[0], -1),
         "this is the bound at its best q(y|x), log sum_y exp L(x, y); use the classifier's q(y|x) from logits_y."),
    ]
    check("unlabelled_bound", fn, _labels.unlabelled_bound, cases, hints=hints, atol=1e-4, rtol=1e-5, strict=strict)
