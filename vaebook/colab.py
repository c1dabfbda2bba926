"""What vaebook's widgets need from Google Colab's front end, done only when running there.

Colab draws the core ipywidgets (sliders, images, dropdowns, and the progress bars of ``tqdm``:
everything vaebook shows) with a widget manager of its own, built for the widget protocol of
ipywidgets 7, the version Colab ships (7.7.1). ipywidgets 8 speaks a newer protocol, which that
manager does not draw: in a runtime where ipywidgets was upgraded, widgets and progress bars show
nothing (googlecolab/colabtools#3020 and #4525). For that case Colab offers its "custom widget
manager", loaded from Google's CDN, which does: ``google.colab.output.enable_custom_widget_manager()``.

So :func:`ensure_widget_support` does nothing outside Colab and nothing with ipywidgets 7 (Colab's
own manager suffices), and turns the custom manager on, once, on Colab with ipywidgets 8 or later.
vaebook's install never upgrades ipywidgets (its range admits Colab's 7.7.1), so on a stock
runtime it does nothing at all.
"""

from __future__ import annotations

import sys

__all__ = ["on_colab", "ensure_widget_support"]

# Whether this kernel has already enabled Colab's custom widget manager (non-empty once it has). Global
# because the manager is a property of the notebook's front end, one per kernel, not of any object of
# ours; it lives as long as the Python process, as the front end's setting does.
_custom_manager_enabled: list[bool] = []


def on_colab() -> bool:
    """True inside a Google Colab runtime (its kernel imports ``google.colab`` at start-up)."""
    return "google.colab" in sys.modules


def _ipywidgets_major() -> int:
    import ipywidgets

    return int(str(ipywidgets.__version__).split(".")[0])


def ensure_widget_support() -> bool:
    """Before showing a widget: on Colab with ipywidgets >= 8, enable Colab's custom widget manager.

    Returns True when it enabled it (the first time only), False when nothing was needed.
    """
    if not on_colab() or _custom_manager_enabled:
        return False
    if _ipywidgets_major() < 8:
        return False
    from google.colab import output

    output.enable_custom_widget_manager()
    _custom_manager_enabled.append(True)
    return True
