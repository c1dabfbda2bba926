"""The built book in a real browser: headless Chromium (Debian's package) driven by Playwright.

Run after ``make book`` (``make browser`` does both in ``make test``). For every page: no
JavaScript errors, math typeset, every image loaded, no traceback or raw widget repr, the right
Colab link on chapter pages; where present, solutions open on click, quizzes answer, and the latent
explorer redraws when dragged.

Outside CI these tests are skipped, with a message, when no Chromium is installed; with ``CI`` set
they must run.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import socketserver
import threading
from pathlib import Path

import pytest

from vaebook import book

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
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
def server():
    _require_environment()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{srv.server_address[1]}"
        srv.shutdown()


@pytest.fixture(scope="session")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def _open(browser, server, page_path, width=1280, height=900):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(f"{server}/{page_path}", wait_until="networkidle")
    # MathJax typesets after the page loads: wait for its promise where MathJax is on the page
    page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise.then(() => true) : true")
    return context, page, errors


def test_the_book_has_pages():
    _require_environment()
    pages = _pages()
    assert len(pages) >= 10, pages
    assert "book/intro.html" in pages and "book/08_vae.html" in pages


@pytest.mark.parametrize("page_path", _pages() or ["(not built)"])
def test_page_renders_cleanly(browser, server, page_path):
    context, page, errors = _open(browser, server, page_path)
    try:
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
    finally:
        context.close()


@pytest.mark.parametrize("page_path", _pages() or ["(not built)"])
def test_page_fits_a_phone_screen(browser, server, page_path):
    """At 390 px wide nothing in the page's content sticks out sideways, except inside boxes that scroll."""
    context, page, _ = _open(browser, server, page_path, width=390, height=844)
    try:
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
    finally:
        context.close()


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
            assert max(abs(a - b) for a, b in zip(js, numpy_decode(layers, z))) < 1e-4
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
