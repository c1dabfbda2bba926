"""The book's Results page: chapters record their headline numbers, the page pastes them.

``vb.record("ch8_nll", nll)`` stores a number in the notebook's outputs in myst-nb's *glue*
format, and the Results page pastes it with ``{glue:text}`book/08_vae::ch8_nll:.2f```. So the
page's numbers are the ones the chapters computed in this very build. Chapters need no myst-nb
import and run unchanged in Colab, where the output shows nothing.
"""

from __future__ import annotations

import numbers

from .guards import check_number

__all__ = ["record", "GLUE_PREFIX"]

GLUE_PREFIX = "application/papermill.record/"  # myst-nb's glue format, without importing myst-nb


def record(name: str, value: float) -> None:
    """Store a headline number in the notebook's outputs, for the book's Results page. Shows nothing.

    The Results page pastes it with ``{glue:text}`book/CHAPTER::name:.2f```. The output uses myst-nb's
    glue format (a display with ``scrapbook`` metadata and prefixed mime types, which frontends
    do not render), so chapters need no myst-nb import and run unchanged in Colab.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name: expected a name made of letters, digits and underscores, got {name!r}")
    number = check_number("value", value)  # a finite number; a one-element tensor is read as its value
    value = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else number
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:
        return
    bundle, metadata = format_display_data(value)
    metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
    display({GLUE_PREFIX + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
