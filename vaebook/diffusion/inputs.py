"""Argument checks shared by the diffusion modules: batches, time steps, noise levels, generators."""

from __future__ import annotations


import torch
from torch import Tensor

from ..guards import (
    check_same_shape,
    check_finite,
    check_float_tensor,
    check_positive,
    describe,
    value_checks_enabled,
)

__all__ = ["check_pair", "check_values", "check_batch", "check_generator", "check_sigma", "check_t", "per_example"]


def check_values(name: str, t: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    check_float_tensor(name, t, dtype=dtype)
    if value_checks_enabled():
        check_finite(name, t)
    return t


def check_batch(name: str, x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    check_values(name, x, dtype)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch of examples, shape (b, ...), got shape {tuple(x.shape)}")
    return x


def check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {describe(generator)}")


def check_sigma(sigma) -> float:
    return check_positive("sigma (the noise level)", sigma)


def check_t(name: str, t, T: int, b: int | None = None, *, lowest: int = 1) -> Tensor:
    """Integer time steps from ``lowest`` to ``T``, shape (b,) (a Python int is broadcast)."""
    if isinstance(t, int) and not isinstance(t, bool):
        if b is None:
            raise TypeError(f"{name}: expected a tensor of time steps, shape (b,), got {describe(t)}")
        t = torch.full((b,), t, dtype=torch.long)
    if not isinstance(t, Tensor) or t.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name}: expected an integer tensor of time steps (torch.long), got {describe(t)}")
    if t.dim() != 1 or (b is not None and t.shape[0] != b):
        want = f"({b},), one per example" if b is not None else "(b,)"
        raise ValueError(f"{name}: expected shape {want}, got shape {tuple(t.shape)}")
    if t.numel() and (int(t.min()) < lowest or int(t.max()) > T):
        raise ValueError(f"{name}: expected time steps from {lowest} to T={T}, got steps from {int(t.min())} to {int(t.max())}")
    return t.long()


def per_example(v: Tensor, x: Tensor) -> Tensor:
    """A (b,) tensor of per-example numbers, shaped to broadcast against x: (b, 1, ..., 1)."""
    return v.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))  # (b, 1, ..., 1)


def check_pair(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """A batch ``a`` and a tensor ``b`` of the same shape and dtype (a noisy image and its clean one, a prediction and its target)."""
    check_batch(name_a, a)
    check_values(name_b, b, dtype=a.dtype)
    check_same_shape(name_a, a, name_b, b)
