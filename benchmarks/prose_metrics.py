"""Words per sentence and numbers per 100 words of each chapter's prose (issue 25's readability measure).

    python benchmarks/prose_metrics.py [--rev REV]

Reads the markdown cells of every book/*.ipynb (at git revision REV if given), drops math, code,
MyST directives' option lines, link targets and glue/role markup, then splits sentences at '.', '?'
or '!' followed by a space and a capital letter or the end of a paragraph, and at the start of each
list item. A "number" is a run of digits (with its decimal point or thousands commas) in the prose,
outside math. Table rows are not running prose: they are left out of both measures (the issue asks
for numbers to move into tables), and the last column counts the numbers that tables hold.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prose(markdown: str) -> str:
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)  # fenced blocks: code, directives' bodies kept below
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)  # display math
    text = re.sub(r"\$[^$\n]+\$", " X ", text)  # inline math counts as one word, no number
    text = re.sub(r"\{[a-z:-]+\}`[^`]*`", " X ", text)  # roles: {cite:t}`...`, {eq}`...`, {glue:text}`...`
    text = re.sub(r"`[^`]*`", " X ", text)  # inline code
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"^\s*:[a-z-]+:.*$", " ", text, flags=re.M)  # directive options
    text = re.sub(r"^#+\s.*$", " ", text, flags=re.M)  # headings are not sentences
    text = re.sub(r"^\s*\|.*\|\s*$", " ", text, flags=re.M)  # table rows are not running prose
    text = re.sub(r"^\s*(?:[-*+]|\d+\.)\s+", "\n\n", text, flags=re.M)  # each list item starts a sentence
    text = re.sub(r"[*_>|#\[\]]", " ", text)
    return text


def sentences(text: str) -> list[str]:
    parts = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        parts += [s for s in re.split(r"(?<=[.?!])\s+(?=[A-Z(“\"])", para) if len(s.split()) >= 3]
    return parts


def metrics(cells: list[str]) -> tuple[int, int, int]:
    """(words, sentences, numbers) of the markdown cells."""
    words = n_sent = numbers = 0
    for cell in cells:
        text = prose(cell)
        sents = sentences(text)
        n_sent += len(sents)
        words += sum(len(s.split()) for s in sents)
        numbers += sum(len(re.findall(r"(?<![\w.])\d[\d,]*(?:\.\d+)?", s)) for s in sents)
    return words, n_sent, numbers


def table_numbers(cells: list[str]) -> int:
    """The numbers in the cells' markdown table rows (math and code left out)."""
    rows = [line for cell in cells for line in cell.splitlines() if re.match(r"^\s*\|.*\|\s*$", line)]
    text = re.sub(r"\$[^$\n]+\$|`[^`]*`", " ", "\n".join(rows))
    return len(re.findall(r"(?<![\w.])\d[\d,]*(?:\.\d+)?", text))


def chapter_cells(path: Path, rev: str | None) -> list[str]:
    raw = subprocess.run(["git", "show", f"{rev}:{path.relative_to(ROOT)}"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout if rev else path.read_text()
    nb = json.loads(raw)
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default=None, help="a git revision to read the chapters from (default: the working tree)")
    args = ap.parse_args()
    total = [0, 0, 0, 0]
    print(f"{'chapter':<32}{'words/sentence':>15}{'numbers/100 words':>19}{'numbers in tables':>19}")
    if args.rev:  # the chapters as they were at REV
        listing = subprocess.run(["git", "ls-tree", "--name-only", args.rev, "book/"], capture_output=True, text=True,
                                 check=True, cwd=ROOT).stdout.split()
        paths = sorted(ROOT / p for p in listing if p.endswith(".ipynb"))
    else:
        paths = sorted((ROOT / "book").glob("*.ipynb"))
    for path in paths:
        cells = chapter_cells(path, args.rev)
        w, s, n = metrics(cells)
        t = table_numbers(cells)
        total = [a + b for a, b in zip(total, (w, s, n, t), strict=True)]
        print(f"{path.stem:<32}{w / max(s, 1):>15.1f}{100 * n / max(w, 1):>19.1f}{t:>19d}")
    w, s, n, t = total
    print(f"{'all chapters':<32}{w / max(s, 1):>15.1f}{100 * n / max(w, 1):>19.1f}{t:>19d}")


if __name__ == "__main__":
    main()
