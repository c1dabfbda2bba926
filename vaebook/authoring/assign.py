"""Generate student versions of the chapters: solutions stripped, checks kept.

    python -m vaebook.authoring.assign book/ --out student/ [--force] [--no-html]

From one source (the chapters in ``book/``) it writes

- ``OUT/book/*.ipynb``: student notebooks. In every code cell, the lines between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (markers included) become
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the same indentation, as nbgrader does;
  the solutions of conceptual exercises (``{solution}`` blocks) are removed from the markdown;
  the check cells stay, and report "not yet implemented" until the function is written.
- ``OUT/nbgrader/``: an nbgrader course directory, ready for ``nbgrader generate_assignment``:
  ``nbgrader_config.py`` (nbgrader's defaults, but a per-cell timeout that fits the slowest
  chapter) and ``source/<chapter>/<chapter>.ipynb``, one assignment per chapter. The code
  solutions stay between their markers (with nbgrader's cell metadata), for nbgrader to strip into
  the same stubs as ``OUT/book``; the conceptual solutions are already removed, because nbgrader
  only strips marked cells and would hand the ``{solution}`` blocks of the markdown to students.
- ``OUT/otter/<chapter>.ipynb``: the chapters in otter-grader's Otter Assign format, for
  ``otter assign``. Each coding exercise is a question whose (hidden) test calls the chapter's
  check with ``strict=True``, so that a failing test shows the check's message and hint.
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

from .book import read_notebook

__all__ = [
    "BEGIN",
    "END",
    "strip_solution_code",
    "strip_solution_markdown",
    "student_notebook",
    "otter_notebook",
    "NBGRADER_TIMEOUT",
    "nbgrader_config",
    "make_student_version",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
INSTRUCTOR_PAGES = {"book/instructors"}

# nbgrader's per-cell timeout (``c.Execute.timeout``) for autograding; nbgrader's default is 30 s.
# Measured with `make graders` (tests/graders.py: nbgrader autograde of every chapter) on a 2-core
# CPU: the slowest cell is chapter 2's training of the denoising autoencoder, 18 to 19 s on a quiet
# machine. Other jobs on the same two cores slowed cells by up to 6 times (chapter 7's slowest cell:
# 3.4 s quiet, 19.8 s busy), which takes chapter 2's past 30 s. 300 s, the per-cell limit of the
# book's own build (_config.yml), covers that with room to spare.
NBGRADER_TIMEOUT = 300

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
                try:
                    src = strip_solution_code(src)
                except ValueError as err:
                    raise ValueError(f"cell {cell.get('id', '?')}: {err}") from None
                tags = [t for t in cell.get("metadata", {}).get("tags", []) if t != "hide-input"]
                cell.setdefault("metadata", {})["tags"] = tags  # students see their stub
            cell["outputs"] = []
            cell["execution_count"] = None
        elif cell.get("cell_type") == "markdown":
            src = _drop_instructor_links(strip_solution_markdown(src))
        cell["source"] = src
    return nb


def nbgrader_config(timeout: int = NBGRADER_TIMEOUT) -> str:
    """The ``nbgrader_config.py`` of the course directory: nbgrader's defaults and a longer cell timeout."""
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise ValueError(f"timeout: expected a positive whole number of seconds, got {timeout!r}")
    return (
        "# nbgrader configuration of the vaebook course, written by `python -m vaebook.authoring.assign`.\n"
        "# Everything not set here is nbgrader's default.\n"
        "c = get_config()  # noqa: F821 (nbgrader defines get_config when it reads this file)\n"
        "\n"
        "# Per-cell time limit of `nbgrader autograde`, in seconds (nbgrader's default: 30 s). The\n"
        "# slowest cell, chapter 2's training, took 18 to 19 s on a quiet 2-core CPU, and other jobs\n"
        "# on the same cores slowed cells by up to 6 times: past 30 s, nbgrader would stop the\n"
        "# notebook and score its remaining exercises 0. The book's own build allows 300 s a cell.\n"
        f"c.Execute.timeout = {timeout}\n"
    )


_OTTER_CONFIG = """# ASSIGNMENT CONFIG
# Written by `python -m vaebook.authoring.assign` (see the book's instructors' page). Each coding exercise is
# a question whose hidden test calls the chapter's check with strict=True; the check cells of the
# chapter stay, so students get the same feedback as in the book without installing otter.
init_cell: false
check_all_cell: false
export_cell: false
generate:
  # results.json: each question's message (shown to students once grades are published), and no
  # summary of public tests, which would say "All test cases passed!": there are none
  show_hidden: true
  force_public_test_summary: false
tests:
  ok_format: false  # exception-based tests: the check's CheckFailed message is the failure message
"""


def _raw(source: str, cell_id: str) -> dict:
    return {"cell_type": "raw", "id": cell_id, "metadata": {}, "source": source}


def _otter_solution(source: str) -> str:
    """Our solution markers in otter's syntax: the solution is removed and our stub takes its place."""
    lines = source.split("\n")
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if stripped == BEGIN:
            out.append(indent + "# BEGIN SOLUTION NO PROMPT")
        elif stripped == END:
            # otter drops the two lines that end in BEGIN/END PROMPT and keeps what lies between:
            # the stub, which in this (solution) notebook is only a string
            out += [indent + "# END SOLUTION", indent + '""" # BEGIN PROMPT']
            out += [indent + s for s in STUB]
            out.append(indent + '""" # END PROMPT')
        else:
            out.append(line)
    return "\n".join(out)


def otter_notebook(nb: dict) -> dict:
    """A chapter in otter-grader's Otter Assign format (the input is not modified).

    Each solution cell (nbgrader metadata ``solution: true``) becomes a question named after its
    ``grade_id``, worth 1 point, whose hidden test calls the check of the chapter's check cell
    with ``strict=True``. ``otter assign`` turns the solution into our stub
    (``# YOUR CODE HERE`` / ``raise NotImplementedError()``). The conceptual solutions are removed,
    as in the nbgrader source.
    """
    nb = student_notebook(nb, strip_code=False)
    cells = nb.get("cells", [])
    out = [_raw(_OTTER_CONFIG, "otter-assignment-config")]
    for i, cell in enumerate(cells):
        grading = cell.get("metadata", {}).pop("nbgrader", None)
        if cell.get("cell_type") != "code" or not (grading or {}).get("solution"):
            out.append(cell)
            continue
        name = grading["grade_id"]
        check = next((c for c in cells[i + 1:] if c.get("cell_type") == "code" and c["source"].lstrip().startswith("vb.checks.")), None)
        call = re.match(r"\s*vb\.checks\.(\w+)\((\w+)\)\s*$", check["source"]) if check else None
        if call is None:
            raise ValueError(f"solution cell {cell.get('id')} ({name}): expected a check cell `vb.checks.NAME(FUNCTION)` after it, found none")
        check_name, function = call.groups()
        if not re.search(rf"^def {function}\(", cell["source"], flags=re.M):
            raise ValueError(f"solution cell {cell.get('id')} ({name}): expected it to define {function}, which the next check cell checks; it does not")
        test = (
            "# HIDDEN\n"
            f"def test_{name}({function}):\n"
            "    import vaebook as vb\n\n"
            f"    vb.checks.{check_name}({function}, strict=True)"
        )
        out += [
            _raw(f"# BEGIN QUESTION\nname: {name}\npoints: 1", f"otter-{name}-begin-question"),
            _raw("# BEGIN SOLUTION", f"otter-{name}-begin-solution"),
            dict(cell, source=_otter_solution(cell["source"])),
            _raw("# END SOLUTION", f"otter-{name}-end-solution"),
            _raw("# BEGIN TESTS", f"otter-{name}-begin-tests"),
            {"cell_type": "code", "id": f"otter-{name}-test", "metadata": {}, "execution_count": None, "outputs": [], "source": test},
            _raw("# END TESTS", f"otter-{name}-end-tests"),
            _raw("# END QUESTION", f"otter-{name}-end-question"),
        ]
    for cell in out:
        cell.get("metadata", {}).pop("nbgrader", None)
    nb["cells"] = out
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        written = []
        for path in notebooks:
            nb = read_notebook(path)
            try:
                student, source_nb, otter = student_notebook(nb), student_notebook(nb, strip_code=False), otter_notebook(nb)
            except ValueError as err:  # an unmatched marker, a solution without its check: say which file
                raise ValueError(f"{path}: {err}") from None
            _write_text(tmp / "book" / path.name, json.dumps(student, indent=1, ensure_ascii=False) + "\n")
            written.append(out / "book" / path.name)
            _write_text(tmp / "nbgrader" / "source" / path.stem / path.name, json.dumps(source_nb, indent=1, ensure_ascii=False) + "\n")
            _write_text(tmp / "otter" / path.name, json.dumps(otter, indent=1, ensure_ascii=False) + "\n")
        _write_text(tmp / "nbgrader" / "nbgrader_config.py", nbgrader_config())
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
    ap = argparse.ArgumentParser(prog="python -m vaebook.authoring.assign", description="Write student versions of the chapters.")
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
    print(f"wrote {len(written)} student notebooks to {args.out / 'book'}, an nbgrader course folder "
          f"to {args.out / 'nbgrader'} and otter-grader notebooks to {args.out / 'otter'}")
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
