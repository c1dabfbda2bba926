"""Serve MathJax from the book itself, so math renders with no network (no CDN).

MathJax 3's browser files come from the ``django-static-mathjax`` package (static files only, no
Django needed), installed with the book tools. This copies the parts a TeX page needs into
``_static/mathjax/`` of the HTML output and points Sphinx's ``mathjax_path`` there.
"""

import shutil
from importlib import resources
from pathlib import Path

NEEDED = ("tex-chtml.js", "input", "output/chtml.js", "output/chtml", "ui", "a11y", "adaptors", "sre")


def _es5() -> Path:
    es5 = Path(str(resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    if not (es5 / "tex-chtml.js").is_file():
        raise RuntimeError(f"MathJax's tex-chtml.js not found in {es5}; install django-static-mathjax")
    return es5


def _config_inited(app, config):
    _es5()  # fail early, with a clear message, if the package is missing
    config.mathjax_path = "mathjax/tex-chtml.js"  # relative to _static/


def _build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    src, dst = _es5(), Path(app.outdir) / "_static" / "mathjax"
    for name in NEEDED:
        s = src / name
        if s.is_dir():
            shutil.copytree(s, dst / name, dirs_exist_ok=True)
        elif s.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dst / name)


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
