"""Keep one meaning per symbol: the notation page, the chapters' symbol boxes, and forbidden uses.

``book/notation.md`` lists every symbol of the book with its one meaning and the chapter where it
first appears; each chapter opens with a box of the symbols it introduces. This module checks that
the two agree, and that no chapter uses a symbol in a meaning the page gives to another one: a short
list of forbidden uses, each a pattern that writes a symbol in a meaning it must not have (the
latent dimension $k$ counting samples, $D$ counting pixels, ...)::

    python -m vaebook.authoring.notation check      # exit 1 and list the problems, if any

The patterns are deliberately simple (regular expressions on the chapters' markdown, its math, or its
code); they catch the old habits the page replaced, not every possible misuse.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Rule",
    "RULES",
    "math_spans",
    "check_markdown",
    "check_code",
    "check_chapters",
    "check_pages",
    "read_symbol_table",
    "symbol_boxes",
    "check_page",
]

BOX_TITLE = "Symbols in this chapter"
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+?\$", re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
# typefaces that make a letter another symbol (\mathbb R, \mathcal N, bold), and words (\mathrm{KL})
_PLAIN = re.compile(r"\\(?:mathbb|mathcal|mathbf|boldsymbol)\s*\{?\\?[A-Za-z0-9]+\}?|\\(?:text|mathrm|operatorname)\s*\{[^{}]*\}")


def _letter(s: str) -> str:
    """A regex for the plain letter or command ``s`` standing alone (not bold, not inside a longer name)."""
    return rf"(?<![\\A-Za-z])(?<!\\mathbf )(?<!\\boldsymbol ){s}(?![A-Za-z])"


@dataclass(frozen=True)
class Rule:
    """A forbidden use: ``pattern`` writes ``symbol`` in a meaning the notation page gives to another.

    ``where``: ``"math"`` (inside $...$ and $$...$$), ``"plain-math"`` (the same, with \\mathbb,
    \\mathcal, \\text, \\mathrm and \\operatorname removed first), ``"prose"`` (markdown with inline
    code removed) or ``"code"`` (code cells). ``chapters``: the chapter numbers it applies to (None:
    all); ``allowed``: the chapters where the symbol has this meaning and the rule does not apply.
    """

    symbol: str  # the symbol it protects, as the notation page writes it
    pattern: str
    message: str
    where: str = "plain-math"
    chapters: frozenset[int] | None = None
    allowed: frozenset[int] = frozenset()

    def applies(self, chapter: int) -> bool:
        return (self.chapters is None or chapter in self.chapters) and chapter not in self.allowed


def _chapters(*numbers: int) -> frozenset[int]:
    return frozenset(numbers)


RULES: tuple[Rule, ...] = (
    # k is the latent dimension: it neither counts samples nor indexes a mixture
    Rule("$k$", r"\\hat\s*p_k\b|\\mathcal\s*L_k\b|\\frac\s*1\s*k\b|\\sum_\{?[is]=1\}?\^\{?k\b", "k counts samples here; the number of samples is K", "math"),
    Rule("$k$", r"\$k(\s*=\s*[\d{},.]+)?\$\)?\s+(importance |prior |Monte Carlo )?(samples|codes drawn|weights|log-weights)|sampling (with )?\(?\$k", "k counts samples here; the number of samples is K", "prose"),
    Rule("$k$", r"\\pi_k\b|\\mathbf\s*[msuv]_k\b|\br_k\s*\(|\\sum_\{k=1\}\^\{?K", "k indexes a mixture here; the components are j = 1, ..., J", "math"),
    Rule("$K$", r"\$K(\s*=\s*\d+)?\$\s+(components|Gaussians|pseudo-images|learned pseudo-images)|mixture of \$K\$", "K counts a mixture's components here; K counts samples, J components", "prose"),
    # D is the distortion: not a number of pixels, an operator, or the diffusion module
    Rule("$D$", r"\$D\$ pixels", "D counts pixels here; the number of pixels is d", "prose"),
    Rule("$D$", r"\\frac\s*D\s*\{?2|\\frac\s*D\s*\{|/D\b|" + _letter("D_r"), "D is not the distortion here; pixels are d, block averaging Down_r", "math"),
    Rule("$D$", r"`D\.\w", "D is an alias of a module here; D is the distortion", "prose-raw"),
    Rule("$D$", r"^\s*D\s*=", "D names a module here; D is the distortion", "code"),
    # lambda is the free-bits floor, S the number of steps of a shortened sampling chain, R the rate
    Rule("$\\lambda$", _letter(r"\\lambda"), "lambda has another meaning here; it is the free-bits floor (chapter 11)", "math", allowed=_chapters(11)),
    Rule("$S$", _letter("S"), "S has another meaning here; it is the number of steps of a shortened sampling chain (chapter 13)", allowed=_chapters(13)),
    Rule("$R$", _letter("R"), "R has another meaning here; it is the rate (chapter 12)", allowed=_chapters(12)),
    # n is the size of a data set, H (calligraphic) entropy, c the decoder variance, t a diffusion step
    Rule("$n$", _letter("N"), "N counts images here; the number of images of a data set is n"),
    Rule("$\\mathcal H$", _letter("H"), "H is entropy here; entropy is written with a calligraphic H"),
    Rule("$c$", _letter("c"), "c has another meaning here; it is the Gaussian decoder's variance (chapter 5)", chapters=_chapters(1, 2, 3, 4)),
    Rule("$t$", r"\^\{\(t\+?1?\)\}|\\mathbf\s*z_t\b", "t counts EM iterations or a path's position here; t is a diffusion step", "math"),
    # the networks: bold d and e; the logits; the likelihood's mean
    Rule("$\\mathbf d$", _letter("[de]") + r"'?\(", "a plain d or e names a network here; the networks are bold, d is the number of pixels", "math"),
    Rule("$\\boldsymbol\\ell$", r"\\ell\s*\(\s*\\theta|\\underline\s*\\ell", "l is a log-likelihood here; it is the decoder's logits", "math"),
    Rule("$\\mathbf d_\\theta$", r"\\mathbf\s*x(_i)?\s*-\s*\\mathbf\s*d_\\theta", "the library's Gaussian decoder has the mean sigma(d_theta(z))", "math", chapters=_chapters(9, 11, 12)),
    Rule("$\\mathbf d_\\theta$", r"\\mathcal\s*N\s*\\?\(?\s*\\mathbf\s*d_\\theta", "the library's Gaussian decoder is N(sigma(d_theta(z)), cI)", "math", chapters=_chapters(11, 12)),
    # one letter per quantity elsewhere
    Rule("$C(\\rho)$", r"C\s*\((?!\s*\\rho|\s*\\tfrac)", "C names another quantity here; it is the continuous Bernoulli's constant"),
    Rule("$\\boldsymbol\\rho$", r"Bernoulli\}?\s*\(\s*(p_j|\\pi)", "a Bernoulli parameter is written rho", "math"),
    Rule("$\\pi_j$", r"=\s*w_j\b", "a mixture's weights are pi_j; w is an importance weight", "math"),
    Rule("$\\mathcal L_K$", r"\\mathcal\s*L_\{?(\\lambda|\\beta|0\.)", "a subscripted calligraphic L is the importance-weighted bound L_K", "math"),
    Rule("$L_{\\mathrm{DSM}}$", r"J_\{?\\mathrm\{DSM", "J counts a mixture's components; the score-matching loss is L_DSM", "math"),
    Rule("$\\sigma$", r"\\sigma_\{\\text\{noise\}\}", "the noise level is sigma", "math"),
    Rule("$\\mathbf U$", r"\\mathbf\s*U_k|" + _letter("U_r"), "PCA's directions are U (d x k), bicubic upsampling Up_r", "math"),
    Rule("$\\boldsymbol\\mu$", r"(?<!\\hat)(?<!\\hat )(?<!\\tilde)(?<!\\tilde )\\mu(?![A-Za-z])", "mu is the encoder's mean (chapter 5); the data's mean is x-bar, the codes' mean-hat", "math", chapters=_chapters(1, 2, 3, 4)),
    Rule("$p(\\mathbf z)$", r"fraction \$p\$", "p is a density; the fraction of pixels is the argument `p`", "prose"),
)


def math_spans(text: str) -> list[str]:
    """The math of a markdown text: every $...$ and $$...$$, in order."""
    return _MATH.findall(text)


def _views(text: str) -> dict[str, str]:
    math = math_spans(text)
    return {
        "math": "\n".join(math),
        "plain-math": "\n".join(_PLAIN.sub(" ", m) for m in math),
        "prose": _CODE_SPAN.sub(" ", text),
        "prose-raw": text,
    }


def _box_free(text: str) -> str:
    """The markdown without the symbol boxes (a box names symbols; it does not use them)."""
    return re.sub(r":::\{admonition\} " + BOX_TITLE + r".*?\n:::", "", text, flags=re.S)


def check_markdown(text: str, chapter: int, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """The forbidden uses in a chapter's markdown, one message each: ``'$k$: ... in "..."'``."""
    views = _views(_box_free(text))
    problems = []
    for rule in rules:
        if rule.where == "code" or not rule.applies(chapter):
            continue
        for m in re.finditer(rule.pattern, views[rule.where], flags=re.M):
            problems.append(f"{rule.symbol}: {rule.message}, in {views[rule.where][max(0, m.start() - 30):m.end() + 30]!r}")
    return problems


def check_code(source: str, chapter: int, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """The forbidden uses in a chapter's code."""
    return [f"{rule.symbol}: {rule.message}, in {m.group(0)!r}"
            for rule in rules if rule.where == "code" and rule.applies(chapter)
            for m in re.finditer(rule.pattern, source, flags=re.M)]


def _cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for c in cells:
        if isinstance(c["source"], list):
            c["source"] = "".join(c["source"])
    return cells


def chapter_number(path: Path) -> int:
    return int(path.stem[:2])


def check_chapters(root: Path, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """Every forbidden use in the numbered chapters under ``root/book``."""
    problems = []
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        cells = _cells(path)
        chapter = chapter_number(path)
        markdown = "\n\n".join(c["source"] for c in cells if c["cell_type"] == "markdown")
        code = "\n\n".join(c["source"] for c in cells if c["cell_type"] == "code")
        problems += [f"{path.name}: {p}" for p in check_markdown(markdown, chapter, rules) + check_code(code, chapter, rules)]
    return problems


def check_pages(root: Path, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """Forbidden uses in the book's other pages (results, glossary, ...), for the rules that hold everywhere."""
    universal = tuple(r for r in rules if r.chapters is None and not r.allowed)
    problems = []
    for path in sorted((root / "book").glob("*.md")):
        if path.name == "notation.md":  # the page that defines the symbols quotes none of these misuses
            continue
        problems += [f"{path.name}: {p}" for p in check_markdown(path.read_text(encoding="utf-8"), -1, universal)]
    return problems


def read_symbol_table(page: str) -> list[tuple[str, str, int]]:
    """``(symbol, meaning, first chapter)`` of each row of the page's table ``| symbol | meaning | first in | code |``."""
    rows, in_table = [], False
    for line in page.splitlines():
        if line.startswith("| symbol | meaning | first in |"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                in_table = False
                continue
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if set(cells[0]) <= {"-", "|"}:
                continue
            rows.append((cells[0], cells[1], int(cells[2])))
    return rows


def symbol_boxes(root: Path) -> dict[str, tuple[int, str, list[str]]]:
    """For each chapter: ``(number, box text, the symbols each line of its box introduces)``.

    A line of a box reads ``- $a$, $b$: what they are``; the symbols are the $...$ before the colon.
    """
    boxes: dict[str, tuple[int, str, list[str]]] = {}
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        markdown = [c["source"] for c in _cells(path) if c["cell_type"] == "markdown"]
        box = next((m for m in markdown if m.startswith(":::{admonition} " + BOX_TITLE)), None)
        if box is None:
            boxes[path.stem] = (chapter_number(path), "", [])
            continue
        symbols = []
        for line in box.splitlines():
            if line.startswith("- ") and ": " in line:
                symbols += math_spans(line[2:].split(": ", 1)[0])
        boxes[path.stem] = (chapter_number(path), box, symbols)
    return boxes


def check_page(root: Path) -> list[str]:
    """The notation page and the chapters' boxes agree, and the page gives each symbol one meaning."""
    page = (root / "book" / "notation.md").read_text(encoding="utf-8")
    rows = read_symbol_table(page)
    problems = []
    seen: dict[str, str] = {}
    for symbol, meaning, _ in rows:
        if symbol in seen:
            problems.append(f"notation.md: {symbol} has two rows: {seen[symbol]!r} and {meaning!r}")
        seen[symbol] = meaning
    first = {symbol: chapter for symbol, _, chapter in rows}
    boxes = symbol_boxes(root)
    by_number: dict[int, list[tuple[str, str]]] = {}
    for stem, (number, box, symbols) in boxes.items():
        by_number.setdefault(number, []).append((stem, box))
        if not box:
            if number != 0:
                problems.append(f"{stem}: no '{BOX_TITLE}' box")
            continue
        if "{doc}`notation`" not in box:
            problems.append(f"{stem}: the box does not link to the notation page")
        for s in symbols:
            if s not in first:
                problems.append(f"{stem}: the box introduces {s}, which notation.md does not list")
            elif first[s] != number:
                problems.append(f"{stem}: the box introduces {s}, which notation.md says first appears in chapter {first[s]}")
    for symbol, _, chapter in rows:
        if not any(symbol in box for _, box in by_number.get(chapter, [])):
            problems.append(f"notation.md: {symbol} first appears in chapter {chapter}, whose box does not list it")
    for rule in RULES:
        if rule.symbol not in seen:
            problems.append(f"notation.md does not list {rule.symbol}, which a rule protects")
    return problems


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaebook.authoring.notation", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="list symbols used in a meaning the notation page gives to another")
    check.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args(argv)
    problems = check_page(args.root) + check_chapters(args.root) + check_pages(args.root)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(_main())
