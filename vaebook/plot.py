"""Figures, with matplotlib only: image grids, comparison rows, latent scatter, 2-D manifold, curves.

Each function draws into a new figure (or the ``ax`` you pass) and returns the figure. In a
notebook, assign the result (``fig = vb.plot.image_grid(...)``) so it is shown once.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .guards import check_callable, check_choice, check_float_tensor, check_int, check_number, check_positive, check_tensor, describe

__all__ = [
    "image_grid",
    "compare_rows",
    "latent_scatter",
    "manifold",
    "training_curves",
    "posterior_contours",
    "grid_image",
]

DIGIT_COLORS = plt.get_cmap("tab10")


def _as_grey_images(images, name: str = "images") -> Tensor:
    """``(n, 1, H, W)`` float images on the CPU, from ``(n, 1, H, W)``, ``(n, H, W)`` or ``(n, d*d)``."""
    check_tensor(name, images)
    images = images.detach().float().cpu()
    if images.dim() == 2 and math.isqrt(images.shape[1]) ** 2 == images.shape[1]:
        side = math.isqrt(images.shape[1])
        images = images.view(-1, 1, side, side)  # (n, d) -> (n, 1, s, s)
    if images.dim() == 3:
        images = images.unsqueeze(1)  # (n, H, W) -> (n, 1, H, W)
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"{name}: expected grey images (n, 1, H, W), (n, H, W) or (n, d*d), got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one image, got an empty batch")
    return images


def grid_image(images: Tensor, nrow: int = 10, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``images`` into one ``(rows*H, nrow*W)`` array, row-major, with ``pad`` pixels between tiles.

    torchvision's ``make_grid`` lays the tiles out; its border around the whole grid is cut off.
    """
    from torchvision.utils import make_grid

    imgs = _as_grey_images(images)
    nrow = check_int("nrow", nrow, min=1)
    pad = check_int("pad", pad, min=0)
    pad_value = check_number("pad_value", pad_value)
    grid = make_grid(imgs, nrow=nrow, padding=pad, pad_value=pad_value)[0]  # (3, H', W') -> one channel
    if pad and len(imgs) > 1:  # make_grid also pads the outer edge (and returns a single image as it is)
        grid = grid[pad:-pad, pad:-pad]
    return grid.numpy()


def image_grid(images: Tensor, nrow: int = 10, title: str | None = None, ax=None, size: float = 0.6) -> Figure:
    """Show images in a grid, ``nrow`` per row, grey levels 0 (black) to 1 (white)."""
    images = _as_grey_images(images)
    nrow = check_int("nrow", nrow, min=1)
    n = len(images)
    rows = math.ceil(n / nrow)
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(2.0, size * min(n, nrow)), max(1.0, size * rows) + (0.3 if title else 0)))
    else:
        fig = ax.figure
    ax.imshow(grid_image(images, nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def compare_rows(rows: Mapping[str, Tensor], n: int = 8, size: float = 0.9) -> Figure:
    """One row of ``n`` images per entry (e.g. noisy / denoised / clean), labelled on the left."""
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError(f"rows: expected at least one row, a mapping from labels to images, got {describe(rows)}")
    n = check_int("n", n, min=1)
    fig, axes = plt.subplots(len(rows), 1, figsize=(size * n + 1.2, size * len(rows) + 0.2), squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], rows.items(), strict=True):
        ax.imshow(grid_image(imgs[:n], nrow=n), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    fig.tight_layout()
    return fig


def latent_scatter(
    z: Tensor, labels: Tensor | None = None, ax=None, title: str | None = None, s: float = 4.0, alpha: float = 0.6
) -> Figure:
    """Scatter 2-D codes ``z`` (``(n, 2)``), coloured by digit label."""
    z = check_tensor("z", z).detach().cpu()
    if z.dim() != 2 or z.shape[1] != 2:
        raise ValueError(f"z: expected 2-D codes of shape (n, 2), got shape {tuple(z.shape)}")
    if labels is not None and (not isinstance(labels, Tensor) or labels.shape != z.shape[:1]):
        got = f"shape {tuple(labels.shape)}" if isinstance(labels, Tensor) else describe(labels)
        raise ValueError(f"labels: expected one per code, shape ({z.shape[0]},), got {got}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
    else:
        fig = ax.figure
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=s, alpha=alpha, color="0.3")
    else:
        labels = torch.as_tensor(labels).cpu()
        for d in labels.unique().tolist():
            m = labels == d
            ax.scatter(z[m, 0], z[m, 1], s=s, alpha=alpha, color=DIGIT_COLORS(d % 10), label=str(d))
        ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="digit")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def manifold(
    decode: Callable[[Tensor], Tensor],
    lim: float = 3.0,
    n: int = 15,
    ax=None,
    title: str | None = None,
    grid: Sequence[float] | None = None,
) -> Figure:
    """Decode an ``n x n`` grid of 2-D latent points over ``[-lim, lim]^2`` and tile the images.

    ``decode`` maps ``(m, 2)`` codes to ``(m, 1, H, W)`` images in [0, 1], e.g. ``vae.mean_image``.
    Rows run from ``z_2 = +lim`` (top) to ``-lim``; columns from ``z_1 = -lim`` to ``+lim``.
    Pass ``grid`` to use your own coordinates (e.g. Gaussian quantiles).
    """
    check_callable("decode", decode, "a function from (m, 2) codes to (m, 1, H, W) images")
    if grid is None:
        n, lim = check_int("n", n, min=1), check_positive("lim", lim)
    g = torch.as_tensor(grid if grid is not None else np.linspace(-lim, lim, n), dtype=torch.float32)
    z1, z2 = torch.meshgrid(g, g.flip(0), indexing="xy")  # rows: z2 from high to low
    z = torch.stack([z1.flatten(), z2.flatten()], dim=-1)  # (n*n, 2)
    with torch.no_grad():
        imgs = decode(z).cpu()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 6))
    else:
        fig = ax.figure
    ax.imshow(grid_image(imgs, nrow=len(g), pad=0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"$z_1$ from {g[0]:.2g} to {g[-1]:.2g}")
    ax.set_ylabel(f"$z_2$ from {g[0]:.2g} to {g[-1]:.2g}")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def training_curves(
    history,
    keys: Sequence[str] = ("loss",),
    ax=None,
    title: str | None = None,
    split: str | Sequence[str] = ("train", "test"),
    axes=None,
) -> Figure:
    """Plot per-epoch metrics from a :class:`vaebook.History`, one panel per key, train and test together."""
    splits = [split] if isinstance(split, str) else list(split)
    for sp in splits:
        check_choice("split", sp, ("train", "test"))
    if isinstance(keys, str):
        keys = (keys,)
    keys = tuple(keys)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"keys: expected one or more metric names, got {describe(keys)}")
    recorded = {k for sp in splits for k in getattr(history, sp)}
    absent = [k for k in keys if k not in recorded]
    if absent:
        raise ValueError(f"keys: no metric {absent[0]!r} in the history's {' or '.join(splits)} metrics; recorded: {sorted(recorded)}")
    if axes is None:
        fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 2.8), squeeze=False)
        axes = axes[0]
    else:
        if len(axes) != len(keys):
            raise ValueError(f"axes: expected one per key ({len(keys)}), got {len(axes)}")
        fig = axes[0].figure
    for ax_i, key in zip(axes, keys, strict=True):
        for sp in splits:
            table = getattr(history, sp)
            if key in table:
                ax_i.plot(range(1, len(table[key]) + 1), table[key], marker="o", ms=3, label=sp)
        ax_i.set_xlabel("epoch")
        ax_i.set_title(key, fontsize=10)
        ax_i.grid(alpha=0.3)
        ax_i.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def posterior_contours(
    z1: Tensor, z2: Tensor, log_density: Tensor, ax=None, levels: int = 6, colors: str = "C0", label: str | None = None
) -> Figure:
    """Contours of a 2-D density given on a grid (``log_density[i, j]`` at ``(z1[i], z2[j])``).

    ``label`` adds a legend entry (a line in ``colors``) for these contours.
    """
    check_float_tensor("z1", z1, dims=1)
    check_float_tensor("z2", z2, dims=1)
    check_float_tensor("log_density", log_density, dims=2)
    levels = check_int("levels", levels, min=1)
    if tuple(log_density.shape) != (len(z1), len(z2)):
        raise ValueError(f"log_density: expected one value per grid point, shape (len(z1), len(z2)) = "
                         f"({len(z1)}, {len(z2)}), got {tuple(log_density.shape)}")
    if torch.isnan(log_density).any() or torch.isposinf(log_density).any():
        raise ValueError("log_density: expected finite values or -inf (density 0), got NaN or +inf")
    if not torch.isfinite(log_density).any():
        raise ValueError("log_density: expected a density above 0 somewhere on the grid, got -inf everywhere")
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.5, 3.5))
    else:
        fig = ax.figure
    log_density = log_density - log_density.max()  # the largest value 0: exp cannot underflow to 0 everywhere
    dens = log_density.detach().cpu().exp().numpy().T  # contour wants [row=z2, col=z1]
    top = dens.max()
    ax.contour(z1.cpu().numpy(), z2.cpu().numpy(), dens, levels=np.linspace(top / (levels + 1), top, levels), colors=colors)
    if label:  # contour sets have no legend handle of their own: add a proxy line
        ax.plot([], [], color=colors, label=label)
        ax.legend(fontsize=8)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_aspect("equal")
    return fig
