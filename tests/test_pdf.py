"""The PDF of the whole book (``make pdf``, scripts/build_pdf.py): what it holds, read back with poppler.

Run after ``make pdf``; in ``make test`` the book chain builds it after the HTML book, and these tests
run with the browser tests (the PDF is Chromium's print of the single-page build). Each test reads the
PDF itself (``pdftotext``, ``pdfimages -list``, ``pdfinfo``) and compares it with the HTML book or the
chapters' sources, not with what the build script says it did, except where only the build can know
(the links that did not resolve in the page).

Outside CI these tests are skipped, with a message, when the PDF or poppler-utils is missing; with
``CI`` set they must run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import unicodedata
from functools import cache
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
PDF = BUILD / "pdf" / "vaebook.pdf"
REPORT = BUILD / "pdf" / "report.json"
LOG = BUILD / "pdf" / "singlehtml.log"
HTML = BUILD / "html"


def _require() -> None:
    for tool in ("pdftotext", "pdfimages", "pdfinfo"):
        if not shutil.which(tool):
            if os.environ.get("CI"):
                pytest.fail(f"CI is set but {tool} is missing: install poppler-utils")
            pytest.skip(f"{tool} is missing; install poppler-utils (apt-get install poppler-utils) to test the PDF")
    if not PDF.exists() or not REPORT.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{PDF} is missing: make test builds it (make pdf) after the book")
        pytest.skip(f"no {PDF.relative_to(ROOT)}; run `make pdf` to test it")


@cache
def _pages() -> list[str]:
    """The PDF's text, one string per page (pdftotext separates pages with a form feed)."""
    _require()
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(PDF), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")[:-1]


@cache
def _report() -> dict:
    _require()
    return json.loads(REPORT.read_text(encoding="utf-8"))


def _norm(text: str) -> str:
    """Text as both sides can be compared: curly quotes straight, dashes plain, whitespace single."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u00ad", "")
    return re.sub(r"\s+", " ", text).strip()


def _key(text: str) -> str:
    """_norm without spaces and hyphens: pdftotext joins a word hyphenated at a line's end ('semi-' +
    'supervised' -> 'semisupervised') and spaces some formulas differently from the source."""
    return re.sub(r"[\s\-]+", "", _norm(text))


def _chapters() -> list[Path]:
    """The notebooks _toc.yml lists, in its order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(entries):
        for e in entries:
            files.append(e["file"])
            walk(e.get("sections", []))

    for part in toc["parts"]:
        walk(part["chapters"])
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def _markdown(nb: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "markdown"]


def _title(nb: Path) -> str:
    for src in _markdown(nb):
        m = re.search(r"^# (.+)$", src, re.M)
        if m:
            return m.group(1).strip()
    raise AssertionError(f"{nb.name} has no title")


def _summary_fragments(nb: Path) -> list[str]:
    """The words of the first sentence of the chapter's summary, as runs of prose between formulas and roles."""
    for src in _markdown(nb):
        m = re.search(r"^## Summary\s*\n+(?:- )?(.+?)(?:\n\n|\n- |\Z)", src, re.M | re.S)
        if m:
            para = m.group(1)
            # the first sentence: up to a full stop that is followed by a space and a capital, outside math
            masked = re.sub(r"\$[^$]+\$", lambda x: "#" * len(x.group(0)), para)
            end = re.search(r"\.(\s+[A-Z]|\s*$)", masked)
            sentence = para[: end.start() + 1] if end else para
            sentence = re.sub(r"\{\w+\}`[^`]*`", "|", sentence)  # roles: {eq}`...`, {cite}`...`
            sentence = re.sub(r"\$[^$]+\$", "|", sentence)  # math
            sentence = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", sentence)  # links
            sentence = sentence.replace("**", "").replace("`", "").replace("*", "")
            return [f for f in (_norm(p).strip(" ,.:;()") for p in sentence.split("|")) if len(f) >= 4]
    raise AssertionError(f"{nb.name} has no '## Summary'")


def _chapter_pages() -> dict[str, tuple[int, int]]:
    """Each document's pages, first to last (1-based), from the pages its heading starts on."""
    chapters = _report()["chapters"]
    starts = [c["page"] for c in chapters] + [_report()["solutions_page"]]
    return {c["doc"]: (starts[i], max(starts[i], starts[i + 1] - 1 if starts[i + 1] > starts[i] else starts[i]))
            for i, c in enumerate(chapters)}


def test_page_count_and_tags():
    _require()
    info = subprocess.run(["pdfinfo", str(PDF)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    # 461 pages on A4 when this test was written (17 chapters and the reference pages); a chapter
    # or the API reference dropping out, or a print that stops early, moves it far outside this range
    assert 380 <= pages <= 620, f"the PDF has {pages} pages"
    assert pages == len(_pages()) == _report()["pages"]
    assert re.search(r"^Tagged:\s+yes", info, re.M), "the PDF is not tagged"
    assert re.search(r"^Page size:\s+595\.\d+ x 842\.\d+ pts \(A4\)", info, re.M), info


def test_every_chapter_title_and_first_summary_sentence_are_in_the_pdf():
    text = [_key(p) for p in _pages()]
    ranges = _chapter_pages()
    for nb in _chapters():
        doc = f"book/{nb.stem}"
        assert doc in ranges, f"{doc} is not in the PDF"
        first, last = ranges[doc]
        title = _key(_title(nb))
        assert title in text[first - 1], f"{nb.stem}: its title {title!r} is not on page {first}, where the contents say it starts"
        chapter = " ".join(text[first - 1: last])
        pos = 0
        for fragment in _summary_fragments(nb):
            found = chapter.find(_key(fragment), pos)
            assert found >= 0, f"{nb.stem}: {fragment!r} of its summary's first sentence is not on pages {first}-{last}"
            pos = found + len(_key(fragment))


def test_the_contents_give_each_chapter_its_page():
    pages = _pages()
    contents = next(i for i, p in enumerate(pages) if p.lstrip().startswith("Contents"))
    toc = _norm(" ".join(pages[contents: contents + 3]))
    listed = 0
    for c in _report()["chapters"]:
        m = re.search(re.escape(_norm(c["title"])) + r" (\d+)\b", toc)
        assert m, f"the contents do not list {c['title']!r} with a page number"
        page = int(m.group(1))
        assert page == c["page"], f"the contents put {c['title']!r} on page {page}, the PDF on {c['page']}"
        assert _key(_norm(c["title"]).split(". ", 1)[-1]) in _key(pages[page - 1]), f"{c['title']!r} is not on page {page}"
        listed += 1
    assert listed >= len(_chapters()) + 6  # the intro, every chapter and the reference pages


def test_no_raw_markup_survives():
    for i, page in enumerate(_pages(), start=1):
        for raw in ("$$", "{eq}", "{cite}", "{doc}", "{numref}", ":::", "```{", "\\begin{", "\\mathbf"):
            assert raw not in page, f"page {i} shows raw {raw!r}: {page[max(0, page.find(raw) - 80): page.find(raw) + 80]!r}"
        assert not re.search(r"(?<![\w?])\?\?(?![\w?])", page), f"page {i} has an unresolved reference (??)"


def _html_figures() -> dict[str, tuple[int, int]]:
    """Each HTML page's figures (<img> in the article, the browser tests' rule): (in the text, in solutions)."""
    out = {}
    for page in sorted((HTML / "book").glob("*.html")):
        html = page.read_text(encoding="utf-8")
        article = html[html.find("<article"): html.find("</article>")]
        total = len(re.findall(r"<img\b", article))
        in_solutions = sum(len(re.findall(r"<img\b", m)) for m in re.findall(
            r'<div class="solution dropdown admonition".*?</section>\s*</div>', article, re.S))
        out[f"book/{page.stem}"] = (total - in_solutions, in_solutions)
    return out


def _pdf_images() -> list[tuple[int, str]]:
    """(page, encoding) of every image drawn in the PDF, smasks left out."""
    out = subprocess.run(["pdfimages", "-list", str(PDF)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()[2:]]
    return [(int(r[0]), r[8]) for r in rows if r[2] == "image"]


def test_every_figure_of_the_html_book_is_in_the_pdf():
    _require()
    if not (HTML / "book").is_dir():
        pytest.fail(f"{HTML} is missing: run `make book` first")
    html = _html_figures()
    images = _pdf_images()
    ranges = _chapter_pages()
    for doc, (first, last) in ranges.items():
        assert doc in html, f"the HTML book has no page for {doc}: is it older than _toc.yml? (make book)"
        in_pdf = sum(1 for page, _ in images if first <= page <= last)
        assert in_pdf == html[doc][0], f"{doc}: {html[doc][0]} figures in the HTML book, {in_pdf} on its pages {first}-{last} of the PDF"
    appendix = sum(1 for page, _ in images if page >= _report()["solutions_page"])
    assert appendix == sum(s for _, s in html.values()), "the solutions' figures differ between the HTML book and the appendix"
    total = sum(t + s for t, s in html.values())
    assert total > 50 and len(images) == total == _report()["images"]


def test_figures_keep_their_alt_text():
    """The tagged PDF gives each figure its alt text (/Alt), and no box is turned into a picture."""
    _require()
    raw = PDF.read_bytes()
    alts = [a.decode("latin-1") for a in re.findall(rb"/Alt\s*\(((?:[^()\\]|\\.)*)\)", raw)]
    alts += [bytes.fromhex(h.decode()).decode("utf-16") for h in re.findall(rb"/Alt\s*<([0-9A-Fa-f]+)>", raw)]
    assert len(alts) == len(_pdf_images()), f"{len(alts)} alt texts for {len(_pdf_images())} figures"
    assert all(len(a.split()) >= 4 for a in alts), [a for a in alts if len(a.split()) < 4][:3]
    # Skia turns blurred shadows into 300 dpi JPEGs; the figures are PNGs (drawn as 'image'), none JPEG
    assert not [p for p, enc in _pdf_images() if enc == "jpeg"], "a shadow or a box was printed as a picture"


def test_math_is_text():
    """Formulas are text in MathJax's fonts: the Gaussian KL's symbols can be read back from chapter 7."""
    first, last = _chapter_pages()["book/07_reparametrization"]
    chapter = "\n".join(_pages()[first - 1: last])
    for symbol in ("μ", "σ", "ϵ", "∇", "∼"):
        assert symbol in chapter, f"{symbol!r} is not text in chapter 7"


def test_links_and_references_resolve():
    """Every internal link of the page pointed at an id that exists, and every link in the PDF at a destination."""
    report = _report()
    assert report["missing"] == [], f"documents of _toc.yml missing from the single-page build: {report['missing']}"
    assert report["unresolved"] == [], f"links that lead nowhere on paper: {report['unresolved'][:5]}"
    assert report["untypeset_math"] == 0
    log = LOG.read_text(encoding="utf-8")
    assert not re.search(r": WARNING: |undefined label", log), "the single-page build warned"
    assert "Executing notebook" not in log, "the PDF's build ran a chapter again instead of using make book's cache"
    dests_out = subprocess.run(["pdfinfo", "-dests", str(PDF)], capture_output=True, text=True, check=True).stdout
    dests = set(re.findall(r'"(.*)"\s*$', dests_out, re.M))
    linked = {re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), d).decode("utf-8")
              for d in re.findall(rb"/Dest /([^\s/\]>]+)", PDF.read_bytes())}
    assert len(linked) > 500, f"only {len(linked)} internal links in the PDF"
    assert linked <= dests, f"links to destinations the PDF lacks: {sorted(linked - dests)[:5]}"


def test_solutions_are_in_the_appendix():
    report = _report()
    written = sum(len(re.findall(r"```\{solution\}", src)) for nb in _chapters() for src in _markdown(nb))
    code = sum("### BEGIN SOLUTION" in "".join(c["source"])
               for nb in _chapters() for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code")
    assert (report["solutions"], report["code_solutions"]) == (written, code)
    appendix = _norm(" ".join(_pages()[report["solutions_page"] - 1:]))
    assert appendix.startswith("Solutions") or " Solutions " in appendix[:200]
    assert appendix.count("Solution to Exercise") == written
    assert appendix.count("Solution code to Exercise") == code
    quizzes = sum(page.read_text(encoding="utf-8").count('<div class="vbq"') for page in (HTML / "book").glob("*.html"))
    assert quizzes > 10 and report["quizzes"] == quizzes == appendix.count("Answer to the quiz")
    assert "appendix" in _norm(" ".join(_pages()[:3])), "the front matter does not say where the solutions are"
    ranges = _chapter_pages()
    for nb in _chapters():  # the chapters' own pages (the instructors' page explains the markers)
        first, last = ranges[f"book/{nb.stem}"]
        pages = _norm(" ".join(_pages()[first - 1: last]))
        assert "BEGIN SOLUTION" not in pages and "Solution to Exercise" not in pages, f"a solution is left in {nb.stem}"
