"""Small fixes to what the HTML pages load, so the book works offline and without console errors.

1. MathJax is served from the book itself (no CDN): MathJax 3's browser files come from the
   ``django-static-mathjax`` package (static files only, no Django needed), installed with the book
   tools. The parts a TeX page needs are copied to ``_static/mathjax/`` and ``mathjax_path`` points
   there.
2. A few lines of CSS (``_static/vaebook.css``): long API signatures and inline code wrap on a
   phone instead of widening the page.
3. Each inline script is included once. sphinx-thebe (which Jupyter Book always loads, though this
   book has no live-code button) can register its configuration script twice, which declares a
   ``const`` twice and raises an error in every page.
4. What the axe-core audit of the browser tests found in the theme and the extensions, fixed here:
   - ``templates/`` (next to this file) overrides two of pydata-sphinx-theme's buttons whose
     accessible names did not contain their visible text (the search field, the colour-mode switch);
   - myst-nb's "Show code cell source" ``<summary>`` loses its ``aria-label="Toggle hidden
     content"``, so its name is what it says;
   - the navigation's toggles for a chapter's sections (a ``<summary>`` with only an icon) get a
     name that only screen readers see, "Sections";
   - the bibliography's entries get ``role="listitem"`` instead of docutils' ``doc-biblioentry``,
     a role DPUB-ARIA 1.1 deprecates and axe does not count as a list item;
   - links in exercise and proof boxes get a darker blue (the theme's is 4.29:1 on their tint,
     below WCAG AA's 4.5:1), and in the dark theme the index tables' letter rows a dark background.
5. Display math on any screen: an equation number moves below its equation when the two do not fit
   side by side (as amsmath does in print), and on a phone the boxes' side margins shrink so that
   the central identities fit. Equations that are still too wide scroll in their own box (the
   theme gives ``mjx-container`` ``overflow: auto``).
"""

import html
import shutil
from importlib import resources
from pathlib import Path

NEEDED = ("tex-chtml.js", "input", "output/chtml.js", "output/chtml", "ui", "a11y", "adaptors", "sre")
CSS_FILE = "vaebook.css"
CSS = """/* vaebook: an API signature such as vaebook.standard_normal_log_prob(z) is one long word; let it
   break on a narrow screen rather than push the page wider than the phone. */
dt.sig { overflow-wrap: anywhere; }

/* Inline code (a file path, a dotted name such as google.colab.output.enable_custom_widget) is one
   word to the browser, and Sphinx's span.pre forbids breaking it: let it break anywhere rather than
   push the page wider than a phone. */
code.literal, code.literal span.pre { overflow-wrap: anywhere; white-space: normal; }

/* Links inside tinted boxes (exercises, solutions, proofs): the theme's #176de8 is 4.29:1 on the
   boxes' light blue, below WCAG AA's 4.5:1; #1560d4 is 5.15:1 there and 5.74:1 on white. */
html[data-theme="light"] .admonition, html[data-theme="light"] div.admonition { --pst-color-link: #1560d4; }

/* Sphinx's index tables (the module index, sphinx-proof's index of theorems) give their letter rows
   a fixed light grey, on which the dark theme's light text is unreadable (1.31:1). */
html[data-theme="dark"] table.indextable tr.cap { background-color: var(--pst-color-surface); }

/* The theme lays out display math as a row: the equation (mjx-container, which scrolls when it is too
   wide) and its number. When both do not fit, the number moves to its own line below the equation. */
div.math { flex-wrap: wrap-reverse; }

/* On a phone, boxes keep a little of their inner side margins (1.4rem each side in the theme), so
   that an equation inside a theorem or exercise has room. */
@media (max-width: 575.98px) {
  .admonition p.admonition-title ~ *, div.admonition p.admonition-title ~ * { margin-left: .25rem; margin-right: .25rem; }
}
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
    for page in Path(app.outdir).rglob("*.html"):
        _name_the_toc_toggles(page)
    src, dst = _es5(), Path(app.outdir) / "_static" / "mathjax"
    for name in NEEDED:
        s = src / name
        if s.is_dir():
            shutil.copytree(s, dst / name, dirs_exist_ok=True)
        elif s.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dst / name)


TOC_TOGGLE = '<summary><span class="toctree-toggle" role="presentation">'
NAMED_TOC_TOGGLE = '<summary><span class="visually-hidden">Sections</span><span class="toctree-toggle" role="presentation">'


def _name_the_toc_toggles(page: Path) -> None:
    """The navigation's toggle for an entry's sections is a <summary> holding only a chevron icon, which
    a screen reader cannot name (axe: summary-name): give it words that only screen readers see."""
    text = page.read_text(encoding="utf-8")
    if TOC_TOGGLE in text:
        page.write_text(text.replace(TOC_TOGGLE, NAMED_TOC_TOGGLE), encoding="utf-8")


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


TEMPLATES = Path(__file__).resolve().parent / "templates"  # copied with _ext into the student book


def _use_templates(app, config):
    # ahead of the themes' component folders, which they append to templates_path
    config.templates_path.insert(0, str(TEMPLATES))


def _visit_hide_cell_input(self, node):
    # myst-nb's visitor, less aria-label="Toggle hidden content": the summary's name is its visible text
    classes = " ".join(node["classes"])
    self.body.append(f'<details class="admonition hide {classes}">\n<summary>\n')
    self.body.append(f'<p class="collapsed admonition-title">{html.escape(node["prompt_show"])}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{html.escape(node["prompt_hide"])}</p>\n')
    self.body.append("</summary>\n")


def _depart_hide_cell_input(self, node):
    self.body.append("</details>\n")


def _visit_citation(self, node):
    type(self).visit_citation(self, node)  # the translator's own method (docutils' HTML writer)
    self.body[-1] = self.body[-1].replace('role="doc-biblioentry"', 'role="listitem"')


def _depart_citation(self, node):
    type(self).depart_citation(self, node)


def _override_visitors(app):
    # after every extension's setup, so that these replace myst-nb's and docutils' HTML visitors
    from docutils import nodes
    from myst_nb.sphinx_ import HideCodeCellNode

    app.add_node(HideCodeCellNode, override=True, html=(_visit_hide_cell_input, _depart_hide_cell_input))
    app.add_node(nodes.citation, override=True, html=(_visit_citation, _depart_citation))
    # sphinx-exercise registers its nodes for the builder named "singlehtml" as well, and Sphinx then
    # looks up that builder's handlers under its name alone, missing the other extensions' html ones
    # (sphinx-design's {fa} icon fails): the single-page build (make pdf) gets the html handlers it lacks.
    handlers = app.registry.translation_handlers
    if app.builder.name != app.builder.format and app.builder.name in handlers:
        for node_name, pair in handlers.get(app.builder.format, {}).items():
            handlers[app.builder.name].setdefault(node_name, pair)


def setup(app):
    app.add_css_file(CSS_FILE)
    app.connect("config-inited", _use_templates)
    app.connect("builder-inited", _override_visitors)
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _build_finished)
    app.connect("html-page-context", _dedupe_scripts, priority=100)  # before any handler that ends the event
    return {"parallel_read_safe": True, "parallel_write_safe": True}
