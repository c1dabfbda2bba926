"""Image-quality metrics: PSNR for reconstructions, and a sample-realism score for generated digits.

The realism score
-----------------
A generative model's samples should look like real digits. Pixel distances cannot tell: a blurry
average of all digits is close, in squared error, to every real digit. So the score works in the
feature space of a small digit classifier trained on MNIST (shipped with the package, trained by
``scripts/train_scorer.py``), where images that look alike to a digit reader are close:

- **precision** (Kynkäänniemi et al., 2019): the fraction of generated images that land inside the
  real data's manifold, estimated as the union of balls around real feature vectors, each ball
  reaching to that real point's ``n_neighbors``-th nearest real neighbour. A realistic sample is close to
  some real digit *relative to how densely real digits lie there*.
- **recall**: the same with the roles swapped: the fraction of real images covered by the samples'
  manifold. It penalises a model that draws only a few kinds of digits.
- **confidence**: the classifier's mean top-class probability (an Inception-score style reading:
  a digit should look like *some* digit). It is reported to show why it is **not** the headline:
  the classifier is over 99% sure of a class on uniform noise, which lies far outside the real
  digits' manifold (precision 0). A classifier's confidence says nothing about images unlike its
  training data.

Precision is the headline number; the chapters report precision and recall. Real held-out digits set the
ceiling (they score about what real data scores against itself), and decodes of real codes show
how much of the gap is blur rather than unrealistic content.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import NamedTuple

import torch
from torch import Tensor

from .models import DigitClassifier
from .checkpoints import load
from .guards import check_finite, check_float_tensor, check_int, check_positive, check_range

__all__ = ["psnr", "RealismScore", "realism_score", "digit_classifier", "classifier_features"]

SCORER_FILE = "digit_classifier.pt"


def psnr(x: Tensor, reference: Tensor, data_range: float = 1.0) -> Tensor:
    r"""Peak signal-to-noise ratio of each image against its reference, in dB, shape ``(b,)``.

    .. math:: \mathrm{PSNR}(x, y) = 10 \log_{10} \frac{R^2}{\frac1D \lVert x - y\rVert^2}

    with ``R = data_range`` (1 for images in [0, 1]) and ``D`` pixels. +3 dB halves the squared
    error. Average PSNRs over images (as the book's tables do), not MSEs.

    Book: eq-psnr
    """
    check_float_tensor("x", x)
    check_float_tensor("reference", reference)
    if x.shape != reference.shape:
        raise ValueError(f"x and reference: expected the same shape, got {tuple(x.shape)} and {tuple(reference.shape)}")
    if x.dim() < 2:
        raise ValueError(f"x: expected a batch of images (b, ...), got shape {tuple(x.shape)}")
    check_finite("x", x)
    check_finite("reference", reference)
    data_range = check_positive("data_range", data_range)
    mse = (x.float() - reference.float()).pow(2).flatten(1).mean(dim=1)  # (b,)
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


@functools.lru_cache(maxsize=1)
def digit_classifier() -> DigitClassifier:
    """The shipped MNIST classifier (about 99% test accuracy) behind :func:`realism_score`."""
    ref = resources.files("vaebook") / "assets" / SCORER_FILE
    with resources.as_file(ref) as path:
        model = load(path)
    if not isinstance(model, DigitClassifier):
        raise TypeError(f"{SCORER_FILE} holds a {type(model).__name__}, expected a DigitClassifier")
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@torch.no_grad()
def classifier_features(images: Tensor, batch_size: int = 2000) -> tuple[Tensor, Tensor]:
    """Penultimate features ``(n, h)`` and class probabilities ``(n, 10)`` of the shipped classifier."""
    check_float_tensor("images", images)
    batch_size = check_int("batch_size", batch_size, min=1)
    if images.dim() == 2 and images.shape[1] == 784:
        images = images.view(-1, 1, 28, 28)  # (n, 784) -> (n, 1, 28, 28)
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images: expected 28x28 digits, (n, 1, 28, 28) or (n, 784), got shape {tuple(images.shape)}")
    # grey levels, not logits (decode with mean_image); a rounding error's worth outside [0, 1] is allowed
    check_range("images (grey levels; decode with mean_image, not logits)", images, -1e-6, 1 + 1e-6)
    clf = digit_classifier()
    feats, probs = [], []
    for chunk in images.detach().cpu().float().split(batch_size):
        h = clf.embed(chunk)
        feats.append(h)
        probs.append(torch.softmax(clf.head(h), dim=-1))
    return torch.cat(feats), torch.cat(probs)


def _knn_radii(feats: Tensor, n_neighbors: int) -> Tensor:
    """Each point's distance to its ``n_neighbors``-th nearest other point."""
    d = torch.cdist(feats, feats)  # (n, n)
    return d.kthvalue(n_neighbors + 1, dim=1).values  # the 0-th neighbour is the point itself


def _coverage(points: Tensor, centers: Tensor, radii: Tensor) -> Tensor:
    """Fraction of ``points`` inside at least one ball (``centers``, ``radii``)."""
    d = torch.cdist(points, centers)  # (m, n)
    return (d <= radii.unsqueeze(0)).any(dim=1).float().mean()


class RealismScore(NamedTuple):
    """Sample realism against real digits: precision (headline), recall, and classifier confidence, all in [0, 1]."""

    precision: float
    recall: float
    confidence: float

    def __str__(self) -> str:
        return f"precision {self.precision:.3f}, recall {self.recall:.3f}, confidence {self.confidence:.3f}"


def realism_score(images: Tensor, reference: Tensor, n_neighbors: int = 3) -> RealismScore:
    """Score how realistic ``images`` look, against real digits ``reference`` (see the module docstring).

    ``images`` and ``reference``: ``(n, 1, 28, 28)`` grey levels in [0, 1]. Use the same
    ``reference`` set (e.g. 1,000 held-out test digits) and equal ``n`` for every model you compare;
    ``n_neighbors`` sets the neighbourhood size (3, as Kynkäänniemi et al. recommend).
    """
    k = check_int("n_neighbors", n_neighbors, min=1)
    check_float_tensor("images", images)
    check_float_tensor("reference", reference)
    if len(reference) <= k or len(images) <= k:
        raise ValueError(f"images and reference: expected more than n_neighbors={k} of each, got {len(images)} and {len(reference)}")
    f_fake, p_fake = classifier_features(images)
    f_real, _ = classifier_features(reference)
    precision = _coverage(f_fake, f_real, _knn_radii(f_real, k))
    recall = _coverage(f_real, f_fake, _knn_radii(f_fake, k))
    confidence = p_fake.max(dim=1).values.mean()
    return RealismScore(float(precision), float(recall), float(confidence))
