"""Small fixes to what the HTML pages load, so the book works offline and without console errors.

1. MathJax is served from the book itself (no CDN): MathJax 3's browser files come from the
   ``django-static-mathjax`` package (static files only, no Django needed), installed with the book
   tools. The parts a TeX page needs are copied to ``_static/mathjax/`` and ``mathjax_path`` points
   there.
2. A few lines of CSS (``_static/vaebook.css``): long API signatures wrap on a phone instead of
   widening the page.
3. Each inline script is included once. sphinx-thebe (which Jupyter Book always loads, though this
   book has no live-code button) can register its configuration script twice, which declares a
   ``const`` twice and raises an error in every page.
"""

import shutil
from importlib import resources
from pathlib import Path

NEEDED = ("tex-chtml.js", "input", "output/chtml.js", "output/chtml", "ui", "a11y", "adaptors", "sre")
CSS_FILE = "vaebook.css"
CSS = """/* vaebook: an API signature such as vaebook.standard_normal_log_prob(z) is one long word; let it
   break on a narrow screen rather than push the page wider than the phone. */
dt.sig { overflow-wrap: anywhere; }
"""


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
    (Path(app.outdir) / "_static" / CSS_FILE).write_text(CSS, encoding="utf-8")
    src, dst = _es5(), Path(app.outdir) / "_static" / "mathjax"
    for name in NEEDED:
        s = src / name
        if s.is_dir():
            shutil.copytree(s, dst / name, dirs_exist_ok=True)
        elif s.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dst / name)


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # an inline script is registered once with filename None and once with "": same script
        key = (getattr(script, "filename", str(script)) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    if "script_files" in context:
        context["script_files"][:] = unique


def setup(app):
    app.add_css_file(CSS_FILE)
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _build_finished)
    app.connect("html-page-context", _dedupe_scripts, priority=100)  # before any handler that ends the event
    return {"parallel_read_safe": True, "parallel_write_safe": True}
