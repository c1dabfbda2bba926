"""Classical baselines that the learned models are measured against: denoising filters and PCA projection.

- :func:`denoise` applies one classical filter to every image of a batch: a Gaussian blur, a median
  filter, scikit-image's non-local means (Buades et al., 2005) or total-variation denoising
  (Rudin, Osher & Fatemi, 1992).
- :func:`tune` picks a filter's parameter the fair way: the value with the best mean PSNR on a
  *validation* split of (noisy, clean) pairs, never on the test images it is then scored on.
- :func:`fit_pca` fits a :class:`PCAProjection` on clean training images; projecting a noisy image
  onto the top ``n_components`` principal components keeps what digits have in common and drops
  most of the noise. Its ``n_components`` is tuned like a filter's parameter.

Bicubic upsampling, the super-resolution baseline, is :func:`vaebook.upsample`.

Every function takes and returns float tensors of images ``(b, 1, H, W)``; the filters run on the
CPU with NumPy/SciPy/scikit-image and return a tensor on the input's device and dtype.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .guards import check_callable, check_finite, check_float_tensor, check_int, check_number, describe
from .metrics import psnr

__all__ = ["FILTERS", "FILTER_NAMES", "DEFAULT_GRIDS", "denoise", "Tuned", "tune", "tune_all", "mean_psnr", "PCAProjection", "fit_pca"]

FILTERS = ("gaussian", "median", "nlm", "tv")
FILTER_NAMES = {"gaussian": "Gaussian blur", "median": "median", "nlm": "non-local means", "tv": "total variation"}

# Parameter grids wide enough for Gaussian noise with a standard deviation from about 0.05 to 0.8
# on images in [0, 1], in steps of about x1.5-2 (tune() refines between the best value and its
# neighbours). Each filter has one parameter that sets how strongly it smooths.
DEFAULT_GRIDS: dict[str, dict[str, list]] = {
    "gaussian": {"sigma": [0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]},  # blur width, in pixels
    "median": {"size": [2, 3, 4, 5, 7]},  # window side, in pixels
    "nlm": {"h": [0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2]},  # patch-distance cut-off, in grey levels
    "tv": {"weight": [0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2]},  # strength of the TV penalty
}


def _check_batch(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of images, got {getattr(x, 'dtype', type(x))}")
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must be grey images of shape (b, 1, H, W), got {tuple(x.shape)}")
    if x.numel() and not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")


def _check_params(method: str, params: Mapping) -> None:
    allowed = {
        "gaussian": {"sigma"},
        "median": {"size"},
        "nlm": {"h", "patch_size", "patch_distance", "sigma"},
        "tv": {"weight", "max_num_iter"},
    }[method]
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for the {method!r} filter; it takes {sorted(allowed)}")
    for name, value in params.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise TypeError(f"{method} parameter {name} must be a finite number, got {value!r}")
        if name in ("size", "patch_size", "patch_distance", "max_num_iter"):
            if int(value) != value or value < 1:
                raise ValueError(f"{method} parameter {name} must be a positive integer, got {value!r}")
        elif name == "sigma" and method == "nlm":
            if value < 0:
                raise ValueError(f"nlm parameter sigma (the noise level) must be >= 0, got {value!r}")
        elif value <= 0:
            raise ValueError(f"{method} parameter {name} must be positive, got {value!r}")


def denoise(x: Tensor, method: str, clip: bool = True, **params) -> Tensor:
    r"""Apply one classical denoising filter to each image of ``x`` ``(b, 1, H, W)``; return the same shape.

    - ``"gaussian"``: Gaussian blur of standard deviation ``sigma`` pixels (default 1).
    - ``"median"``: the median over a ``size x size`` window (default 3): it removes isolated
      outliers (salt-and-pepper noise) while keeping edges.
    - ``"nlm"``: non-local means (scikit-image, fast mode): each pixel becomes a weighted mean of
      pixels whose surrounding ``patch_size`` patches look alike, weight
      :math:`\exp(-\max(\lVert P_i - P_j\rVert^2 - 2\sigma^2, 0)/h^2)`, searched within
      ``patch_distance`` pixels. Defaults ``h=0.3``, ``patch_size=5``, ``patch_distance=3``, ``sigma=0``;
      give ``sigma``, the noise's standard deviation, when it is known.
    - ``"tv"``: total-variation denoising (Chambolle's algorithm in scikit-image),
      :math:`\min_u \tfrac12\lVert u - \tilde x\rVert^2 + \lambda\,\mathrm{TV}(u)` with
      :math:`\lambda` = ``weight`` (default 0.1).

    ``clip=True`` clamps the output to [0, 1], where clean images live (a free improvement that the
    learned models, with their sigmoid outputs, also have). The filters see ``x`` as it is: with
    unclipped Gaussian noise the noisy input may leave [0, 1].

    Book: eq-tv
    """
    _check_batch(x)
    if method not in FILTERS:
        raise ValueError(f"method must be one of {FILTERS}, got {method!r}")
    _check_params(method, params)
    arr = x.detach().cpu().double().numpy()[:, 0]  # (b, H, W)
    if method == "gaussian":
        from scipy import ndimage

        s = float(params.get("sigma", 1.0))
        out = ndimage.gaussian_filter(arr, sigma=(0, s, s), mode="reflect")  # blur within each image only
    elif method == "median":
        from scipy import ndimage

        k = int(params.get("size", 3))
        out = ndimage.median_filter(arr, size=(1, k, k), mode="reflect")  # (b, H, W), window within each image
    elif method == "nlm":
        from skimage.restoration import denoise_nl_means

        kw = {
            "h": float(params.get("h", 0.3)),
            "patch_size": int(params.get("patch_size", 5)),
            "patch_distance": int(params.get("patch_distance", 3)),
            "sigma": float(params.get("sigma", 0.0)),
        }
        out = np.stack([denoise_nl_means(img, fast_mode=True, **kw) for img in arr]) if len(arr) else arr
    else:
        from skimage.restoration import denoise_tv_chambolle

        w = float(params.get("weight", 0.1))
        n_iter = int(params.get("max_num_iter", 200))
        out = np.stack([denoise_tv_chambolle(img, weight=w, max_num_iter=n_iter) for img in arr]) if len(arr) else arr
    y = torch.from_numpy(np.ascontiguousarray(out)).unsqueeze(1)  # (b, H, W) -> (b, 1, H, W)
    y = y.to(device=x.device, dtype=x.dtype)
    return y.clamp(0.0, 1.0) if clip else y


@dataclass
class Tuned:
    """A denoiser with its parameters tuned on validation pairs. Call it on images: ``tuned(noisy)``.

    ``name`` is the filter (or ``"pca"``), ``params`` the chosen values, ``val_psnr`` the mean
    validation PSNR they reached, and ``scores`` the mean validation PSNR of every value tried.
    """

    name: str
    params: dict
    val_psnr: float
    scores: dict = field(default_factory=dict)
    apply: Callable[..., Tensor] | None = field(default=None, repr=False)

    def __call__(self, x: Tensor) -> Tensor:
        if self.apply is None:
            return denoise(x, self.name, **self.params)
        return self.apply(x, **self.params)


def _midpoints(tried: list, best) -> list:
    """Values halfway (geometrically) between ``best`` and its neighbours among ``tried``, not yet tried."""
    values = sorted(tried)
    i = values.index(best)
    out = []
    for j in (i - 1, i + 1):
        if 0 <= j < len(values):
            a, b = values[j], best
            mid = math.sqrt(a * b) if a > 0 and b > 0 else (a + b) / 2
            if isinstance(best, int) and isinstance(values[j], int):
                mid = int(round(mid))
            if all(not math.isclose(mid, v) for v in values):
                out.append(mid)
    return out


def tune(
    method: str | Callable[..., Tensor],
    noisy: Tensor,
    clean: Tensor,
    grid: Mapping[str, Sequence] | None = None,
    *,
    refine: int = 2,
    name: str | None = None,
    **fixed,
) -> Tuned:
    r"""Choose a denoiser's parameter by the best mean PSNR on validation pairs ``(noisy, clean)``.

    - ``method``: a filter name from :data:`FILTERS` (its grid defaults to :data:`DEFAULT_GRIDS`),
      or any ``fn(x, **params) -> x_hat`` (then give ``grid``, and a ``name`` for tables).
    - ``grid``: ``{parameter: values}``. Every combination is tried; ties go to the first.
    - ``refine``: for a one-parameter grid, this many rounds that also try the values halfway
      (geometrically) between the best value so far and its neighbours, so a coarse grid does
      not handicap a filter whose best setting falls between two grid points.
    - ``fixed``: parameters passed unchanged to every call (e.g. ``sigma=0.5``, the known noise
      level, for non-local means).

    Tune on a split that is not the test set, then score ``tuned(test_noisy)`` on the test set:
    choosing the parameter on the test images themselves would flatter the baseline. PSNR is
    averaged over images.

    Book: eq-psnr
    """
    _check_batch(noisy, "noisy")
    _check_batch(clean, "clean")
    if noisy.shape != clean.shape:
        raise ValueError(f"noisy and clean must have the same shape, got {tuple(noisy.shape)} and {tuple(clean.shape)}")
    if len(noisy) == 0:
        raise ValueError("tune needs at least one validation pair")
    if not isinstance(refine, int) or refine < 0:
        raise ValueError(f"refine must be a non-negative int, got {refine!r}")
    if isinstance(method, str):
        if method not in FILTERS:
            raise ValueError(f"method must be one of {FILTERS} or a callable, got {method!r}")
        grid = DEFAULT_GRIDS[method] if grid is None else grid
        _check_params(method, {**{k: v[0] for k, v in grid.items() if len(v)}, **fixed})
        fn = None
        label: str = name or method
    elif callable(method):
        if grid is None:
            raise ValueError("tune(callable, ...) needs a grid of parameter values, e.g. {'n_components': [10, 20, 40]}")
        fn = method
        label = name or str(getattr(method, "__name__", "denoiser"))
    else:
        raise TypeError(f"method must be a filter name or a callable, got {type(method).__name__}")
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise ValueError(f"grid must map each parameter to a non-empty list of values, got {dict(grid or {})!r}")
    overlap = sorted(set(grid) & set(fixed))
    if overlap:
        raise ValueError(f"parameter(s) {overlap} are both in the grid and fixed; give each in one place")
    keys = list(grid)
    scores: dict = {}

    def score(values: tuple) -> float:
        params = {**dict(zip(keys, values, strict=True)), **fixed}
        return mean_psnr(lambda x: fn(x, **params) if fn is not None else denoise(x, str(method), **params), noisy, clean)

    for values in itertools.product(*(grid[k] for k in keys)):
        scores[values] = score(values)
    if len(keys) == 1:
        for _ in range(refine):
            best = max(scores, key=lambda v: scores[v])[0]
            new = _midpoints([v[0] for v in scores], best)
            if not new:
                break
            for v in new:
                scores[(v,)] = score((v,))
    best_values = max(scores, key=lambda v: scores[v])  # the first of equals: dicts keep insertion order
    params = {**dict(zip(keys, best_values, strict=True)), **fixed}
    table = {(k[0] if len(k) == 1 else k): v for k, v in sorted(scores.items())}
    return Tuned(label, params, scores[best_values], table, apply=fn)


@torch.no_grad()
def mean_psnr(denoiser: Callable[[Tensor], Tensor], inputs: Tensor, targets: Tensor) -> float:
    """The mean over images of the PSNR of ``denoiser(inputs)`` against ``targets``, in dB (no gradients).

    ``denoiser`` is any callable on a batch: a :class:`Tuned` filter, a model, ``lambda x: x``.
    PSNRs are averaged over images, as the book's tables do (not the PSNR of the mean error).

    Book: eq-psnr
    """
    check_callable("denoiser", denoiser, "a function or model mapping a batch of inputs to images")
    return psnr(denoiser(inputs), targets).mean().item()


def tune_all(
    noisy: Tensor,
    clean: Tensor,
    *,
    sigma: float | None = None,
    filters: Sequence[str] = FILTERS,
    pca: "PCAProjection | None" = None,
    pca_grid: Sequence[int] = (5, 10, 20, 40, 80, 160),
) -> dict[str, Tuned]:
    """Every classical denoiser of ``filters`` (and PCA projection, given ``pca``), each tuned on ``(noisy, clean)``.

    Returns ``{display name: Tuned}`` in a fixed order, e.g. ``"Gaussian blur"``, ``"non-local
    means"``, ``"PCA projection"``. ``sigma``, the noise level when it is known, goes to non-local
    means (its ``sigma``); ``pca_grid`` lists the numbers of components PCA projection tries.
    """
    unknown = [f for f in filters if f not in FILTERS]
    if isinstance(filters, str) or unknown:
        raise ValueError(f"filters: expected names among {FILTERS}, got {filters!r}")
    out = {}
    for f in filters:
        if f == "nlm" and sigma is not None:
            out[FILTER_NAMES[f]] = tune(f, noisy, clean, sigma=check_number("sigma", sigma, min=0.0))
        else:
            out[FILTER_NAMES[f]] = tune(f, noisy, clean)
    if pca is not None:
        if not isinstance(pca, PCAProjection):
            raise TypeError(f"pca: expected a PCAProjection (vb.baselines.fit_pca), got {describe(pca)}")
        out["PCA projection"] = tune(pca, noisy, clean, {"n_components": list(pca_grid)}, name="pca")
    return out


@dataclass
class PCAProjection:
    r"""Projection onto the top principal components of clean training images.

    .. math:: \hat x = \bar x + U_k U_k^\top (\tilde x - \bar x)

    with :math:`\bar x` the training mean and :math:`U_k` the top ``k`` principal directions (the
    rows of ``components``, orthonormal). It is the best linear ``k``-dimensional reconstruction
    of the clean data, and the linear autoencoder's answer to denoising: the noise outside the
    ``k``-dimensional subspace is removed, the noise inside it is kept.

    Book: eq-pca-projection
    """

    mean: Tensor  # (d,)
    components: Tensor  # (n_max, d), orthonormal rows, by decreasing variance
    explained_variance: Tensor  # (n_max,)
    image_shape: tuple[int, ...]

    @property
    def n_max(self) -> int:
        """How many components were fitted (the most a projection can keep)."""
        return self.components.shape[0]

    def __call__(self, x: Tensor, n_components: int | None = None) -> Tensor:
        """Project images ``x`` onto the top ``n_components`` components (default all ``n_max``) and back."""
        check_float_tensor("x", x)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x: expected shape (b, {', '.join(map(str, self.image_shape))}), got shape {tuple(x.shape)}")
        check_finite("x", x)
        j = self.n_max if n_components is None else check_int("n_components", n_components, min=0, max=self.n_max)
        flat = x.reshape(len(x), -1).to(self.mean.dtype)  # (b, d)
        u = self.components[:j].to(flat.device)  # (j, d)
        m = self.mean.to(flat.device)
        codes = (flat - m) @ u.T  # (b, j)
        out = codes @ u + m  # (b, d)
        return out.reshape(x.shape).to(x.dtype)


def fit_pca(x: Tensor, n_components: int) -> PCAProjection:
    """Fit the top ``n_components`` principal components of clean images ``x`` ``(n, ...)``: a :class:`PCAProjection`.

    Computed exactly (not randomized) in float64, so the directions are reproducible: the
    eigenvectors of the ``(d, d)`` scatter matrix of the centred data, which for many more images
    than pixels is several times faster than an SVD of the ``(n, d)`` data and gives the same
    directions. ``n_components`` is at most ``min(n, d)``.
    """
    check_float_tensor("x", x)
    if x.dim() < 2 or len(x) < 2:
        raise ValueError(f"x: expected at least two examples of shape (n, ...), got shape {tuple(x.shape)}")
    check_finite("x", x)
    flat = x.reshape(len(x), -1).double()  # (n, d)
    n, d = flat.shape
    k = check_int("n_components", n_components, min=1, max=min(n, d))
    mean = flat.mean(0)  # (d,)
    centred = flat - mean  # (n, d)
    evals, evecs = torch.linalg.eigh(centred.T @ centred)  # (d,), (d, d): ascending eigenvalues
    comps = evecs[:, -k:].flip(1).T  # (k, d): the top k directions, by decreasing variance
    # fix each direction's sign (largest entry positive) so that repeated fits agree exactly
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))  # (k, 1)
    comps = comps * signs
    var = evals[-k:].flip(0).clamp_min(0.0) / (n - 1)  # (k,): the variance along each direction
    return PCAProjection(mean.float(), comps.float(), var.float(), tuple(x.shape[1:]))
