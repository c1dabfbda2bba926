"""reveal.js slides of every chapter, built from the executed chapters of the HTML book (``make slides``).

The chapter's author chooses what goes on a slide with cell tags in ``book/NN_*.ipynb``:

- ``slide`` on a **code cell**: its output becomes a slide, titled by the section the cell is in. A
  figure is shown with its caption and its alt text (the cell's ``mystnb`` metadata, as in the book);
  a quiz (``vb.widgets.quiz``) becomes a question to the room, its options listed and the answer, with
  why, on the next fragment (one more press of the arrow key); printed text (the headline numbers) is
  shown as it was printed.
- ``slide`` on a **markdown cell**: the whole cell is the slide (math, lists, emphasis), titled by the
  cell's own heading or else by its section. Meant for short cells: a key statement, a list.
- ``slide:eq-LABEL`` on a **markdown cell** (one tag per equation): one slide holding the labelled
  display equations named, in the cell's order, each with the sentence that leads into it, and the
  equation number the book gives it.

Each deck opens with a title slide and keeps the chapter's order of cells; every chapter of ``_toc.yml``
with a tag gets a deck. Nothing runs: the outputs come from ``_build/jupyter_execute/book/`` (written by
``make book``; where a copy there is missing or does not match the chapter, from ``make book``'s execution
cache, ``_build/.jupyter_cache``, for exactly the chapter's code), the tags, captions and alt text
from the chapters themselves, whose cells must match the executed ones (else the build stops and asks
for ``make book``), and the equation and figure numbers from the built HTML pages, so that "eq. (6.3)"
means the same on a slide as in the book. reveal.js (npm, pinned in ``package-lock.json``) and MathJax
(the book's own copy, ``_build/html/_static/mathjax``) are copied beside the slides: nothing loads
from the network.

    python -m vaebook.authoring.slides            # writes _build/slides/index.html and one deck per chapter
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

SLIDE_TAG = "slide"
EQ_TAG_PREFIX = "slide:"
CHAPTER = re.compile(r"^\d\d_[\w-]+\.ipynb$")
REVEAL_FILES = ("dist/reset.css", "dist/reveal.css", "dist/theme/white.css", "dist/reveal.js", "dist/plugin/notes.js", "LICENSE")
ROLE = re.compile(r"\{([a-z]+)(?::[a-z]+)?\}`([^`]*)`")
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$([ \t]*\((eq-[\w-]+)\))?", re.S)  # a display equation and its label, if any


class SlideError(ValueError):
    """A chapter's slide tags cannot be built: the message names the chapter, the cell and what is wrong."""


@dataclass
class Deck:
    stem: str
    number: str  # "1", "2.1": the book's section number of the chapter
    title: str  # plain text
    title_html: str
    slides: list[str] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)


# --------------------------------------------------------------------------- markdown, MyST and math
def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin, allow_labels=True, allow_space=True,
                                                    allow_digits=True, double_inline=True)

    def inline(self, tokens, idx, options, env):
        return "\\(" + html.escape(tokens[idx].content) + "\\)"

    def block(self, tokens, idx, options, env):
        tag = env.get("numbers", {}).get(tokens[idx].info, "")
        tag = f"\\tag{{{tag}}}" if tag else ""
        return '<div class="math">\\[' + html.escape(tokens[idx].content.strip()) + tag + "\\]</div>\n"

    md.add_render_rule("math_inline", inline)
    md.add_render_rule("math_inline_double", block)
    md.add_render_rule("math_block", block)
    md.add_render_rule("math_block_label", block)
    return md


_MD = None


def render(text: str, refs: dict[str, str], where: str, inline: bool = False) -> str:
    """Markdown with MyST's roles and math to HTML for a slide; math is left for MathJax (``\\(...\\)``)."""
    global _MD
    if _MD is None:
        _MD = _markdown()

    def role(m: re.Match) -> str:
        name, target = m.group(1), m.group(2)
        label = re.sub(r"^.*<(.+)>$", r"\1", target).strip()  # {numref}`Figure %s <fig-x>` -> fig-x
        if name in ("eq", "numref") and label not in refs:
            raise SlideError(f"{where}: {{{name}}}`{label}` is not a label of the book's chapters")
        if name == "eq":
            return f"({refs[label]})"
        if name in ("numref", "ref"):
            return refs.get(label, label)
        if name == "math":
            return f"${target}$"
        if name == "doc":
            return refs.get("doc:" + label, label)
        if name in ("cite", "citet", "citep"):
            return "(" + ", ".join(refs.get("cite:" + k.strip(), k.strip()) for k in target.split(",")) + ")"
        return re.sub(r"\s*<.+>$", "", target)  # {term}, {abbr}, ...: the text

    text = ROLE.sub(role, text)
    if re.search(r"^(:::|```\{)", text, flags=re.M):
        raise SlideError(f"{where}: a MyST directive (::: or ```{{...}}) cannot go on a slide; tag a plainer cell")
    env = {"numbers": refs}
    out = _MD.renderInline(text, env) if inline else _MD.render(text, env)
    return out.strip()


def book_numbers(page: Path) -> dict[str, str]:
    """The numbers the built HTML page gives its labelled equations and figures: {label: "1.2" | "Fig. 1.2"}."""
    if not page.is_file():
        raise SlideError(f"{page} is missing: run `make book` before `make slides`")
    text = page.read_text(encoding="utf-8")
    refs = {m.group(1): m.group(2) for m in re.finditer(
        r'id="equation-([\w-]+)">\s*<span class="eqno">\(([\d.]+)\)', text)}
    for m in re.finditer(r'<figure[^>]*\bid="([\w-]+)".*?<span class="caption-number">([^<]+?)\s*</span>', text, flags=re.S):
        refs[m.group(1)] = m.group(2)
    return refs


def toc_chapters(root: Path) -> list[Path]:
    """The chapter notebooks (``book/NN_*.ipynb``) that ``_toc.yml`` puts in the book, in name order."""
    import yaml

    def files(node) -> list[str]:
        if isinstance(node, dict):
            return ([node["file"]] if isinstance(node.get("file"), str) else []) + [f for v in node.values() for f in files(v)]
        return [f for v in node for f in files(v)] if isinstance(node, list) else []

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    paths = {root / f"{f}.ipynb" for f in files(toc)}
    return sorted(p for p in paths if CHAPTER.match(p.name) and p.is_file())


def citations(bib: Path) -> dict[str, str]:
    """{"cite:key": "Kingma and Welling 2014"} for every entry of the book's references.bib."""
    refs = {}
    for m in re.finditer(r"@\w+\{([^,\s]+),(.*?)\n\}", bib.read_text(encoding="utf-8"), flags=re.S):
        author = re.search(r"\bauthor\s*=\s*\{(.*?)\},?\s*\n", m.group(2), flags=re.S)
        year = re.search(r"\byear\s*=\s*\{?(\d{4})", m.group(2))
        if not (author and year):
            continue
        names = [a.split(",")[0].strip().strip("{}") if "," in a else a.split()[-1].strip("{}")
                 for a in re.split(r"\s+and\s+", author.group(1).replace("\n", " "))]
        who = names[0] if len(names) == 1 else (" and ".join(names) if len(names) == 2 else f"{names[0]} et al.")
        refs["cite:" + m.group(1)] = f"{who} {year.group(1)}"
    return refs


def chapter_number(page: Path) -> str:
    """The section number the book gives a chapter ("1", "2.1"), from its built page's first heading."""
    text = page.read_text(encoding="utf-8")
    num = re.search(r'<h1><span class="section-number">([\d.]+?)\.?\s*</span>', text)
    return num.group(1) if num else ""


# --------------------------------------------------------------------------- cells to slides
def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _printed(outputs: list[dict]) -> str:
    """What the cell printed (standard output); its last value's text only where it printed nothing."""
    out = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
    if not out.strip():
        out = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in outputs if o.get("output_type") == "execute_result")
    return out.strip("\n")


def _quiz(html_text: str, where: str) -> str:
    """A question to the room from the HTML of vb.widgets.quiz: options listed, the answer a fragment."""
    q = re.search(r'<p class="vbq-q">(.*?)</p>', html_text, flags=re.S)
    answer = re.search(r'class="vbq" id="[^"]*" data-answer="(\d+)"', html_text)
    options = re.findall(r'<button type="button" class="vbq-option"[^>]*>(.*?)</button>', html_text, flags=re.S)
    notes = re.search(r'<script type="application/json" class="vbq-notes">(.*?)</script>', html_text, flags=re.S)
    if not (q and answer and options and notes):
        raise SlideError(f"{where}: the quiz's HTML has no question, options, answer or explanations")
    right = int(answer.group(1))
    why = json.loads(notes.group(1).replace("<\\/", "</"))[right]
    letters = "ABCDEFGH"
    items = "".join(f"<li><span class=\"letter\">({letters[i]})</span> {o}</li>" for i, o in enumerate(options))
    return (f'<p class="kicker">Poll</p><p class="question">{q.group(1)}</p><ol class="options">{items}</ol>'
            f'<div class="fragment answer"><p><strong>Answer: ({letters[right]}) {options[right]}.</strong> '
            f"{html.escape(why)}</p></div>")


def _code_slide(cell: dict, executed: dict, deck: Deck, refs: dict[str, str], where: str) -> str:
    """The outputs of a code cell: figures with caption and alt text, a quiz, or printed text."""
    parts = []
    meta = cell.get("metadata", {}).get("mystnb", {})
    images = [o for o in executed.get("outputs", []) if "image/png" in o.get("data", {})]
    for o in executed.get("outputs", []):
        data = o.get("data", {})
        if "text/html" in data and 'class="vbq"' in "".join(data["text/html"]):
            parts.append(_quiz("".join(data["text/html"]), where))
    for k, o in enumerate(images):
        alt = meta.get("image", {}).get("alt", "").strip()
        if not alt:
            raise SlideError(f"{where}: a figure on a slide needs alt text (the cell's metadata mystnb.image.alt), as in the book")
        name = f"images/{deck.stem}-{len(deck.images) + 1}.png"
        deck.images[name] = base64.b64decode(o["data"]["image/png"])
        fig = meta.get("figure", {})
        caption = ""
        if fig.get("caption") and k == len(images) - 1:
            number = refs.get(fig.get("name", ""), "")
            number = f'<span class="caption-number">{html.escape(number)}</span> ' if number else ""
            caption = f"<figcaption>{number}{render(fig['caption'], refs, where, inline=True)}</figcaption>"
        parts.append(f'<figure><img src="{name}" alt="{html.escape(alt)}">{caption}</figure>')
    if not parts:
        text = _printed(executed.get("outputs", []))
        if text.strip():
            parts.append(f'<pre class="printed">{html.escape(text)}</pre>')
    if not parts:
        raise SlideError(f"{where}: tagged {SLIDE_TAG!r} but shows nothing (no figure, quiz or printed text in its outputs)")
    return "\n".join(parts)


def _lead_in(before: str) -> str:
    """The sentence that leads into a display equation: the last sentence of the paragraph just above it."""
    para = re.split(r"\n\s*\n", before.rstrip())[-1].strip()
    if not para or para.startswith(("#", "$$", "-", "*", ":::", "```")) or para.endswith("$$"):
        return ""
    masked = re.sub(r"\$[^$]*\$", lambda m: "x" * len(m.group(0)), para)  # no sentence ends inside math
    cuts = [m.end() for m in re.finditer(r"[.!?:]\s+(?=[A-Z(])", masked)]
    return para[cuts[-1]:] if cuts else para


def _equation_slide(src: str, labels: list[str], refs: dict[str, str], where: str) -> tuple[str, str | None]:
    """The labelled equations, each after its lead-in sentence, and the heading above the first (if any)."""
    found = {m.group(3): m for m in DISPLAY_MATH.finditer(src) if m.group(3)}
    missing = [label for label in labels if label not in found]
    if missing:
        raise SlideError(f"{where}: tagged for equations {missing}, which this cell does not label "
                         f"(it labels {sorted(found)})")
    labels = sorted(labels, key=lambda lab: found[lab].start())
    above = [h[1] for h in HEADING.findall(src[: found[labels[0]].start()]) if len(h[0]) >= 2]
    parts = []
    for label in labels:
        m = found[label]
        lead = _lead_in(src[: m.start()])
        if lead:
            parts.append(f"<p>{render(lead, refs, where, inline=True)}</p>")
        parts.append(render(m.group(0), refs, where))
    return "\n".join(parts), (above[-1] if above else None)


HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)


def _unusable(stem: str, source: dict, executed: dict) -> str | None:
    """Why an executed copy cannot stand for the chapter (its cells differ, or it has no outputs), or None."""
    cells, run = source["cells"], executed["cells"]
    if [(_source(c), c["cell_type"]) for c in cells] != [(_source(c), c["cell_type"]) for c in run]:
        return f"the executed copy of book/{stem}.ipynb is older than the chapter (their cells differ)"
    if any(c["cell_type"] == "code" for c in run) and not any(c.get("outputs") for c in run):
        return f"the executed copy of book/{stem}.ipynb has no outputs (written by a build that did not execute it?)"
    return None


def executed_chapter(path: Path, source: dict, executed_dir: Path, cache_dir: Path) -> dict:
    """The chapter as ``make book`` executed it: its copy in ``executed_dir`` (``_build/jupyter_execute/book``)
    or, where that copy is missing or unusable (another build can overwrite that folder), the outputs of
    the book's execution cache for exactly this code, which are what the HTML pages show. Nothing runs."""
    copy = executed_dir / path.name
    why = f"{copy} is missing"
    if copy.is_file():
        executed = json.loads(copy.read_text(encoding="utf-8"))
        why = _unusable(path.stem, source, executed) or ""
        if not why:
            return executed
    if (cache_dir / "global.db").is_file():
        import nbformat
        from jupyter_cache import get_cache

        try:
            _, merged = get_cache(cache_dir).merge_match_into_notebook(nbformat.reads(json.dumps(source), as_version=4))
        except KeyError:
            why += f", and the execution cache {cache_dir} has no run of its current code"
        else:
            executed = json.loads(nbformat.writes(merged))
            if not _unusable(path.stem, source, executed):
                return executed
    raise SlideError(f"{why}: run `make book` before `make slides`")


def build_deck(stem: str, source: dict, executed: dict, refs: dict[str, str], number: str) -> Deck:
    """The slides of one chapter: a title slide, then one slide per tagged cell, in the chapter's order."""
    cells, run = source["cells"], executed["cells"]
    why = _unusable(stem, source, executed)
    if why:
        raise SlideError(f"{why}: run `make book` before `make slides`")
    titles = [t for c in cells if c["cell_type"] == "markdown" for lv, t in HEADING.findall(_source(c)) if lv == "#"]
    if not titles:
        raise SlideError(f"book/{stem}.ipynb has no title (a '# ' heading)")
    title = titles[0]
    deck = Deck(stem, number, re.sub(r"\$([^$]*)\$", r"\1", title), render(title, refs, stem, inline=True))
    section = title
    for i, (cell, out) in enumerate(zip(cells, run, strict=True)):
        src = _source(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        heading = None
        if cell["cell_type"] == "markdown":
            heads = [h for h in HEADING.findall(src) if len(h[0]) >= 2]
            heading = heads[0][1] if heads and src.lstrip().startswith("#") else None
        where = f"book/{stem}.ipynb, cell {i}"
        eq_labels = [t[len(EQ_TAG_PREFIX):] for t in tags if t.startswith(EQ_TAG_PREFIX)]
        if SLIDE_TAG in tags or eq_labels:
            if cell["cell_type"] == "code":
                if eq_labels:
                    raise SlideError(f"{where}: equation tags {eq_labels} belong on markdown cells")
                body, name = _code_slide(cell, out, deck, refs, where), section
            elif eq_labels:
                body, above = _equation_slide(src, eq_labels, refs, where)
                name = above or section
            else:
                own = heading
                body = render(HEADING.sub("", src, count=1) if own else src, refs, where)
                name = own or section
            deck.slides.append(f'<h2>{render(name, refs, where, inline=True)}</h2>\n{body}')
        if cell["cell_type"] == "markdown":
            for level, text in HEADING.findall(src):
                if len(level) >= 2:
                    section = text
    return deck


# --------------------------------------------------------------------------- pages
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<link rel="stylesheet" href="_static/reveal/dist/reset.css">
<link rel="stylesheet" href="_static/reveal/dist/reveal.css">
<link rel="stylesheet" href="_static/reveal/dist/theme/white.css">
<link rel="stylesheet" href="_static/slides.css">
<link rel="icon" href="_static/favicon.png">
<script>window.MathJax = {{tex: {{inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]], tags: "none"}},
  chtml: {{displayOverflow: "linebreak"}}}};</script>
<script defer src="_static/mathjax/tex-chtml.js"></script>
</head>
<body>
<div class="reveal"><div class="slides">
{slides}
</div></div>
<script src="_static/reveal/dist/reveal.js"></script>
<script src="_static/reveal/dist/plugin/notes.js"></script>
<script>
Reveal.initialize({{plugins: [RevealNotes], hash: true, width: 1280, height: 720, margin: 0.03, center: false, slideNumber: "c/t",
  transition: "none", pdfMaxPagesPerSlide: 1}});
</script>
</body>
</html>
"""

CSS = """/* vaebook slides: reveal.js's white theme, with the book's figures and math sized for 1280 x 720. */
.reveal { font-size: 30px; }
.reveal .slides { text-align: left; }
.reveal .slides section { height: 100%; }
.reveal h1, .reveal h2 { text-transform: none; }
.reveal h2 { font-size: 1.45em; margin-bottom: .5em; }
.reveal p, .reveal li { line-height: 1.35; }
.reveal ul, .reveal ol { display: block; margin-left: 1.2em; }
.reveal figure { margin: 0; text-align: center; }
.reveal figure img { width: 100%; height: 440px; object-fit: contain; margin: 0 auto; display: block; }
.reveal figcaption { font-size: .62em; line-height: 1.35; margin-top: .5em; text-align: left; }
.reveal .caption-number { font-weight: bold; }
.reveal div.math { margin: .4em 0; }
.reveal pre.printed { font-size: .6em; width: fit-content; max-width: 100%; box-sizing: border-box; box-shadow: none;
  background: #f3f4f6; color: #1b1f24; padding: .6em .8em; white-space: pre-wrap; }
.reveal .kicker { color: #4a5563; font-size: .75em; text-transform: uppercase; letter-spacing: .08em; margin: 0; }
.reveal .question { font-size: 1.05em; font-weight: bold; }
.reveal ol.options { list-style: none; margin-left: 0; }
.reveal ol.options .letter { font-weight: bold; margin-right: .3em; }
.reveal .answer { font-size: .68em; border-left: 4px solid #1560d4; padding-left: .8em; margin-top: .8em; }
.reveal .title-slide h1 { font-size: 2.1em; margin-top: 2.5em; }
.reveal .title-slide p { color: #4a5563; }
/* links and the slide number meet WCAG AA's 4.5:1 on white (reveal's blue is 4.4:1) */
.reveal a { color: #1560d4; }
.reveal .slide-number { color: #fff; background-color: #3b4450; }
.reveal .controls { color: #1560d4; }
"""

INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Slides: Autoencoders and Variational Autoencoders</title>
<link rel="icon" href="_static/favicon.png">
<style>body {{ font-family: system-ui, sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #1b1f24; }}
a {{ color: #1560d4; }} td, th {{ padding: .2em .8em; text-align: left; }}</style>
</head>
<body>
<main>
<h1>Slides: Autoencoders and Variational Autoencoders</h1>
<p>One reveal.js deck per chapter, built from the same executed chapters as the HTML book. Press <kbd>F</kbd> for
full screen, <kbd>S</kbd> for the speaker view, <kbd>Esc</kbd> for an overview; add <code>?print-pdf</code> to a
deck's address and print it from Chromium to get a PDF (see the instructors' page).</p>
<table>
<thead><tr><th scope="col">chapter</th><th scope="col">slides</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</main>
</body>
</html>
"""


def deck_html(deck: Deck) -> str:
    label = f"Chapter {deck.number}" if deck.number else "Chapter"
    first = (f'<section class="title-slide"><h1>{deck.title_html}</h1><p>{label} of <em>Autoencoders and '
             f'Variational Autoencoders</em></p><p><a href="../html/book/{deck.stem}.html">The chapter in the book</a></p></section>')
    slides = [first] + [f"<section>\n{s}\n</section>" for s in deck.slides]
    return PAGE.format(title=html.escape(f"{label}: {deck.title} (slides)"), slides="\n".join(slides))


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def build(root: Path, out: Path, only: list[str] | None = None, executed_dir: Path | None = None) -> list[Deck]:
    """Every chapter's deck (or those named in ``only``) into ``out`` (``_build/slides``), with reveal.js and MathJax beside them."""
    executed_dir = executed_dir or root / "_build" / "jupyter_execute" / "book"
    html_dir = root / "_build" / "html"
    reveal = root / "node_modules" / "reveal.js"
    if not (reveal / "dist" / "reveal.js").is_file():
        raise SlideError(f"reveal.js is missing at {reveal}: run `npm ci` (package-lock.json pins it)")
    mathjax = html_dir / "_static" / "mathjax"
    if not (mathjax / "tex-chtml.js").is_file():
        raise SlideError(f"{mathjax} is missing: run `make book` before `make slides`")
    shared = citations(root / "book" / "references.bib")
    chapters = toc_chapters(root)
    for path in chapters:  # {doc}`05_dlvm` -> "chapter 5"; another chapter's equations and figures by number
        page = html_dir / "book" / f"{path.stem}.html"
        if page.is_file():
            shared.update(book_numbers(page))
            if chapter_number(page):
                shared["doc:" + path.stem] = f"chapter {chapter_number(page)}"
    decks = []
    for path in chapters:
        if only and path.stem not in only:
            continue
        source = json.loads(path.read_text(encoding="utf-8"))
        if not any(t == SLIDE_TAG or t.startswith(EQ_TAG_PREFIX) for c in source["cells"] for t in c.get("metadata", {}).get("tags", [])):
            continue
        page = html_dir / "book" / f"{path.stem}.html"
        refs = {**shared, **book_numbers(page)}
        executed = executed_chapter(path, source, executed_dir, root / "_build" / ".jupyter_cache")
        decks.append(build_deck(path.stem, source, executed, refs, chapter_number(page)))
    if not decks:
        raise SlideError(f"no chapter in {root / 'book'} has a cell tagged {SLIDE_TAG!r}")
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    for name in REVEAL_FILES:
        _copy(reveal / name, out / "_static" / "reveal" / name)
    _copy(mathjax, out / "_static" / "mathjax")
    (out / "_static" / "slides.css").write_text(CSS, encoding="utf-8")
    _copy(root / "book" / "_static" / "favicon.png", out / "_static" / "favicon.png")
    for deck in decks:
        for name, data in deck.images.items():
            (out / name).write_bytes(data)
        (out / f"{deck.stem}.html").write_text(deck_html(deck), encoding="utf-8")
    rows = "\n".join(f'<tr><td><a href="{d.stem}.html">{html.escape(d.number)} {d.title_html}</a></td>'
                     f"<td>{len(d.slides) + 1}</td></tr>" for d in decks)
    (out / "index.html").write_text(INDEX.format(rows=rows), encoding="utf-8")
    return decks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vaebook.authoring.slides", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    ap.add_argument("--out", type=Path, default=None, help="default: ROOT/_build/slides")
    ap.add_argument("--only", nargs="+", metavar="CHAPTER", help="build only these decks (e.g. 05_dlvm)")
    ap.add_argument("--executed", type=Path, default=None, help="the executed chapters (default: ROOT/_build/jupyter_execute/book)")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    out = args.out or root / "_build" / "slides"
    try:
        decks = build(root, out, args.only, args.executed)
    except SlideError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for d in decks:
        print(f"{d.stem}: {len(d.slides) + 1} slides")
    print(f"Built {len(decks)} decks in {out} (open {out / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
