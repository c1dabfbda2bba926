"""The built book in a real browser: headless Chromium (Debian's package) driven by Playwright.

Run after ``make book`` (``make browser`` does both in ``make test``). For every page: no
JavaScript errors, math typeset, every image loaded, no traceback or raw widget repr, the right
Colab link on chapter pages; where present, solutions open on click, quizzes answer, and the latent
explorer redraws when dragged.

Readers with assistive technology and on any screen: axe-core (npm, ``package.json``; ``make
browser`` runs ``npm ci``) audits every page of the book and of the student book for WCAG 2 A/AA;
every image in the content has alt text that is not a file name; the latent explorer announces what
it decodes; every display equation fits its column at 1280 px, and the central identities at 390 px.

Outside CI these tests are skipped, with a message, when no Chromium is installed (or axe-core, or
the student book, is missing); with ``CI`` set they must run.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from vaebook.authoring import book

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
CHROMIUM = os.environ.get("VAEBOOK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HARMLESS_CONSOLE_ERRORS = ("Got invalid theme mode",)  # the book theme logs this on every page
WIDGET_REPRS = ("HBox(", "VBox(", "IntProgress(", "FloatProgress(", "Output()", "Tab(children")


def _pages() -> list[str]:
    if not HTML.is_dir():
        return []
    return sorted(str(p.relative_to(HTML)) for p in (HTML / "book").glob("*.html"))


def _require_environment():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but Chromium is missing at {CHROMIUM}: install Debian's chromium package")
        pytest.skip(f"no Chromium at {CHROMIUM}; install it (apt-get install chromium) to run the browser tests")
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML / 'index.html'} is missing: run `make book` before the browser tests")


@pytest.fixture(scope="session")
def server(build_server):
    """The book's root (_build/html/) on the same server, so that a page has one URL in every test."""
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML / 'index.html'} is missing: run `make book` before the browser tests")
    return f"{build_server}/{HTML.relative_to(BUILD)}"


@pytest.fixture(scope="session")
def browser(server, chromium_browser):
    yield chromium_browser
    _close_shared()


def _open(browser, server, page_path, width=1280, height=900, color_scheme="light"):
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=color_scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(f"{server}/{page_path}", wait_until="networkidle")
    # MathJax typesets after the page loads: wait for its promise where MathJax is on the page
    page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise.then(() => true) : true")
    return context, page, errors


# Pages loaded once for the checks that only look at them (render, phone width, axe, alt text, display
# math): at most one per viewport and colour scheme, of one URL at a time. conftest.py orders the
# browser tests by the page they open, so a page's checks run one after another.
_SHARED: dict[tuple, tuple] = {}


def _close_shared() -> None:
    while _SHARED:
        _SHARED.popitem()[1][0].close()


def _look(browser, server, page_path, width=1280, height=900, color_scheme="light"):
    """The page as `_open` loads it, shared with the other read-only checks of the same page and view.
    Its error list holds what the console logged during the load (the first check reads it)."""
    key = (f"{server}/{page_path}", width, height, color_scheme)
    if key not in _SHARED:
        if any(k[0] != key[0] for k in _SHARED):
            _close_shared()
        _SHARED[key] = _open(browser, server, page_path, width, height, color_scheme)
    return _SHARED[key]


def test_the_book_has_pages():
    _require_environment()
    pages = _pages()
    assert len(pages) >= 10, pages
    assert "book/intro.html" in pages and "book/08_vae.html" in pages


@pytest.mark.parametrize("page_path", _pages() or ["(not built)"])
def test_page_renders_cleanly(browser, server, page_path):
    _, page, errors = _look(browser, server, page_path)
    html = (HTML / page_path).read_text(encoding="utf-8")
    # 1. no JavaScript errors, no failed requests (nothing loads from the network)
    real = [e for e in errors if not any(h in e for h in HARMLESS_CONSOLE_ERRORS)]
    assert not real, f"console errors on {page_path}: {real}"
    article = page.locator("article").first
    text = article.inner_text()
    # 2. math is typeset: MathJax output present wherever the page has math, no raw delimiters left
    if 'class="math' in html:
        assert page.locator("mjx-container").count() > 0, "math on the page was not typeset"
        raw = page.evaluate(
            "() => Array.from(document.querySelectorAll('.math')).filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60))"
        )
        assert not raw, f"untypeset math: {raw[:3]}"
    assert "$$" not in text, "raw $$ in the page text"
    # 3. every image loads
    page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=15000)
    broken = page.evaluate("() => Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src.slice(0, 80))")
    assert not broken, f"images that did not load: {broken}"
    # 4. no traceback, no raw widget repr
    assert "Traceback (most recent call last)" not in text
    for r in WIDGET_REPRS:
        assert r not in text, f"raw widget repr {r!r} on {page_path}"
    # 5. the Colab button of a chapter opens that chapter from the configured repository
    stem = Path(page_path).stem
    if (ROOT / "book" / f"{stem}.ipynb").exists():
        url, branch = book.read_repository(ROOT)
        expected = book.colab_url(url, branch, f"book/{stem}.ipynb")
        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href*=\"colab.research.google.com\"]')).map(a => a.href)")
        assert hrefs and all(h == expected for h in hrefs), f"Colab links {hrefs}, expected {expected}"


@pytest.mark.parametrize("page_path", _pages() or ["(not built)"])
def test_page_fits_a_phone_screen(browser, server, page_path):
    """At 390 px wide nothing in the page's content sticks out sideways, except inside boxes that scroll."""
    _, page, _ = _look(browser, server, page_path, width=390, height=844)
    sticking_out = page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth, out = [];
          const scrolls = el => { for (let a = el.parentElement; a; a = a.parentElement)
              if (getComputedStyle(a).overflowX !== 'visible') return true; return false; };
          for (const el of document.querySelectorAll('.bd-article *')) {
            if (el.getBoundingClientRect().right > width + 1 && !scrolls(el))
              out.push(el.tagName + '.' + el.className + ': ' + (el.textContent || '').trim().slice(0, 40));
          }
          return out.slice(0, 5); }"""
    )
    assert not sticking_out, f"{page_path} is wider than a phone: {sticking_out}"


def _pages_with(marker: str) -> list[str]:
    return [p for p in _pages() if marker in (HTML / p).read_text(encoding="utf-8")] or ["(none)"]


@pytest.mark.parametrize("page_path", _pages_with('class="solution dropdown'))
def test_solutions_are_hidden_until_clicked(browser, server, page_path):
    if page_path == "(none)":
        pytest.fail("no page has an exercise solution")
    context, page, _ = _open(browser, server, page_path)
    try:
        sol = page.locator(".solution.dropdown").first
        body = sol.locator("section").first
        sol.scroll_into_view_if_needed()
        assert body.is_hidden(), "the solution is visible before it is clicked"
        sol.locator(".toggle-button").first.click()
        page.wait_for_timeout(300)
        assert body.is_visible(), "clicking did not show the solution"
    finally:
        context.close()


@pytest.mark.parametrize("page_path", _pages_with("BEGIN SOLUTION"))
def test_solution_code_is_collapsed_until_clicked(browser, server, page_path):
    if page_path == "(none)":
        pytest.fail("no page has a coding exercise")
    context, page, _ = _open(browser, server, page_path)
    try:
        details = page.locator("details.hide.above-input", has_text="BEGIN SOLUTION").first
        code = details.locator("pre", has_text="BEGIN SOLUTION").first
        assert details.get_attribute("open") is None and code.is_hidden()
        details.locator("summary").click()
        assert code.is_visible()
    finally:
        context.close()


@pytest.mark.parametrize("page_path", _pages_with('class="vbq"'))
def test_quiz_answers_give_feedback(browser, server, page_path):
    if page_path == "(none)":
        pytest.fail("no page has a quiz")
    context, page, _ = _open(browser, server, page_path)
    try:
        quizzes = page.locator(".vbq")
        for i in range(quizzes.count()):
            q = quizzes.nth(i)
            right = int(q.get_attribute("data-answer"))
            options = q.locator(".vbq-option")
            wrong = next(j for j in range(options.count()) if j != right)
            options.nth(wrong).click()
            assert q.locator(".vbq-feedback").inner_text().startswith("Not quite.")
            options.nth(right).click()
            feedback = q.locator(".vbq-feedback").inner_text()
            assert feedback.startswith("Correct.") and len(feedback) > 20
    finally:
        context.close()


@pytest.mark.parametrize("page_path", _pages_with('class="vbx"'))
def test_latent_explorer_redraws_when_dragged(browser, server, page_path):
    if page_path == "(none)":
        pytest.fail("no page has the latent explorer")
    context, page, errors = _open(browser, server, page_path)
    try:
        x = page.locator(".vbx").first
        x.scroll_into_view_if_needed()
        assert x.locator(".vbx-fallback").is_hidden() and x.locator(".vbx-live").is_visible()
        digit = "() => document.querySelector('.vbx .vbx-digit').toDataURL()"
        before = page.evaluate(digit)
        box = x.locator(".vbx-plane").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.15, steps=8)
        page.mouse.up()
        after = page.evaluate(digit)
        assert after != before, "dragging did not change the decoded digit"
        # the JavaScript forward pass computes what the exported weights say (numpy as the oracle)
        from tests.test_widgets import _decode_spec, numpy_decode

        _, layers = _decode_spec(x.evaluate("e => e.outerHTML"))
        for z in ([0.5, -1.0], [-2.0, 1.5]):
            js = x.evaluate("(e, z) => Array.from(e.vbxDecode(z))", z)
            assert max(abs(a - b) for a, b in zip(js, numpy_decode(layers, z), strict=True)) < 1e-4
        ms = float(x.get_attribute("data-decode-ms"))
        assert ms < 50, f"a decode took {ms} ms"
        assert re.match(r"z = \(-?\d", x.locator(".vbx-readout").inner_text())
        assert not [e for e in errors if not any(h in e for h in HARMLESS_CONSOLE_ERRORS)]
    finally:
        context.close()


def test_latent_explorer_falls_back_to_a_static_image_without_javascript(browser, server):
    pages = [p for p in _pages_with('class="vbx"') if p != "(none)"]
    if not pages:
        pytest.fail("no page has the latent explorer")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server}/{pages[0]}")
        fallback = page.locator(".vbx .vbx-fallback img").first
        fallback.scroll_into_view_if_needed()
        assert fallback.is_visible()
        assert page.evaluate("() => document.querySelector('.vbx .vbx-fallback img').naturalWidth") > 0
        assert page.locator(".vbx .vbx-live").first.is_hidden()
    finally:
        context.close()


STUDENT_HTML = ROOT / "_build" / "student" / "_build" / "html"


def test_student_book_shows_no_solutions(browser):
    """The student edition (make student-check builds it): no solutions, checks say 'not yet implemented'."""
    if not (STUDENT_HTML / "index.html").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{STUDENT_HTML} is missing: make test builds it (make student-check)")
        pytest.skip("the student book is not built (make student-check)")
    pages = sorted((STUDENT_HTML / "book").glob("*.html"))
    assert not (STUDENT_HTML / "book" / "instructors.html").exists()
    text = {p.name: p.read_text(encoding="utf-8") for p in pages}
    for name, html in text.items():
        assert 'class="solution' not in html, f"{name}: a solution is in the student book"
        assert "BEGIN SOLUTION" not in html, f"{name}: solution code is in the student book"
    assert "not yet implemented" in text["07_reparametrization.html"]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto((STUDENT_HTML / "book" / "07_reparametrization.html").as_uri())
        assert page.locator(".vbq").count() >= 1  # quizzes stay
        assert "raise NotImplementedError()" in page.locator("article").inner_text()
    finally:
        context.close()



# --------------------------------------------------------------------------- assistive technology
EDITIONS = {"book": HTML, "student": STUDENT_HTML}
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]  # WCAG 2.0, 2.1 and 2.2, levels A and AA
# Violations only the theme can fix, each allowed on exactly the elements it names: (rule, axe's
# CSS selector for the element) -> the upstream issue. Everything axe found has been fixed here
# (book/_ext/book_assets.py and its templates/), so the list is empty; an entry must name its issue.
ALLOWED_VIOLATIONS: dict[tuple[str, str], str] = {}


def _edition_pages() -> list[tuple[str, str]]:
    """(edition, page) for every HTML page of each built edition; a placeholder where one is not built."""
    out = []
    for edition, root in EDITIONS.items():
        if not (root / "index.html").exists():
            out.append((edition, "(not built)"))
            continue
        pages = sorted(str(p.relative_to(root)) for p in (root / "book").glob("*.html"))
        pages += sorted(p.name for p in root.glob("*.html") if p.name != "index.html")  # search, indices
        out += [(edition, p) for p in pages]
    return out


def _edition_url(edition: str, page: str) -> str:
    """The page's path under _build/, where the build_server serves both editions."""
    if page == "(not built)":
        if edition == "book" or os.environ.get("CI"):
            pytest.fail(f"the {edition} edition is not built at {EDITIONS[edition]} (make book; make student-check)")
        pytest.skip(f"the {edition} edition is not built at {EDITIONS[edition]} (make student-check builds it)")
    return f"{EDITIONS[edition].relative_to(BUILD)}/{page}"


def _require_axe():
    if not AXE_JS.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but axe-core is missing at {AXE_JS}: run `npm ci` (make browser does)")
        pytest.skip(f"axe-core is not installed at {AXE_JS}; run `npm ci` to audit the pages")


def _axe(page, context="document") -> list[dict]:
    """Critical and serious violations that axe-core finds on the page, one entry per element."""
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        "async ([tags, context]) => { const r = await axe.run(context === 'document' ? document : context,"
        " {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});"
        " return r.violations.flatMap(v => v.nodes.map(n => ({rule: v.id, impact: v.impact,"
        " target: n.target.join(' '), html: n.html.slice(0, 120), why: (n.failureSummary || '').slice(0, 200)}))); }",
        [WCAG_TAGS, context],
    )
    return [v for v in result if v["impact"] in ("critical", "serious")]


def _axe_cases():
    """Every page of both editions in the light theme; the book's pages in the dark theme as well (the
    student book has the same theme and styles, so its dark pages would repeat the book's)."""
    pages = _edition_pages()
    return [(e, p, "light") for e, p in pages] + [(e, p, "dark") for e, p in pages if e == "book"]


@pytest.mark.parametrize("edition,page_path,scheme", _axe_cases())
def test_axe_finds_no_critical_or_serious_violation(browser, build_server, edition, page_path, scheme):
    url = _edition_url(edition, page_path)
    _require_axe()
    _, page, _ = _look(browser, build_server, url, color_scheme=scheme)
    assert page.evaluate("() => document.documentElement.dataset.theme") == scheme  # the theme follows the reader's setting
    found = _axe(page)
    left = [v for v in found if (v["rule"], v["target"]) not in ALLOWED_VIOLATIONS]
    assert not left, f"axe-core on {edition}/{page_path} ({scheme} theme): " + "; ".join(
        f"{v['impact']} {v['rule']} at {v['target']} ({v['html']!r}): {v['why']}" for v in left[:8]
    )


def test_axe_reports_what_it_should(browser, server):
    """The audit can fail: planted problems of the three kinds the book had are reported as serious or critical."""
    _require_axe()
    context, page, _ = _open(browser, server, "book/06_elbo.html")
    try:
        page.evaluate(
            """() => { const d = document.createElement('div'); d.id = 'planted';
              d.innerHTML = '<p style="background:#ecf3ff"><a href="#" style="color:#176de8">a pale link</a></p>'
                + '<button aria-label="Colour">Search now</button>'
                + '<div role="list"><a role="doc-backlink" href="#">1</a></div>';
              document.querySelector('article').prepend(d); }"""
        )
        rules = {v["rule"] for v in _axe(page, "#planted")}
        assert {"color-contrast", "label-content-name-mismatch", "aria-required-children"} <= rules, rules
    finally:
        context.close()


def _looks_like_a_file_name(alt: str) -> bool:
    """True for what an image gets when nobody wrote its alt text: a file name, a path, a hash, a data URL."""
    text = alt.strip()
    if text.startswith("data:"):
        return True
    for token in text.split():
        t = token.strip("(),;:")
        if re.search(r"\.(png|jpe?g|gif|svg|webp|pdf)$", t, flags=re.I) or re.fullmatch(r"[0-9a-f]{12,}", t):
            return True
        if re.fullmatch(r"[\w.~-]*(/[\w.~-]+)+/?", t) and re.search(r"[A-Za-z_]", t):  # a/b, not 1/4
            return True
    return False


@pytest.mark.parametrize("edition,page_path", _edition_pages())
def test_every_image_has_alt_text_that_describes_it(browser, build_server, edition, page_path):
    """An <img> in the content has alt text, and the text is words, not a file name or a path."""
    url = _edition_url(edition, page_path)
    _, page, _ = _look(browser, build_server, url)
    alts = page.evaluate("() => Array.from(document.querySelectorAll('article img')).map(i => [i.getAttribute('alt'), i.src.slice(0, 60)])")
    bad = [(alt, src) for alt, src in alts if alt is None or len(alt.split()) < 4 or _looks_like_a_file_name(alt)]
    assert not bad, f"{edition}/{page_path}: {len(bad)} of {len(alts)} images lack descriptive alt text: {bad[:3]}"


def test_the_file_name_rule_tells_names_from_descriptions():
    for name in ("../_images/1faa5341078b8ab9839f8a7517134ea05b54a030d996ac083.png", "figure.png", "_images/x",
                 "1faa5341078b8ab9839f8a75", "data:image/png;base64,iVBOR", "A plot: plots/loss.svg"):
        assert _looks_like_a_file_name(name), name
    for text in ("Two rows of 12 digit images: test digits and their reconstructions.",
                 "The width factor s from 1/4 to 4, and a dashed line of slope −1/2."):
        assert not _looks_like_a_file_name(text), text


def _explorer_page() -> str:
    pages = [p for p in _pages_with('class="vbx"') if p != "(none)"]
    if not pages:
        pytest.fail("no page has the latent explorer")
    return pages[0]


def test_latent_explorer_announces_what_it_decodes(browser, server):
    """Each arrow key moves z; the live region then says the new z, the decode's ink and the nearest test digits."""
    from tests.test_widgets import _decode_spec, numpy_decode

    context, page, _ = _open(browser, server, _explorer_page())
    try:
        x = page.locator(".vbx").first
        x.scroll_into_view_if_needed()
        status = x.locator(".vbx-readout")
        assert status.get_attribute("role") == "status" and status.get_attribute("aria-live") == "polite"
        spec, layers = _decode_spec(x.evaluate("e => e.outerHTML"))
        lim, step, pts = spec["lim"], spec["lim"] / 20, spec["points"]
        assert len(pts) >= 5, "the explorer has no test digits to name"
        said = re.compile(r"z = \((-?\d+\.\d\d), (-?\d+\.\d\d)\)(, at the edge of the plane)?\. "
                          r"Ink (\d+)%(?:, (up|down) (\d+) points?)?\. The 5 nearest test digits are (.+)\.")

        def expected_neighbours(z):
            labels = [p[2] for p in sorted(pts, key=lambda p: (p[0] - z[0]) ** 2 + (p[1] - z[1]) ** 2)[:5]]
            top = max(labels, key=lambda a: (labels.count(a), -labels.index(a)))
            n = labels.count(top)
            return f"all {top}s" if n == 5 else (f"mostly {top}s ({n} of 5)" if n >= 3 else "a mix: " + ", ".join(map(str, labels)))

        x.locator(".vbx-plane").focus()
        z, last_ink = [0.0, 0.0], None
        for key, dz in [("ArrowRight", (step, 0)), ("ArrowUp", (0, step)), ("ArrowUp", (0, step)), ("ArrowLeft", (-step, 0))]:
            page.keyboard.press(key)
            z = [z[0] + dz[0], z[1] + dz[1]]
            text = status.inner_text()
            m = said.fullmatch(text)
            assert m, f"after {key} the explorer said {text!r}"
            assert "ms" not in text.split() and "decoded in" not in text  # the value, not the timing
            assert (float(m[1]), float(m[2])) == (round(z[0], 2) + 0.0, round(z[1], 2) + 0.0), (text, z)
            ink = int(m[4])
            assert abs(ink - 100 * float(numpy_decode(layers, z).mean())) <= 0.51 + 0.01, (text, z)
            if last_ink is not None and ink != last_ink:
                assert (m[5], int(m[6])) == ("up" if ink > last_ink else "down", abs(ink - last_ink)), text
            elif last_ink is not None:
                assert m[5] is None, text
            assert m[7] == expected_neighbours(z), (text, z)
            last_ink = ink
        # past the edge, it says so and z stays on the edge
        for _ in range(int(2 * lim / step) + 2):
            page.keyboard.press("ArrowDown")
        m = said.fullmatch(status.inner_text())
        assert m and float(m[2]) == -lim and m[3], status.inner_text()
    finally:
        context.close()


# --------------------------------------------------------------------------- any screen
# The chapters' central identities, which must fit a phone's screen too (label -> chapter page).
CENTRAL_IDENTITIES = {
    "eq-marginal": "book/05_dlvm.html",  # the marginal likelihood
    "eq-elbo": "book/06_elbo.html",  # the ELBO's definition
    "eq-kl-divergence": "book/06_elbo.html",  # the KL divergence
    "eq-elbo-identity": "book/06_elbo.html",  # the ELBO identity
    "eq-reparam": "book/07_reparametrization.html",  # the reparametrization
    "eq-gaussian-kl": "book/07_reparametrization.html",  # the Gaussian KL in closed form
}
MEASURE_DISPLAY_MATH = """(sameLine) => Array.from(document.querySelectorAll('article mjx-container[display="true"]')).map(c => {
  const box = c.closest('div.math') || c.parentElement, col = box.parentElement;
  const cs = getComputedStyle(col), r = col.getBoundingClientRect(), m = c.querySelector('mjx-math').getBoundingClientRect();
  const left = r.left + parseFloat(cs.paddingLeft), right = r.right - parseFloat(cs.paddingRight);
  const eqno = box.querySelector('.eqno'), e = eqno && eqno.getBoundingClientRect();
  const item = MathJax.startup.document.getMathItemsWithin(c)[0];
  const problems = [];
  if (c.scrollWidth > c.clientWidth + 1) problems.push(`${c.scrollWidth} px wide in a ${c.clientWidth} px box`);
  if (m.left < left - 1 || m.right > right + 1) problems.push(`spans ${Math.round(m.left)}-${Math.round(m.right)} px, column ${Math.round(left)}-${Math.round(right)} px`);
  if (sameLine && e && !(e.top < m.bottom && e.bottom > m.top)) problems.push('its number had to move below it');
  return {id: box.id.replace('equation-', ''), tex: item ? item.math.trim().slice(0, 70) : '', problems,
          overflow: getComputedStyle(c).overflowX};
})"""


def _display_math(page, same_line):
    return page.evaluate(MEASURE_DISPLAY_MATH, same_line)


@pytest.mark.parametrize("page_path", _pages_with('class="math notranslate nohighlight"'))
def test_display_math_fits_its_column_at_1280_px(browser, server, page_path):
    """On a laptop screen every display equation fits its column, its number beside it: none is cut off."""
    if page_path == "(none)":
        pytest.fail("no page has math")
    _, page, _ = _look(browser, server, page_path)
    bad = [f"({d['id'] or 'unlabelled'}) {d['tex']!r}: {', '.join(d['problems'])}" for d in _display_math(page, True) if d["problems"]]
    assert not bad, f"{page_path}: {len(bad)} display equations do not fit at 1280 px: " + "; ".join(bad)


@pytest.mark.parametrize("page_path", _pages_with('class="math notranslate nohighlight"'))
def test_central_identities_fit_a_phone(browser, server, page_path):
    """At 390 px the central identities fit; every other display equation scrolls inside its own box."""
    if page_path == "(none)":
        pytest.fail("no page has math")
    _, page, _ = _look(browser, server, page_path, width=390, height=844)
    maths = _display_math(page, False)
    by_id = {d["id"]: d for d in maths if d["id"]}
    for label in [k for k, v in CENTRAL_IDENTITIES.items() if v == page_path]:
        assert label in by_id, f"{page_path} has no equation ({label})"
        assert not by_id[label]["problems"], f"({label}) does not fit at 390 px: {by_id[label]['problems']}"
    cut = [d["id"] or d["tex"] for d in maths if d["problems"] and d["overflow"] not in ("auto", "scroll")]
    assert not cut, f"{page_path}: equations too wide for a phone that do not scroll: {cut}"
