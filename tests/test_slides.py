"""The slides (``make slides``, vaebook/authoring/slides.py): how cells become slides, and every deck in Chromium.

Without a browser: the builder turns a tagged figure, quiz, printed output and equation into the slide
the tag convention promises, and stops with a message naming the cell when a tag cannot be honoured
(a figure without alt text, an equation the cell does not label, a cell that shows nothing, chapters
newer than their executed copies); where an executed copy is stale, the execution cache's run of the
same code stands in.

In Chromium (browser-marked, so ``make test``'s browser stage runs them after ``make slides``), as the
book's pages are tested (tests/test_browser.py): every deck opens with no failed request and no console
error, its math is typeset, it has at least 5 slides, each of which fits the 1280 x 720 slide, every
image loads and has alt text that describes it, a poll's answer waits for the next press, the print
view (``?print-pdf``) lays out one page per slide (a poll two: question, then answer), and axe-core finds no critical or serious violation.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from vaebook.authoring import slides

ROOT = Path(__file__).resolve().parents[1]
SLIDES = ROOT / "_build" / "slides"
MIN_SLIDES = 5


# --------------------------------------------------------------------------- the builder, no browser
def _cell(cell_type: str, source: str, tags: list[str] | None = None, **meta) -> dict:
    cell = {"cell_type": cell_type, "metadata": copy.deepcopy(meta), "source": source}
    if tags:
        cell["metadata"]["tags"] = tags
    if cell_type == "code":
        cell["outputs"], cell["execution_count"] = [], None
    return cell


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
FIGURE_META = {"mystnb": {"figure": {"caption": "Loss against steps, see {eq}`eq-loss`.", "name": "fig-loss"},
                          "image": {"alt": "A falling curve of the loss over 100 training steps."}}}
QUIZ_HTML = ('<div class="vbq" id="vbq-1" data-answer="1"><p class="vbq-q">Is 2 &lt; 3?</p><div class="vbq-options">'
             '<button type="button" class="vbq-option" data-index="0" aria-pressed="false">No</button>'
             '<button type="button" class="vbq-option" data-index="1" aria-pressed="false">Yes</button></div>'
             '<script type="application/json" class="vbq-notes">["Look again.", "Right: 2 is less than 3."]</script></div>')


def _chapter() -> tuple[dict, dict]:
    """A small chapter (source, executed) with one cell of each kind tagged."""
    cells = [
        _cell("markdown", "# A chapter with $\\beta$"),
        _cell("markdown", "## The loss\n\nSome words first. The loss is\n\n$$\nL = \\sum_i x_i^2\n$$ (eq-loss)\n\nand more.",
              ["slide:eq-loss"]),
        _cell("code", "plot()", ["slide"], **FIGURE_META),
        _cell("code", "quiz()", ["slide"]),
        _cell("code", "print(score)", ["slide"]),
        _cell("markdown", "### Key point\n\n- a list, citing {cite:p}`kingma2013auto` and {doc}`05_dlvm`", ["slide"]),
        _cell("code", "untagged()"),
    ]
    source = {"cells": cells}
    executed = copy.deepcopy(source)
    executed["cells"][2]["outputs"] = [{"output_type": "display_data", "data": {"image/png": PNG, "text/plain": "<Figure>"}, "metadata": {}}]
    executed["cells"][3]["outputs"] = [{"output_type": "execute_result", "data": {"text/html": QUIZ_HTML, "text/plain": "<Html>"},
                                        "metadata": {}, "execution_count": 1}]
    executed["cells"][4]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "PSNR 20.1 dB\n"},
                                       {"output_type": "stream", "name": "stderr", "text": "warning\n"}]
    executed["cells"][6]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "not on a slide\n"}]
    return source, executed


REFS = {"eq-loss": "3.1", "fig-loss": "Fig. 3.2", "cite:kingma2013auto": "Kingma and Welling 2014", "doc:05_dlvm": "chapter 5"}


def test_each_tagged_cell_becomes_the_slide_the_convention_promises():
    deck = slides.build_deck("03_x", *_chapter(), REFS, "3")
    assert deck.number == "3" and deck.title == "A chapter with \\beta"
    assert len(deck.slides) == 5, deck.slides
    eq, fig, quiz, printed, point = deck.slides
    # an equation: titled by its section, its lead-in sentence, the book's number, not the words around it
    assert eq.startswith("<h2>The loss</h2>") and "<p>The loss is</p>" in eq and "\\tag{3.1}" in eq
    assert "Some words first" not in eq and "and more" not in eq
    # a figure: the image with the cell's alt text, the book's figure number, the caption's reference resolved
    assert f'alt="{FIGURE_META["mystnb"]["image"]["alt"]}"' in fig and "Fig. 3.2" in fig and "see (3.1)" in fig
    assert list(deck.images) == ["images/03_x-1.png"] and deck.images["images/03_x-1.png"].startswith(b"\x89PNG")
    # a poll: the question and both options; the answer, with why, on a fragment
    assert "Is 2 &lt; 3?" in quiz and "(A)</span> No" in quiz and "(B)</span> Yes" in quiz
    assert re.search(r'<div class="fragment answer"><p><strong>Answer: \(B\) Yes\.</strong> Right: 2 is less than 3\.', quiz)
    # printed numbers: standard output only
    assert '<pre class="printed">PSNR 20.1 dB</pre>' in printed and "warning" not in printed
    # a whole markdown cell: its own heading as title, roles resolved
    assert point.startswith("<h2>Key point</h2>") and "(Kingma and Welling 2014)" in point and "chapter 5" in point
    assert "not on a slide" not in "".join(deck.slides)


def _broken(change) -> str:
    source, executed = _chapter()
    change(source, executed)
    with pytest.raises(slides.SlideError) as err:
        slides.build_deck("03_x", source, executed, REFS, "3")
    return str(err.value)


def test_a_tag_that_cannot_be_honoured_stops_the_build_and_names_the_cell():
    def no_alt(source, executed):
        source["cells"][2]["metadata"]["mystnb"]["image"]["alt"] = " "

    assert "cell 2" in (msg := _broken(no_alt)) and "alt text" in msg

    def wrong_label(source, executed):
        source["cells"][1]["metadata"]["tags"] = ["slide:eq-other"]

    assert "cell 1" in (msg := _broken(wrong_label)) and "eq-other" in msg and "eq-loss" in msg

    def shows_nothing(source, executed):
        executed["cells"][4]["outputs"] = [{"output_type": "stream", "name": "stderr", "text": "only a warning\n"}]

    assert "cell 4" in (msg := _broken(shows_nothing)) and "shows nothing" in msg

    def stale(source, executed):
        source["cells"][6]["source"] = "changed()"

    assert "make book" in _broken(stale)

    def directive(source, executed):
        source["cells"][5]["source"] = ":::{admonition} Note\nA box.\n:::"
        executed["cells"][5]["source"] = source["cells"][5]["source"]

    assert "cell 5" in (msg := _broken(directive)) and "directive" in msg


def test_outputs_come_from_the_execution_cache_where_the_executed_copy_is_stale(tmp_path):
    """Another build may overwrite _build/jupyter_execute; the cache's run of the same code stands in, and
    without one the build stops and asks for make book."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    source, executed = _chapter()
    for nb in (source, executed):
        nb.update(nbformat=4, nbformat_minor=5, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        for i, c in enumerate(nb["cells"]):
            c["id"] = f"c{i}"
    chapter = tmp_path / "book" / "03_x.ipynb"
    (tmp_path / "executed").mkdir()
    stale = copy.deepcopy(source)  # cells as the chapter's, no outputs: a build that did not execute it
    (tmp_path / "executed" / "03_x.ipynb").write_text(json.dumps(stale))
    with pytest.raises(slides.SlideError, match="no outputs.*make book"):
        slides.executed_chapter(chapter, source, tmp_path / "executed", tmp_path / "no-cache")
    cache = get_cache(tmp_path / "cache")
    cache.cache_notebook_bundle(CacheBundleIn(nbformat.reads(json.dumps(executed), as_version=4), "03_x.ipynb"), check_validity=False)
    got = slides.executed_chapter(chapter, source, tmp_path / "executed", tmp_path / "cache")
    assert "".join(got["cells"][4]["outputs"][0]["text"]) == "PSNR 20.1 dB\n"
    assert len(slides.build_deck("03_x", source, got, REFS, "3").slides) == 5
    source["cells"][6]["source"] = "changed()"  # code the cache never ran
    with pytest.raises(slides.SlideError, match="no run of its current code.*make book"):
        slides.executed_chapter(chapter, source, tmp_path / "executed", tmp_path / "cache")


def test_citations_read_the_books_bibliography():
    refs = slides.citations(ROOT / "book" / "references.bib")
    assert refs["cite:kingma2013auto"] == "Kingma and Welling 2014"
    assert refs["cite:burda2015importance"] == "Burda et al. 2015"


# --------------------------------------------------------------------------- every deck in Chromium
def _tagged_chapters() -> list[str]:
    out = []
    for path in slides.toc_chapters(ROOT):
        tags = {t for c in json.loads(path.read_text(encoding="utf-8"))["cells"] for t in c.get("metadata", {}).get("tags", [])}
        if any(t == "slide" or t.startswith("slide:") for t in tags):
            out.append(path.stem)
    return out


DECKS = [f"{stem}.html" for stem in _tagged_chapters()]


def _require_slides():
    from tests.test_browser import CHROMIUM

    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but Chromium is missing at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    if not (SLIDES / "index.html").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SLIDES} is not built: make test runs `make slides` before the browser tests")
        pytest.skip(f"the slides are not built ({SLIDES}); run `make slides`")


@pytest.fixture(scope="module")
def deck_server(build_server):
    """The decks, on the server of the browser tests (it serves _build/)."""
    _require_slides()
    return f"{build_server}/{SLIDES.name}"


@pytest.fixture(scope="module")
def chromium(chromium_browser, deck_server):
    """One browser context for every deck, as one instructor's browser: reveal.js and MathJax load once."""
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 720})
    yield context
    context.close()


def _load(chromium, url: str):
    deck = url.rsplit("/", 1)[-1].split("?")[0]
    if not (SLIDES / deck).is_file():
        pytest.fail(f"{SLIDES / deck} was not built (make slides)")
    context = page = chromium.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")  # scripts, styles and images; MathJax's fonts come with its typesetting
    page.wait_for_function("() => window.Reveal && Reveal.isReady() && window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    return context, page, errors


@pytest.mark.browser
def test_every_tagged_chapter_has_a_deck_listed_on_the_index():
    _require_slides()
    built = sorted(p.name for p in SLIDES.glob("*.html") if p.name != "index.html")
    assert built == DECKS, f"decks built {built}, chapters with slide tags {DECKS}"
    index = (SLIDES / "index.html").read_text(encoding="utf-8")
    for deck in DECKS:
        count = len(re.findall(r"<section[ >]", (SLIDES / deck).read_text(encoding="utf-8")))
        assert re.search(rf'<a href="{deck}">.*?</a></td><td>{count}</td>', index), f"{deck} ({count} slides) not on the index"
    assert not re.search(r'(src|href)="(https?:)?//', index + "".join((SLIDES / d).read_text(encoding="utf-8") for d in DECKS)), \
        "a deck loads something from the network"



@pytest.mark.browser
@pytest.mark.parametrize("deck", DECKS or ["(no deck)"])
def test_deck_presents_cleanly(chromium, deck_server, deck):
    """Opened as an instructor presents it: no error, math typeset, enough slides, each fitting the slide."""
    from tests.test_browser import _looks_like_a_file_name

    context, page, errors = _load(chromium, f"{deck_server}/{deck}")
    try:
        assert not errors, f"{deck}: {errors}"
        n = page.evaluate("() => Reveal.getTotalSlides()")
        assert n >= MIN_SLIDES, f"{deck} has {n} slides, fewer than {MIN_SLIDES}"
        html = (SLIDES / deck).read_text(encoding="utf-8")
        text = page.evaluate("() => document.querySelector('.reveal .slides').textContent")
        if "\\(" in html or "\\[" in html:
            assert page.locator("mjx-container").count() > 0, f"{deck}: math was not typeset"
        for raw in ("\\(", "\\[", "$$", "\\begin{"):
            assert raw not in text, f"{deck}: untypeset math ({raw!r}) left on a slide"
        assert not re.search(r"\{(eq|numref|doc|cite|ref)[:}]", text), f"{deck}: a MyST role was left unresolved"
        # every image loads and says what it shows
        images = page.evaluate("() => Array.from(document.querySelectorAll('.reveal img')).map(i => [i.getAttribute('alt'), i.naturalWidth, i.src.slice(-40)])")
        for alt, width, src in images:
            assert width > 0, f"{deck}: {src} did not load"
            assert alt and len(alt.split()) >= 4 and not _looks_like_a_file_name(alt), f"{deck}: {src} has alt {alt!r}"
        # a poll's answer waits for the next press
        polls = page.evaluate("() => Reveal.getSlides().map((s, i) => s.querySelector('.answer') ? i : -1).filter(i => i >= 0)")
        for i in polls:
            page.evaluate(f"() => Reveal.slide({i}, 0, -1)")
            answer = page.locator(".reveal .slides section.present .answer")
            assert "visible" not in (answer.get_attribute("class") or ""), f"{deck}: poll on slide {i + 1} shows its answer at once"
            page.evaluate("() => Reveal.next()")
            assert "visible" in (answer.get_attribute("class") or ""), f"{deck}: the next press did not show the poll's answer"
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize("deck", DECKS or ["(no deck)"])
def test_deck_prints_one_page_per_slide_and_passes_axe(chromium, deck_server, deck):
    """The print view (?print-pdf, what an instructor prints to PDF) shows every slide at once: one page per
    slide (two for a poll, its question and then its answer), each within its page, no error, and axe-core (WCAG 2 A/AA) finds no critical or serious violation on any slide."""
    from tests.test_browser import _axe, _require_axe

    _require_axe()
    context, page, errors = _load(chromium, f"{deck_server}/{deck}?print-pdf")
    try:
        assert not errors, f"{deck} (print view): {errors}"
        html = (SLIDES / deck).read_text(encoding="utf-8")
        n_slides, n_polls = html.count("<section"), html.count('class="fragment answer"')
        pages = page.locator(".pdf-page").count()
        assert pages == n_slides + n_polls, f"{deck}: {pages} printed pages for {n_slides} slides, {n_polls} of them polls (a poll prints twice: question, then answer)"
        # each slide's content fits the 1280 x 720 slide: nothing is cut off, on the screen or on paper
        too_tall = page.evaluate(
            """() => Array.from(document.querySelectorAll('.pdf-page > section')).map((s, i) => {
                 const top = s.getBoundingClientRect().top;
                 const bottom = Math.max(...Array.from(s.children).map(c => c.getBoundingClientRect().bottom));
                 return [i + 1, Math.round(bottom - top), s.querySelector('h1, h2').textContent]; })
               .filter(([i, h]) => h > Reveal.getConfig().height)""")
        assert not too_tall, f"{deck}: slides taller than 720 px (number, height, title): {too_tall}"
        found = _axe(page)
        assert not found, f"axe-core on the slides {deck}: " + "; ".join(
            f"{v['impact']} {v['rule']} at {v['target']} ({v['html']!r}): {v['why']}" for v in found[:8])
    finally:
        context.close()


@pytest.mark.browser
def test_the_index_passes_axe(chromium, deck_server):
    from tests.test_browser import _axe, _require_axe

    _require_axe()
    page = context = chromium.new_page()
    try:
        page.goto(f"{deck_server}/index.html")
        assert page.locator("a[href$='.html']").count() == len(DECKS)
        found = _axe(page)
        assert not found, found[:3]
    finally:
        context.close()
