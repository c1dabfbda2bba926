"""Checks for the coding exercises: run the student's function on several inputs and compare it with ours.

Each exercise in a chapter ends with a check cell such as ``vb.checks.gaussian_kl(gaussian_kl)``.
The machinery (:func:`check`, :class:`Case`, :class:`CheckFailed`, and how a check reports to a
notebook and to graders) is in :mod:`vaebook.checks.core`; the checks themselves are grouped by part
of the book, one module each, and all of them are reachable as ``vb.checks.<exercise>``.
"""

from .core import Case, CheckFailed, check
from .parts12 import *  # noqa: F403  (the exercise checks of chapters 0-9, listed in parts12.__all__)
from .parts12 import __all__ as _parts12
from .bounds import *  # noqa: F403  (the exercise checks of chapter 10, listed in bounds.__all__)
from .bounds import __all__ as _bounds
from .diffusion import *  # noqa: F403  (the exercise checks of chapter 13, listed in diffusion.__all__)
from .diffusion import __all__ as _diffusion
from .failures import *  # noqa: F403  (the exercise checks of chapter 11, listed in failures.__all__)
from .failures import __all__ as _failures
from .rate_distortion import *  # noqa: F403  (the exercise checks of chapter 12, listed in rate_distortion.__all__)
from .rate_distortion import __all__ as _rate_distortion
from .codes import *  # noqa: F403  (discrete codes, the VQ-VAE: chapter 15)
from .codes import __all__ as _codes

__all__ = ["Case", "CheckFailed", "check", *_parts12, *_bounds, *_diffusion, *_failures, *_rate_distortion, *_codes]
