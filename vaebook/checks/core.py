"""Checks for the coding exercises: run the student's function on several inputs and compare it with ours.

Each exercise in a chapter ends with a check cell such as ``vb.checks.gaussian_kl(gaussian_kl)``.
A check

- runs the function on several inputs, edge cases included (a batch of one, zero variance, ...);
- compares each result with the library's reference implementation, within a tolerance;
- on the first mismatch, raises :class:`CheckFailed` naming the input (its shapes) and both values,
  with a hint when the mistake is a common one (a flipped sign, a missing factor 1/2);
- when every input matches, prints a confirmation (``✓ gaussian_kl: correct on all 4 inputs ...``)
  to standard output;
- while the function still raises ``NotImplementedError`` (the stubs of the generated student
  notebooks), prints "not yet implemented" to standard **error**, without a traceback, so that
  *Run all* still reaches the end of a chapter. With ``strict=True``, or with the environment
  variable ``VAEBOOK_STRICT_CHECKS=1`` (how the book's own notebooks are tested), that raises
  :class:`CheckFailed` instead.

A check returns ``None``: a check cell shows what it printed and has no result of its own. That is
what graders read. nbgrader (``nbgrader.utils.determine_grade``) gives a test cell 0 points when it
shows an error or anything on standard error, takes a result that reads as a number as partial
credit, and full marks otherwise: a stub scores 0, a wrong answer 0, a right one full marks. A
returned object would be a cell result (``Out[n]``) that nbgrader would read as full marks, stub or
not; returning nothing keeps every IPython (Colab's 7.34 as well as 8 and 9) from showing one.
Code that must fail loudly (an otter-grader test, a script) passes ``strict=True``, as in
``vb.checks.gaussian_kl(gaussian_kl, strict=True)``: it returns only when the function passed.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor


__all__ = ["CheckFailed", "Case", "check", "gen", "digits", "cloned"]


class CheckFailed(AssertionError):
    """The function under check gave a wrong result (or raised) on one of the test inputs."""


@dataclass
class Case:
    """One test input: positional ``args``, and a short ``label`` that says what is special about it."""

    args: tuple
    label: str
    kwargs: dict = field(default_factory=dict)


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    return repr(value)


def _show(value: Any, limit: int = 6) -> str:
    if isinstance(value, Tensor):
        flat = value.detach().flatten()
        vals = ", ".join(f"{v:.4g}" for v in flat[:limit].tolist())
        more = f", ... ({flat.numel()} values)" if flat.numel() > limit else ""
        return f"[{vals}{more}] (shape {tuple(value.shape)})"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_show(v, limit) for v in value) + ")"
    return repr(value)


def _strict(strict: bool) -> bool:
    """Strict mode: the ``strict`` argument, or ``VAEBOOK_STRICT_CHECKS`` set to anything but 0/false."""
    if not isinstance(strict, bool):
        raise TypeError(f"strict: expected True or False, got {strict!r}")
    return strict or os.environ.get("VAEBOOK_STRICT_CHECKS", "0") not in ("", "0", "false", "False")


def _as_tuple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _compare(got, expected, atol: float, rtol: float) -> str | None:
    """Return None when ``got`` matches ``expected``, else a sentence saying how it differs."""
    got_t, exp_t = _as_tuple(got), _as_tuple(expected)
    if len(got_t) != len(exp_t):
        return f"expected {len(exp_t)} output(s), got {len(got_t)}"
    for i, (g, e) in enumerate(zip(got_t, exp_t, strict=True)):
        which = f"output {i + 1}: " if len(exp_t) > 1 else ""
        if isinstance(e, Tensor):
            if not isinstance(g, Tensor):
                try:
                    g = torch.as_tensor(g, dtype=e.dtype)
                except Exception:
                    return f"{which}expected a tensor, got {type(g).__name__}"
            if tuple(g.shape) != tuple(e.shape):
                return f"{which}expected shape {tuple(e.shape)}, got {tuple(g.shape)}"
            g = g.detach().to(e.dtype)
            if not torch.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
                diff = (g - e).abs()
                diff = torch.where(torch.isnan(diff), torch.full_like(diff, math.inf), diff)
                return f"{which}values differ (largest difference {diff.max().item():.4g})"
        else:
            if isinstance(e, float) or isinstance(g, float):
                if not math.isclose(float(g), float(e), rel_tol=rtol, abs_tol=atol):
                    return f"{which}expected {e:.6g}, got {float(g):.6g}"
            elif g != e:
                return f"{which}expected {e!r}, got {g!r}"
    return None


def check(
    name: str,
    student: Callable,
    reference: Callable,
    cases: Sequence[Case],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    hints: Sequence[tuple[Callable[[Any, Case], Any], str]] = (),
    extra: Callable[[], None] | None = None,
    strict: bool = False,
) -> None:
    """Compare ``student`` with ``reference`` on every case and print the verdict; see the module docstring.

    ``hints`` pairs a transformation of the reference output on a case (e.g. ``lambda r, case: -r``)
    with a hint shown when the student's output on that case matches the transformation instead.
    ``extra``, if given, runs once every case matches, before the confirmation is printed: a further
    test of the student's function that raises :class:`CheckFailed` (e.g. that gradients flow).
    ``strict=True`` raises :class:`CheckFailed` for a function that is not yet implemented.
    """
    strict = _strict(strict)
    if not callable(student):
        raise TypeError(f"{name}: pass your function itself (without calling it), got {type(student).__name__}")
    for i, case in enumerate(cases, 1):
        where = f"case {i} of {len(cases)} ({case.label}; input {_describe(case.args)})"
        try:
            got = student(*case.args, **case.kwargs)
        except NotImplementedError:
            message = f"{name}: not yet implemented. Replace `raise NotImplementedError()` with your code, then run this cell again."
            if strict:
                raise CheckFailed(message) from None
            # stderr, not an exception: Run all goes on, and nbgrader scores the cell 0
            print(message, file=sys.stderr, flush=True)
            return
        except Exception as err:  # the student's code crashed: say on which input
            raise CheckFailed(f"{name}: your function raised {type(err).__name__} on {where}: {err}") from err
        expected = reference(*case.args, **case.kwargs)
        problem = _compare(got, expected, atol, rtol)
        if problem is None:
            continue
        hint = ""
        for transform, text in hints:
            try:
                if _compare(got, transform(expected, case), atol, rtol) is None:
                    hint = f"\nHint: {text}"
                    break
            except Exception:
                continue
        raise CheckFailed(
            f"{name}: wrong result on {where}: {problem}.\n"
            f"  expected: {_show(expected)}\n"
            f"  got:      {_show(got)}{hint}"
        )
    if extra is not None:
        extra()
    print(f"✓ {name}: correct on all {len(cases)} inputs ({', '.join(c.label for c in cases)}).", flush=True)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def cloned(args: tuple) -> tuple[Any, ...]:
    """A case's arguments with every tensor copied, so that a function that writes into its inputs cannot spoil the reference."""
    return tuple(v.clone() if isinstance(v, Tensor) else v for v in args)


def digits(split: str, n: int) -> Tensor:
    """``n`` MNIST images for a check: the chapter has already said which data set it runs on, so no warning here
    (a check cell's output on standard error would read as a failure to nbgrader)."""
    import warnings

    from ..data import OfflineDataWarning, load_mnist

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDataWarning)
        return load_mnist(split, n=n).x
