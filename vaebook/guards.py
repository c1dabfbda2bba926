"""Guards at the door: the checks that every public function runs on its arguments first.

Each helper takes the argument's name and its value, and either returns the value (converted where
that is the only sensible reading, e.g. a ``numpy`` integer to ``int``) or raises with a message of
one form: the argument, what was expected, and what came::

    x: expected finite values in [0, 1], got NaN at 3 of 784 values
    batch_size: expected an int >= 1, got 0
    hidden: expected a tuple of ints >= 1 (one per layer), got the int 400

``TypeError`` when the kind of value is wrong, ``ValueError`` when its value is. Nothing here knows
about models or data sets; it is the bottom of the library, beside :mod:`vaebook.stats`.

Value checks (scanning a tensor for NaN or for its range) cost a pass over the data and, on a GPU,
a wait for the result; shape, dtype and type checks cost nothing. :func:`vaebook.fit` scans its
whole data set once, at the door, instead of every batch.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import weakref
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor

__all__ = [
    "describe",
    "check_tensor",
    "check_float_tensor",
    "check_finite",
    "check_range",
    "check_images",
    "check_same_shape",
    "check_int",
    "check_number",
    "check_positive",
    "check_probability",
    "check_int_tuple",
    "check_choice",
    "check_dim",
    "check_callable",
    "check_device",
    "value_checks",
    "value_checks_enabled",
    "renamed",
    "check_samples",
]


# Whether the math functions scan their inputs' values now. Global because the scans happen deep in
# functions that share no object (stats, objectives, losses) and fit turns them off around its steps;
# only value_checks() changes it, and it restores the previous value when its block ends, so the
# setting lives exactly as long as the innermost `with value_checks(...)` block (default: on).
_VALUE_CHECKS = [True]


@contextlib.contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """Turn the scans of tensor *values* (NaN, ranges) inside the math functions on or off within a block.

    Shape, dtype and type checks always run. :func:`vaebook.fit` scans its data once at the door,
    checks the first batch in full, and then trains with these scans off.
    """
    previous = _VALUE_CHECKS[0]
    _VALUE_CHECKS[0] = bool(enabled)
    try:
        yield
    finally:
        _VALUE_CHECKS[0] = previous


def value_checks_enabled() -> bool:
    """Whether the math functions scan their inputs' values (see :func:`value_checks`)."""
    return _VALUE_CHECKS[0]


def describe(value: Any) -> str:
    """A short description of what came, for the second half of an error message."""
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, numbers.Number):
        return f"the {type(value).__name__} {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}: {value!r}"[:120]
    return f"a {type(value).__name__}"


def _fail(kind: type[Exception], name: str, expected: str, got: str) -> None:
    raise kind(f"{name}: expected {expected}, got {got}")


# --------------------------------------------------------------------------- tensors
def check_tensor(name: str, value: Any, *, dims: int | Sequence[int] | None = None) -> Tensor:
    """``value`` is a ``torch.Tensor`` (with ``dims`` dimensions, if given)."""
    if not isinstance(value, Tensor):
        _fail(TypeError, name, "a torch.Tensor", describe(value))
    if dims is not None:
        allowed = (dims,) if isinstance(dims, int) else tuple(dims)
        if value.dim() not in allowed:
            want = " or ".join(str(d) for d in allowed)
            _fail(ValueError, name, f"a tensor with {want} dimensions", f"shape {tuple(value.shape)}")
    return value


def check_float_tensor(name: str, value: Any, *, dims: int | Sequence[int] | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """A floating-point tensor (of ``dtype``, if given: e.g. a model's own float32)."""
    check_tensor(name, value, dims=dims)
    if not value.is_floating_point():
        hint = " (convert images with x.float() / 255)" if value.dtype == torch.uint8 else ""
        _fail(TypeError, name, "a floating-point tensor" + hint, f"dtype {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        _fail(TypeError, name, f"dtype {dtype} (the model's; convert with .to({dtype}))", f"dtype {value.dtype}")
    return value


def _count(mask: Tensor) -> int:
    return int(mask.sum().item())


# A large tensor that passed a value scan is not scanned again while it is unchanged: training the
# same data set several times (a chapter's sweep of 20 models over 60,000 digits) would otherwise
# scan 47 million values at every door. Keyed by id, kept by weak reference (an entry counts only
# while its weak reference still points at the very tensor asked about, so a new tensor that reuses
# a freed one's id is scanned afresh); PyTorch's version counter, which every in-place change
# advances, tells whether the tensor changed since its scan. The cache is global because the scans
# it saves happen in functions that do not share an object; it holds no tensor alive.
_REMEMBER_FROM = 1_000_000  # values; smaller tensors are cheap to scan every time
_PASSED: dict[int, tuple[weakref.ref, int | None, set]] = {}
# The version counter is Tensor._version, a name PyTorch does not promise: where a release lacks it,
# nothing is remembered and every scan runs (tests/test_guards.py removes it).
_VERSION_ATTR = "_version"


def _version(t: Tensor) -> int | None:
    v = getattr(t, _VERSION_ATTR, None)
    return v if isinstance(v, int) else None


def _remembered(t: Tensor) -> bool:
    """Whether ``t`` is large enough to remember, and has a version counter (inference tensors have none)."""
    return t.numel() >= _REMEMBER_FROM and not t.is_inference() and _version(t) is not None


def _passed_before(t: Tensor, check: tuple) -> bool:
    if not _remembered(t):
        return False
    entry = _PASSED.get(id(t))
    return entry is not None and entry[0]() is t and entry[1] == _version(t) and check in entry[2]


def _remember_pass(t: Tensor, check: tuple) -> None:
    if not _remembered(t):
        return
    key = id(t)
    entry = _PASSED.get(key)
    if entry is None or entry[0]() is not t or entry[1] != _version(t):

        def forget(ref, key=key):  # the tensor is gone; a newer tensor with the same id keeps its entry
            if key in _PASSED and _PASSED[key][0] is ref:
                del _PASSED[key]

        entry = (weakref.ref(t, forget), _version(t), set())
        _PASSED[key] = entry
    entry[2].add(check)


def check_finite(name: str, t: Tensor) -> Tensor:
    """No NaN and no infinity anywhere in ``t``."""
    if not t.numel() or _passed_before(t, ("finite",)):
        return t
    if not bool(torch.isfinite(t).all()):
        nan, inf = _count(torch.isnan(t)), _count(torch.isinf(t))
        parts = [f"NaN at {nan:,}" if nan else "", f"infinity at {inf:,}" if inf else ""]
        _fail(ValueError, name, "finite values", f"{' and '.join(p for p in parts if p)} of {t.numel():,} values")
    _remember_pass(t, ("finite",))
    return t


def check_range(name: str, t: Tensor, lo: float, hi: float) -> Tensor:
    """Finite values in ``[lo, hi]`` (NaN is reported as NaN, not let through as "in range")."""
    if not t.numel() or _passed_before(t, ("range", lo, hi)):
        return t
    bad_nan = torch.isnan(t)
    if bool(bad_nan.any()):
        _fail(ValueError, name, f"finite values in [{lo:g}, {hi:g}]", f"NaN at {_count(bad_nan):,} of {t.numel():,} values")
    low, high = t.min().item(), t.max().item()
    if low < lo or high > hi:
        outside = _count((t < lo) | (t > hi))
        _fail(ValueError, name, f"values in [{lo:g}, {hi:g}]",
              f"values in [{low:.4g}, {high:.4g}], {outside:,} of {t.numel():,} outside")
    _remember_pass(t, ("range", lo, hi))
    return t


def check_images(
    name: str,
    x: Any,
    *,
    channels: int | None = None,
    unit_range: bool = False,
    finite: bool = True,
    allow_empty: bool = False,
) -> Tensor:
    """A float batch of images ``(b, c, H, W)``; values finite (and in [0, 1] with ``unit_range``)."""
    check_float_tensor(name, x)
    if x.dim() != 4:
        _fail(ValueError, name, "images of shape (b, channels, H, W)", f"shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        _fail(ValueError, name, f"{channels} channel(s), shape (b, {channels}, H, W)", f"shape {tuple(x.shape)}")
    if not allow_empty and x.shape[0] == 0:
        _fail(ValueError, name, "at least one image", "an empty batch of shape " + str(tuple(x.shape)))
    if unit_range:
        check_range(name, x, 0.0, 1.0)
    elif finite:
        check_finite(name, x)
    return x


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b}: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


# --------------------------------------------------------------------------- numbers
def check_int(name: str, value: Any, *, min: int | None = None, max: int | None = None) -> int:
    """An int (not a bool, not a float that happens to be whole), within ``[min, max]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(TypeError, name, "an int" + (f" >= {min}" if min is not None else ""), describe(value))
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        if min is not None and max is not None:
            want = f"an int from {min} to {max}"
        else:
            want = f"an int >= {min}" if min is not None else f"an int <= {max}"
        _fail(ValueError, name, want, str(value))
    return value


def check_number(
    name: str,
    value: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    finite: bool = True,
) -> float:
    """A real number (an int, a float, or a one-element tensor; not a bool or a string), finite, in range."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, name, "a number", describe(value))
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        _fail(ValueError, name, "a finite number", repr(value))
    if min is not None and (value <= min if min_open else value < min):
        _fail(ValueError, name, f"a number {'>' if min_open else '>='} {min:g}", repr(value))
    if max is not None and value > max:
        _fail(ValueError, name, f"a number <= {max:g}", repr(value))
    return value


def check_positive(name: str, value: Any) -> float:
    """A finite number > 0 (a variance, a learning rate, a time budget)."""
    return check_number(name, value, min=0.0, min_open=True)


def check_probability(name: str, value: Any) -> float:
    """A number in [0, 1]."""
    return check_number(name, value, min=0.0, max=1.0)


def check_int_tuple(name: str, value: Any, *, length: int | None = None, min: int = 1) -> tuple[int, ...]:
    """A non-empty tuple (or list) of ints >= ``min``, e.g. hidden-layer widths; a single int is refused."""
    what = f"a tuple of {length} ints >= {min}" if length else f"a tuple of ints >= {min} (one per layer)"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        _fail(TypeError, name, what, f"the int {value} (write ({value},) for one layer)")
    if not isinstance(value, (tuple, list)) or not value:
        _fail(TypeError, name, what, describe(value))
    if length is not None and len(value) != length:
        _fail(ValueError, name, what, describe(value))
    for v in value:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < min:
            _fail(ValueError, name, what, describe(value))
    return tuple(int(v) for v in value)


def check_choice(name: str, value: Any, choices: Iterable) -> Any:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        _fail(ValueError, name, "one of " + ", ".join(repr(c) for c in choices), repr(value))
    return value


def check_dim(name: str, dim: Any, ndim: int) -> int:
    """A dimension index valid for a tensor of ``ndim`` dimensions (negative counts from the end)."""
    dim = check_int(name, dim)
    if not -ndim <= dim < ndim:
        _fail(IndexError, name, f"a dimension from {-ndim} to {ndim - 1} (the tensor has {ndim})", str(dim))
    return dim


def check_callable(name: str, value: Any, what: str = "a function") -> Callable:
    if not callable(value):
        _fail(TypeError, name, what, describe(value))
    return value


_DEVICE_KINDS = "'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device"


def check_device(name: str, value: Any) -> torch.device:
    """``value`` as a ``torch.device``: one PyTorch can name and this machine has.

    A name PyTorch does not know (``"tpu"``) and a GPU this machine lacks (``"cuda"`` without CUDA,
    ``"mps"`` off a Mac) each get an error that names the argument, instead of PyTorch's own error
    from deep inside the first operation. Devices without values (``"meta"``) are accepted.
    """
    if not isinstance(value, (str, torch.device)):
        _fail(TypeError, name, _DEVICE_KINDS, describe(value))
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(f"{name}: expected {_DEVICE_KINDS}, got {value!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}: got {value!r}, but this machine has no CUDA GPU that PyTorch can use "
                             "(torch.cuda.is_available() is False); use 'cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name}: got {value!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ValueError(f"{name}: got {value!r}, but Apple's MPS is not available on this machine; use 'cpu'")
    return device


def renamed(new: str, new_value: Any, old: str, old_value: Any, why: str) -> Any:
    """An argument renamed to follow the book: its value under the new name, or, for a deprecation
    period, under the old one, with a ``FutureWarning`` that says why (both at once is an error)."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"{new}: got it twice, as {new}={new_value!r} and as {old}={old_value!r} (its old name); pass {new}= only")
    import sys
    import warnings

    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the frame that called renamed()
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("vaebook.", "torch.", "contextlib", "functools")):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]  # point the warning at the caller's line, outside the library and its decorators
    warnings.warn(f"{old}= is renamed {new}= ({why}); {old}= will be removed", FutureWarning, stacklevel=level)
    return old_value


def check_samples(K: Any, k: Any = None, *, default: int | None = None) -> int:
    """The number of importance samples ``K`` (the book's symbol; ``k=`` is its old name, the latent dimension's symbol in the book)."""
    K = renamed("K", K, "k", k, "the book writes K for the number of importance samples and k for the latent dimension")
    if K is None and default is None:
        raise TypeError("K (the number of importance samples): expected an int >= 1, got nothing")
    return check_int("K (the number of importance samples)", default if K is None else K, min=1)
