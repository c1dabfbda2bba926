"""Generate student versions of the chapters: solutions stripped, checks kept.

    python -m vaebook.assign book/ --out student/ [--force] [--no-html]

From one source (the chapters in ``book/``) it writes

- ``OUT/book/*.ipynb``: student notebooks. In every code cell, the lines between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (markers included) become
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the same indentation, as nbgrader does;
  the solutions of conceptual exercises (``{solution}`` blocks) are removed from the markdown;
  the check cells stay, and report "not yet implemented" until the function is written.
- ``OUT/nbgrader/*.ipynb``: the source of an nbgrader assignment. The code solutions stay between
  their markers (with nbgrader's cell metadata), for ``nbgrader generate_assignment`` to strip;
  the conceptual solutions are already removed, because nbgrader only strips marked cells and
  would hand the ``{solution}`` blocks of the markdown to students.
- ``OUT/_config.yml``, ``OUT/_toc.yml`` and the book's pages: a student edition of the book, built
  with sphinx-exercise's ``hide_solutions`` (and without the instructors' page), built into
  ``OUT/_build/html``. Building executes the student notebooks (a few minutes; a stub must not stop
  a chapter); ``--no-html`` writes the sources only.

The source notebooks are only read. An existing ``--out`` folder is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "BEGIN",
    "END",
    "strip_solution_code",
    "strip_solution_markdown",
    "student_notebook",
    "make_student_version",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
INSTRUCTOR_PAGES = {"book/instructors"}

# ```{solution} ...``` or :::{solution} ... ::: blocks, with any number of backticks/colons (>= 3);
# the block ends at the first line holding the same fence alone.
_FENCED_SOLUTION = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=indent)(?P=fence)[ \t]*$\n?",
    flags=re.M | re.S,
)


def strip_solution_code(source: str) -> str:
    """Replace each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region with an nbgrader-style stub."""
    lines = source.split("\n")
    out: list[str] = []
    inside = False
    indent = ""
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"line {n}: {BEGIN!r} inside another solution region")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in STUB)
            continue
        if stripped == END:
            if not inside:
                raise ValueError(f"line {n}: {END!r} without a matching {BEGIN!r}")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without a matching {END!r}")
    return "\n".join(out)


def strip_solution_markdown(source: str) -> str:
    """Remove the ``{solution}`` blocks (sphinx-exercise) of conceptual exercises from markdown."""
    return _FENCED_SOLUTION.sub("", source)


def student_notebook(nb: dict, strip_code: bool = True) -> dict:
    """A student copy of a notebook (the input is not modified).

    ``strip_code=False`` keeps the code solutions between their markers and removes only the
    conceptual solutions: the source that nbgrader expects.
    """
    nb = json.loads(json.dumps(nb))
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        if cell.get("cell_type") == "code":
            if strip_code and (BEGIN in src or END in src):
                src = strip_solution_code(src)
                tags = [t for t in cell.get("metadata", {}).get("tags", []) if t != "hide-input"]
                cell.setdefault("metadata", {})["tags"] = tags  # students see their stub
            cell["outputs"] = []
            cell["execution_count"] = None
        elif cell.get("cell_type") == "markdown":
            src = strip_solution_markdown(src)
        cell["source"] = src
    return nb


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _student_config(text: str) -> str:
    text = re.sub(r'^title:\s*"?(.*?)"?\s*$', lambda m: f'title: "{m.group(1)} (student edition)"', text, count=1, flags=re.M)
    if re.search(r"^\s+hide_solutions:", text, flags=re.M):
        return re.sub(r"^(\s+hide_solutions:).*$", r"\1 true", text, flags=re.M)
    return re.sub(r"^(  config:\n)", "\\1    hide_solutions: true  # sphinx-exercise: no solutions in the student book\n", text, count=1, flags=re.M)


def _student_toc(text: str) -> str:
    kept = [line for line in text.splitlines() if not any(line.strip() == f"- file: {p}" for p in INSTRUCTOR_PAGES)]
    return "\n".join(kept) + "\n"


def _drop_instructor_links(text: str) -> str:
    """Links to pages left out of the student edition become plain text (no broken references)."""
    for page in INSTRUCTOR_PAGES:
        stem = page.split("/")[-1]
        text = re.sub(r"\{doc\}`" + re.escape(stem) + "`", "the instructors' page (not in this edition)", text)
    return text


def make_student_version(book: Path, out: Path, force: bool = False) -> list[Path]:
    """Write the student notebooks and book into ``out``; return the notebooks written."""
    book = book.resolve()
    root = book.parent
    notebooks = sorted(book.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {book}")
    out = out.resolve()
    if out == root or root.is_relative_to(out) or book.is_relative_to(out):
        raise ValueError(f"--out {out} would overwrite the source book; choose another folder")
    if out.exists():
        if not force:
            raise FileExistsError(f"{out} exists; pass --force to replace it")
        shutil.rmtree(out)
    # build everything in a temporary folder beside OUT, then move it into place: no half-written OUT
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        written = []
        for path in notebooks:
            nb = json.loads(path.read_text(encoding="utf-8"))
            target = tmp / "book" / path.name
            _write_text(target, json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + "\n")
            written.append(out / "book" / path.name)
            source = json.dumps(student_notebook(nb, strip_code=False), indent=1, ensure_ascii=False) + "\n"
            _write_text(tmp / "nbgrader" / path.name, source)
        for page in book.iterdir():
            if page.suffix == ".md" and f"book/{page.stem}" not in INSTRUCTOR_PAGES:
                _write_text(tmp / "book" / page.name, _drop_instructor_links(page.read_text(encoding="utf-8")))
            elif page.suffix == ".bib":
                shutil.copy2(page, tmp / "book" / page.name)
            elif page.is_dir() and page.name in ("_ext", "_static"):
                shutil.copytree(page, tmp / "book" / page.name)
        if (root / "_config.yml").exists():
            _write_text(tmp / "_config.yml", _student_config((root / "_config.yml").read_text(encoding="utf-8")))
        if (root / "_toc.yml").exists():
            _write_text(tmp / "_toc.yml", _student_toc((root / "_toc.yml").read_text(encoding="utf-8")))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vaebook.assign", description="Write student versions of the chapters.")
    ap.add_argument("book", type=Path, help="the folder of source chapters, e.g. book/")
    ap.add_argument("--out", type=Path, required=True, help="where to write the student version")
    ap.add_argument("--force", action="store_true", help="replace --out if it exists")
    ap.add_argument("--no-html", action="store_true", help="write the notebooks and book sources only, do not build the HTML")
    args = ap.parse_args(argv)
    try:
        written = make_student_version(args.book, args.out, force=args.force)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} student notebooks to {args.out / 'book'}")
    if not args.no_html:
        # the jupyter-book CLI of this interpreter (no PATH needed); the build executes the student notebooks
        cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
               "build", str(args.out), "--builder", "html", "--warningiserror", "--keep-going"]
        env = dict(os.environ, VAEBOOK_PROGRESS="0")
        rc = subprocess.run(cmd, env=env).returncode
        if rc:
            return rc
        print(f"student book: {args.out / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
