"""Build the whole book as one PDF (``make pdf``): _build/pdf/vaebook.pdf.

The route: Jupyter Book's single-page HTML build (``--builder singlehtml``), rendered from the same
execution cache as ``make book`` (no chapter runs again), printed by the Chromium that the browser
tests already use, driven by Playwright, with the book's own MathJax 3 files (served locally, no
network). Chromium's print gives a tagged PDF (headings, paragraphs, lists, tables, and figures with
their alt text), an outline (bookmarks) from the headings, working internal links, and the math as
text in MathJax's fonts rather than as pictures.

Before printing, the page is turned into a book (``PREPARE_JS`` below): the site's navigation goes; a
title page says what the PDF holds; a table of contents lists the parts, chapters and reference pages;
every chapter starts on a new page; the exercise solutions (written and code) move to an appendix at
the end, each exercise linking to its solution and back; folded asides are opened; the latent
explorer shows its static image; code wraps instead of being cut at the margin.

The table of contents gets its page numbers in two passes: Chromium prints the book once, ``pdfinfo
-dests`` (poppler-utils) reads the page of every heading that the contents link to, the numbers are
written into the contents (whose entries reserve their width from the start, so no page moves), and
Chromium prints again. The second print must find every heading on the page the first one did.

What the build checked is written to _build/pdf/report.json, which tests/test_pdf.py reads beside the
PDF: the chapters with their pages, the figures, the links that did not resolve in the page.

Usage: ``python scripts/build_pdf.py`` (``--no-sphinx`` reprints the existing single-page build).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
SINGLE = BUILD / "singlehtml"
OUT = BUILD / "pdf"
PDF = OUT / "vaebook.pdf"
REPORT = OUT / "report.json"
LOG = OUT / "singlehtml.log"
CHROMIUM = os.environ.get("VAEBOOK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# Print CSS: what the screen theme needs changed on paper.
PRINT_CSS = r"""
@page { size: A4; margin: 16mm 15mm 18mm 15mm; }
html, body { background: white !important; }
/* Skia turns a blurred shadow into a 300 dpi picture: on paper, boxes have borders and no shadows */
html { --pst-color-shadow: transparent; }
#pdf-book, #pdf-book *, #pdf-book *::before, #pdf-book *::after { box-shadow: none !important; text-shadow: none !important; filter: none !important; }
body { font-size: 10.5pt; line-height: 1.45; }
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .bd-footer-article,
.bd-header-article, .prev-next-area, .headerlink, #jb-print-docs-body, .bd-search, .search-button-field,
button.toggle-button, .toggle-button, .copybtn, .pdf-hidden, .skip-link, .bd-footer-content { display: none !important; }
.bd-main, .bd-content, .bd-article-container, article.bd-article { max-width: none !important; width: auto !important;
  padding: 0 !important; margin: 0 !important; overflow: visible !important; }
.bd-container, .bd-container__inner, .bd-page-width { max-width: none !important; padding: 0 !important; }
/* code wraps on paper instead of being cut at the margin */
pre { white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important; font-size: 8.5pt; }
div.cell_output pre { max-height: none !important; }
.output { overflow: visible !important; }
img { max-width: 100% !important; height: auto; break-inside: avoid; }
figure, .cell_output img, table, .vbq, .pdf-quiz-answer { break-inside: avoid; }
h1, h2, h3, h4 { break-after: avoid; }
mjx-container[display="true"] { overflow: visible !important; }
/* folded asides print open */
.toggle-hidden, .dropdown .toggle-hidden, details > * { display: revert !important; visibility: visible !important; }
details.pdf-open > summary { list-style: none; }
/* the latent explorer prints its static image */
.vbx-live { display: none !important; }
.vbx-fallback { display: block !important; }
/* the book's own parts */
.pdf-chapter { break-before: page; }
.pdf-part-title { break-before: page; font-size: 1.6rem; font-weight: 600; color: #555; margin: 0 0 1.5rem 0; }
.pdf-part-title + .pdf-chapter { break-before: avoid; }
.pdf-title-page { text-align: left; padding-top: 30mm; }
.pdf-title-page h1 { font-size: 2.4rem; margin-bottom: 1rem; }
.pdf-front p { max-width: 40em; }
.pdf-toc { break-before: page; }
.pdf-toc ol { list-style: none; padding-left: 0; margin: 0; }
.pdf-toc li { margin: 0.15rem 0; }
.pdf-toc li.pdf-toc-part { font-weight: 600; margin-top: 0.8rem; }
.pdf-toc li.pdf-toc-sub { padding-left: 1.5em; }
.pdf-toc a { display: flex; text-decoration: none; color: inherit; }
.pdf-toc a .pdf-toc-title { flex: 0 1 auto; }
.pdf-toc a .pdf-toc-dots { flex: 1 1 auto; border-bottom: 1px dotted #888; margin: 0 0.4em 0.3em 0.4em; }
.pdf-toc a .pdf-toc-page { flex: 0 0 2.5em; text-align: right; font-variant-numeric: tabular-nums; }
.pdf-appendix-chapter { break-before: avoid; }
.pdf-solution-link { font-size: 0.9em; margin-top: -0.5rem; }
.pdf-solution-code-title { font-weight: 600; margin-top: 1rem; }
"""

# Run in the loaded single-page book: rebuild the body as a book. Takes the table of contents from
# _toc.yml ([{caption, docs: [[docname, depth], ...]}]) and returns what the tests check.
PREPARE_JS = r"""
async ({parts, css, title, front}) => {
  const style = document.createElement('style'); style.textContent = css; document.head.appendChild(style);
  document.documentElement.dataset.theme = 'light';
  const article = document.querySelector('article.bd-article');
  const book = document.createElement('main'); book.id = 'pdf-book';
  // 1. the title page and the front matter
  const titlePage = document.createElement('section');
  titlePage.className = 'pdf-title-page pdf-front'; titlePage.id = 'pdf-title-page';
  titlePage.innerHTML = `<h1>${title}</h1>` + front;
  book.appendChild(titlePage);
  // 2. the chapters: each document's section, found by the anchor singlehtml puts before it
  const sectionOf = (doc) => {
    const root = document.getElementById('document-' + doc);
    if (root) { let s = root.nextElementSibling; while (s && s.tagName !== 'SECTION') s = s.nextElementSibling; return s; }
    return null;
  };
  const missing = [];
  const chapters = [];
  const introSection = article.querySelector('section');
  for (const part of parts) {
    for (const [doc, depth] of part.docs) {
      const sec = doc === parts[0].docs[0][0] && depth < 0 ? introSection : sectionOf(doc);
      if (!sec) { missing.push(doc); continue; }
      const h = sec.querySelector('h1, h2, h3');
      const text = h.textContent.replace(/#$/, '').trim();
      chapters.push({doc, depth: Math.max(depth, 0), part: part.caption, section: sec, id: sec.id, title: text});
    }
  }
  // detach every chapter before moving any (the intro section contains the others in singlehtml)
  for (const c of chapters) c.section.remove();
  // 3. solutions: written ones (sphinx-exercise's .solution) and code ones (a folded cell with BEGIN SOLUTION)
  const appendix = document.createElement('section'); appendix.id = 'pdf-solutions'; appendix.className = 'pdf-chapter';
  appendix.innerHTML = '<h2>Solutions</h2><p>The solutions to every chapter\'s exercises and the answers to its quizzes, '
    + 'in the chapter\'s order. Each one links back to its exercise or quiz, and each exercise and quiz links here.</p>';
  let nSolutions = 0, nCodeSolutions = 0, nQuizzes = 0;
  const exerciseTitle = (ex) => ex.querySelector('.admonition-title').textContent.replace(/\s+/g, ' ').trim();
  for (const c of chapters) {
    const sols = [];
    const exercises = Array.from(c.section.querySelectorAll('.exercise'));
    const before = (a, b) => !!(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);
    for (const el of Array.from(c.section.querySelectorAll('.solution, details.hide'))) {
      if (el.classList.contains('solution')) {
        const link = el.querySelector('.admonition-title a[href*="#"]');
        const exId = link ? decodeURIComponent(link.getAttribute('href').split('#')[1]) : null;
        const ex = exId && document.getElementById(exId);
        if (ex) {
          const p = document.createElement('p'); p.className = 'pdf-solution-link';
          p.innerHTML = `<a href="#${el.id}">Solution in the appendix</a>`;
          el.before(p);  // where the folded solution was, right after its exercise
        }
        el.classList.remove('dropdown');
        sols.push(el); nSolutions++;
      } else if (el.textContent.includes('BEGIN SOLUTION')) {
        const cell = el.closest('.cell') || el;
        const ex = exercises.filter(e => before(e, cell)).pop();
        const id = 'pdf-code-solution-' + (nCodeSolutions + 1);
        const wrap = document.createElement('div'); wrap.id = id; wrap.className = 'pdf-code-solution';
        const t = document.createElement('p'); t.className = 'pdf-solution-code-title';
        if (ex) t.innerHTML = `Solution code to <a href="#${ex.id}">${exerciseTitle(ex)}</a>`;
        else t.textContent = 'Solution code';
        wrap.appendChild(t);
        const note = document.createElement('p'); note.className = 'pdf-solution-link';
        note.innerHTML = `<a href="#${id}">The solution code is in the appendix</a>`;
        cell.before(note);
        for (const child of Array.from(el.children)) if (child.tagName !== 'SUMMARY') wrap.appendChild(child);
        cell.remove();
        sols.push(wrap); nCodeSolutions++;
      } else {
        el.classList.add('pdf-hidden');  // folded code with no solution: there is no click on paper
      }
    }
    // the quizzes' answers, with the note the HTML book shows for the right option
    for (const q of Array.from(c.section.querySelectorAll('.vbq'))) {
      const right = Number(q.dataset.answer);
      const option = q.querySelectorAll('.vbq-option')[right];
      const notesEl = q.querySelector('.vbq-notes');
      const notes = notesEl ? JSON.parse(notesEl.textContent) : [];
      const question = q.querySelector('.vbq-q');
      if (!option || !question) continue;
      const id = 'pdf-quiz-answer-' + (++nQuizzes);
      const answer = document.createElement('div'); answer.id = id; answer.className = 'pdf-quiz-answer';
      const title = document.createElement('p'); title.className = 'pdf-solution-code-title';
      title.innerHTML = `Answer to the quiz <a href="#${q.id}"></a>`;
      title.querySelector('a').textContent = '“' + question.textContent.trim() + '”';
      const body = document.createElement('p');
      body.textContent = option.textContent.trim() + (notes[right] ? '. ' + notes[right] : '');
      answer.append(title, body);
      const link = document.createElement('p'); link.className = 'pdf-solution-link';
      link.innerHTML = `<a href="#${id}">The answer is in the appendix</a>`;
      q.after(link);
      sols.push(answer);
    }
    if (sols.length) {
      const h = document.createElement('h3'); h.className = 'pdf-appendix-chapter';
      h.textContent = c.title; appendix.appendChild(h);
      for (const s of sols) appendix.appendChild(s);
    }
  }
  // 4. folded asides print open
  for (const d of document.querySelectorAll('.dropdown')) d.classList.remove('dropdown');
  for (const d of document.querySelectorAll('.toggle-hidden')) d.classList.remove('toggle-hidden');
  for (const d of document.querySelectorAll('details:not(.pdf-hidden)')) { d.open = true; d.classList.add('pdf-open'); }
  // 5. the contents, with a page number slot for each entry
  const toc = document.createElement('nav'); toc.className = 'pdf-toc'; toc.id = 'pdf-contents';
  toc.setAttribute('aria-label', 'Contents');
  let tocHtml = '<h2>Contents</h2><ol>';
  const entry = (id, text, cls) => `<li class="${cls}"><a href="#${id}"><span class="pdf-toc-title">${text}</span>`
    + `<span class="pdf-toc-dots"></span><span class="pdf-toc-page" data-target="${id}">000</span></a></li>`;
  let lastPart = null;
  for (const c of chapters) {
    if (c.part && c.part !== lastPart) { tocHtml += `<li class="pdf-toc-part">${c.part}</li>`; lastPart = c.part; }
    tocHtml += entry(c.id, c.title, c.depth > 0 ? 'pdf-toc-sub' : 'pdf-toc-chapter');
  }
  tocHtml += entry('pdf-solutions', 'Solutions', 'pdf-toc-chapter') + '</ol>';
  toc.innerHTML = tocHtml;
  book.appendChild(toc);
  // 6. the chapters in order, each on a new page, a part's title above its first chapter
  lastPart = null;
  for (const c of chapters) {
    if (c.part && c.part !== lastPart) {
      const p = document.createElement('div'); p.className = 'pdf-part-title'; p.setAttribute('role', 'heading');
      p.setAttribute('aria-level', '1'); p.textContent = c.part; book.appendChild(p); lastPart = c.part;
    }
    if (c.depth === 0) c.section.classList.add('pdf-chapter');
    book.appendChild(c.section);
  }
  book.appendChild(appendix);
  // 7. the latent explorer: its static image
  for (const x of book.querySelectorAll('.vbx')) {
    x.querySelectorAll('.vbx-live').forEach(e => e.remove());
  }
  // 8. MathJax's hidden MathML copy of each formula: a PDF's tags cannot carry MathML, pdftotext would read
  //    every formula twice, and the copies cost about a third of the print's time
  book.querySelectorAll('mjx-assistive-mml').forEach(e => e.remove());
  // 9. the body is the book alone
  document.body.innerHTML = '';
  document.body.appendChild(book);
  // 10. links: within the book they point at an id of this page; the rest are dead on paper
  const unresolved = [], external = new Set();
  for (const a of book.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    const u = new URL(href, location.href);
    if (u.origin !== location.origin) { external.add(u.origin); continue; }
    const id = decodeURIComponent(u.hash.slice(1));
    if (id && document.getElementById(id)) { a.setAttribute('href', '#' + encodeURIComponent(id).replace(/%2F/g, '/')); continue; }
    unresolved.push(href + ' (' + a.textContent.trim().slice(0, 40) + ')');
  }
  const images = Array.from(book.querySelectorAll('img'));
  const untypeset = Array.from(book.querySelectorAll('.math')).filter(e => !e.querySelector('mjx-container')).length;
  return {missing, unresolved, external: Array.from(external),
          chapters: chapters.map(c => ({doc: c.doc, id: c.id, title: c.title, part: c.part, depth: c.depth})),
          images: images.length, images_without_alt: images.filter(i => !(i.getAttribute('alt') || '').trim()).length,
          solutions: nSolutions, code_solutions: nCodeSolutions, quizzes: nQuizzes, untypeset_math: untypeset};
}
"""

FILL_TOC_JS = r"""
(pages) => {
  let missing = [];
  for (const s of document.querySelectorAll('.pdf-toc-page')) {
    const p = pages[s.dataset.target];
    if (p === undefined) missing.push(s.dataset.target); else s.textContent = String(p);
  }
  return missing;
}
"""

FOOTER = ('<div style="font-size:8pt; width:100%; text-align:center; color:#444; font-family:sans-serif;">'
          '<span class="pageNumber"></span></div>')


def toc_parts() -> list[dict]:
    """_toc.yml's parts: their captions and documents, each with its depth (-1 for the root page)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    parts = [{"caption": "", "docs": [[toc["root"], -1]]}]

    def walk(entries: list[dict], depth: int, docs: list) -> None:
        for e in entries:
            docs.append([e["file"], depth])
            walk(e.get("sections", []), depth + 1, docs)

    for part in toc["parts"]:
        docs: list = []
        walk(part["chapters"], 0, docs)
        parts.append({"caption": part.get("caption", ""), "docs": docs})
    return parts


def build_singlehtml() -> float:
    """Jupyter Book's single-page build from the execution cache; fails if any chapter runs again."""
    OUT.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, VAEBOOK_PROGRESS="0", VAEBOOK_STRICT_CHECKS="1")
    jb = Path(sys.executable).with_name("jupyter-book")
    start = time.time()
    proc = subprocess.run([str(jb), "build", str(ROOT), "--builder", "singlehtml", "--warningiserror", "--keep-going"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    LOG.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        sys.exit(f"the single-page build failed (rc {proc.returncode}); see {LOG}")
    executed = re.findall(r"(\S+\.ipynb): Executing notebook", proc.stdout + proc.stderr)
    if executed:
        sys.exit(f"the single-page build executed {len(executed)} chapters again ({executed[:3]}): "
                 "run `make book` first, whose execution cache the PDF is built from")
    return time.time() - start


def dests(pdf: Path) -> dict[str, int]:
    """The PDF's named destinations and their pages (poppler's pdfinfo -dests)."""
    out = subprocess.run(["pdfinfo", "-dests", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+\[.*?\]\s+\"(.*)\"\s*$", line)
        if m:
            pages[m.group(2)] = int(m.group(1))
    return pages


def page_count(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def front_matter() -> str:
    commit = subprocess.run(["git", "describe", "--always", "--dirty= with uncommitted changes"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return (
        "<p>An executable course on autoencoders and variational autoencoders, printed from the same executed "
        "chapters as the HTML book" + (f" (commit {commit})" if commit else "") + ". Every figure and number "
        "here is the output of the chapters' code; the hidden checks that assert the numbers in the text "
        "passed when the book was built.</p>"
        "<p><strong>Solutions.</strong> The HTML book folds each solution under its exercise. Here they are "
        "collected in the appendix <a href=\"#pdf-solutions\">Solutions</a> at the end: each exercise links "
        "to its solution, and each solution back to its exercise. This holds the written solutions, the "
        "solution code of the coding exercises and the quizzes' answers.</p>"
        "<p><strong>What paper cannot do.</strong> The quizzes print their questions and options; their answers "
        "are in the appendix too. The latent-space explorer prints its static picture. Code that the "
        "HTML book folds away (plotting helpers) is left out; Colab and the HTML book have it.</p>"
        "<p><strong>Accessibility.</strong> This PDF is tagged: headings, lists, tables and figures (with their "
        "alt text) are marked, and the bookmarks follow the chapters. Mathematics is text set in MathJax's "
        "fonts, not pictures, but a screen reader reads it as a string of symbols; the HTML book reads it "
        "properly (MathJax's speech and MathML).</p>"
    )


def print_pdf(report: dict) -> dict:
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(BUILD))
    timings = {}
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as srv, sync_playwright() as p:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400}, color_scheme="light")
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            t = time.time()
            # singlehtml writes the root page at book/intro.html but links it as if it sat beside _static/
            shutil.copy(SINGLE / "book" / "intro.html", SINGLE / "vaebook.html")
            page.goto(f"http://127.0.0.1:{srv.server_address[1]}/singlehtml/vaebook.html", wait_until="load",
                      timeout=300_000)
            page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=120_000)
            page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise.then(() => true) : true")
            timings["load_and_typeset_s"] = round(time.time() - t, 1)
            page.emulate_media(media="print")
            t = time.time()
            title = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["title"]
            report.update(page.evaluate(PREPARE_JS, {"parts": toc_parts(), "css": PRINT_CSS, "title": title,
                                                      "front": front_matter()}))
            # the theme's search asks for a search index, which a single-page build does not write
            report["failed_requests"] = [u for u in failed if not u.endswith("/searchindex.js")]
            timings["prepare_s"] = round(time.time() - t, 1)
            options = dict(format="A4", print_background=True, tagged=True, outline=True,
                           display_header_footer=True, header_template="<span></span>", footer_template=FOOTER,
                           margin={"top": "16mm", "bottom": "18mm", "left": "15mm", "right": "15mm"})
            draft = OUT / "draft.pdf"
            t = time.time()
            page.pdf(path=str(draft), **options)
            timings["first_print_s"] = round(time.time() - t, 1)
            targets = [c["id"] for c in report["chapters"]] + ["pdf-solutions"]
            first = dests(draft)
            missing = page.evaluate(FILL_TOC_JS, first)
            if missing:
                sys.exit(f"the first print has no destination for {missing[:5]}: cannot number the contents")
            t = time.time()
            page.pdf(path=str(PDF), **options)
            timings["second_print_s"] = round(time.time() - t, 1)
            second = dests(PDF)
            moved = {i: (first.get(i), second.get(i)) for i in targets if first.get(i) != second.get(i)}
            if moved:
                sys.exit(f"the contents' page numbers moved between the two prints: {moved}")
            report["pages"] = page_count(PDF)
            for c in report["chapters"]:
                c["page"] = second[c["id"]]
            report["solutions_page"] = second["pdf-solutions"]
            draft.unlink()
        finally:
            browser.close()
    report["timings"] = timings
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sphinx", action="store_true", help="reprint the existing _build/singlehtml")
    parser.add_argument("--skip-if-missing", action="store_true",
                        help="outside CI, say so and stop without failing when Chromium or poppler-utils is missing "
                             "(make test, like the browser tests)")
    args = parser.parse_args()
    missing = []
    if not shutil.which("pdfinfo"):
        missing.append("pdfinfo is missing: install poppler-utils (apt-get install poppler-utils)")
    if not Path(CHROMIUM).exists():
        missing.append(f"no Chromium at {CHROMIUM}: install Debian's chromium package (apt-get install chromium)")
    if missing:
        if args.skip_if_missing and not os.environ.get("CI"):
            print("make pdf skipped: " + "; ".join(missing))
            return
        sys.exit("; ".join(missing))
    report: dict = {}
    start = time.time()
    if not args.no_sphinx:
        report["singlehtml_s"] = round(build_singlehtml(), 1)
    print_pdf(report)
    report["total_s"] = round(time.time() - start, 1)
    REPORT.write_text(json.dumps(report, indent=1), encoding="utf-8")
    problems = report["missing"] + report["unresolved"] + report["failed_requests"]
    size = PDF.stat().st_size / 1e6
    print(f"Built {PDF.relative_to(ROOT)}: {report['pages']} pages, {size:.1f} MB, {report['images']} figures, "
          f"{report['solutions']} written and {report['code_solutions']} code solutions in the appendix, "
          f"in {report['total_s']} s ({report['timings']})")
    if problems:
        sys.exit(f"{len(problems)} problems (chapters missing, links unresolved, requests failed): {problems[:8]}")


if __name__ == "__main__":
    main()
