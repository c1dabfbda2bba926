"""The book's sources: chapters agree with _config.yml, are committed clean, and keep the house rules."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vaebook.authoring import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = book.chapter_paths(ROOT)
NUMBERED = [p for p in CHAPTERS if p.stem[:2].isdigit() and p.stem[:2] != "00"]


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell):
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def test_every_chapter_installs_from_the_configured_repository():
    assert book.check_chapters(ROOT) == []


def test_toc_lists_every_chapter_and_only_existing_files():
    toc = (ROOT / "_toc.yml").read_text()
    files = re.findall(r"file:\s*(\S+)", toc) + re.findall(r"root:\s*(\S+)", toc)
    for f in files:
        assert any((ROOT / (f + ext)).exists() for ext in (".ipynb", ".md")), f"_toc.yml lists {f}, which does not exist"
    for p in CHAPTERS:
        assert f"book/{p.stem}" in files, f"{p.name} is not in _toc.yml"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_are_committed_without_outputs_and_with_a_python3_kernel(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: outputs committed"
    assert book.normalize_notebook(json.loads(json.dumps(nb))) == nb, f"{path.name}: run python -m vaebook.authoring.book normalize"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_house_rules(path):
    """At least three exercises, one of them coding with a check; a hidden check cell; a quiz; a summary."""
    cells = _cells(path)
    md = "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown")
    code = [c for c in cells if c["cell_type"] == "code"]
    assert len(re.findall(r"^`{3,}\{exercise\}", md, flags=re.M)) >= 3, f"{path.name}: fewer than 3 exercises"
    solutions = [c for c in code if "### BEGIN SOLUTION" in _src(c)]
    assert solutions, f"{path.name}: no coding exercise"
    for c in solutions:
        assert "hide-input" in c["metadata"].get("tags", []), f"{path.name}: solution code must be collapsed (hide-input)"
    checks = [c for c in code if _src(c).lstrip().startswith("vb.checks.")]
    assert len(checks) >= len(solutions), f"{path.name}: every coding exercise needs a check cell"
    assert any("remove-cell" in c["metadata"].get("tags", []) and "assert" in _src(c) for c in code), f"{path.name}: no hidden check cell"
    assert any("vb.widgets.quiz(" in _src(c) for c in code), f"{path.name}: no quiz"
    assert re.search(r"^## Summary", md, flags=re.M), f"{path.name}: no summary"
    for c in code:  # a cell ending in a bare vb.plot call shows its figure twice (result + inline plot)
        lines = [line for line in _src(c).splitlines() if line.strip() and not line.startswith((" ", "\t", ")", "]"))]
        if lines:
            assert not re.match(r"vb\.plot\.\w+\(", lines[-1]), f"{path.name}: assign the last vb.plot result (fig = ...)"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_nothing_after_an_exercise_uses_the_students_function(path):
    """Student notebooks stub the solution: later cells (other than its check) must not call it."""
    cells = [c for c in _cells(path) if c["cell_type"] == "code"]
    for i, c in enumerate(cells):
        if "### BEGIN SOLUTION" not in _src(c):
            continue
        name = re.search(r"^def\s+(\w+)", _src(c), flags=re.M).group(1)
        for later in cells[i + 1:]:
            src = _src(later)
            if src.lstrip().startswith(f"vb.checks.{name}("):
                continue
            assert not re.search(rf"(?<![\w.]){name}\(", src), f"{path.name}: a later cell calls the exercise's {name}()"


def test_coding_exercises_cover_the_course():
    names = set()
    for p in CHAPTERS:
        for c in _cells(p):
            m = re.match(r"\s*vb\.checks\.(\w+)\(", _src(c))
            if m:
                names.add(m.group(1))
    assert len(names) >= 12, sorted(names)
    required = {"reconstruction_error", "gaussian_noise_pairs", "reparameterize", "gaussian_kl",
                "bernoulli_log_likelihood", "elbo", "importance_log_likelihood", "slerp"}
    assert required <= names, f"missing coding exercises: {sorted(required - names)}"


def test_the_lecture_polls_are_quizzes_with_answer_true():
    text = {p.stem: "\n".join(_src(c) for c in _cells(p)) for p in CHAPTERS}
    polls = [("01_autoencoders", "backprop"), ("06_elbo", "EM")]
    for stem, word in polls:
        assert stem in text, f"{stem} is missing"
        quizzes = re.findall(r"vb\.widgets\.quiz\(\s*(.*?)\n\)", text[stem], flags=re.S)
        assert any(word.lower() in q.lower() for q in quizzes), f"{stem}: the poll about {word} is missing"


def test_every_equation_the_library_cites_is_defined_once_in_the_book():
    cited = set()
    for py in (ROOT / "vaebook").glob("*.py"):
        cited |= set(re.findall(r"Book: (eq-[\w-]+)", py.read_text()))
    defined: dict[str, list[str]] = {}
    for p in list(CHAPTERS) + sorted((ROOT / "book").glob("*.md")):
        text = p.read_text(encoding="utf-8")
        for label in re.findall(r"\$\$\s*\((eq-[\w-]+)\)", text):
            defined.setdefault(label, []).append(p.name)
    missing = sorted(cited - set(defined))
    assert not missing, f"cited by the library but never defined: {missing}"
    twice = {k: v for k, v in defined.items() if len(v) > 1}
    assert not twice, f"defined more than once: {twice}"


def _course(tmp_path):
    """An empty course beside the tests: this book's _config.yml and _toc.yml, and an empty book/."""
    copy = tmp_path / "course"
    (copy / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, copy / name)
    return copy


def test_set_repository_retargets_config_and_every_chapter(tmp_path):
    copy = _course(tmp_path)
    for p in CHAPTERS:
        shutil.copy2(p, copy / "book" / p.name)
    out = subprocess.run(
        [sys.executable, "-m", "vaebook.authoring.book", "set-repository", "https://github.com/teacher/fork", "--branch", "spring", "--root", str(copy)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert book.read_repository(copy) == ("https://github.com/teacher/fork", "spring")
    assert book.check_chapters(copy) == []
    for p in book.chapter_paths(copy):
        assert 'VAEBOOK_SOURCE = "git+https://github.com/teacher/fork@spring"' in _src(_cells(p)[[c["cell_type"] for c in _cells(p)].index("code")])
    config = (copy / "_config.yml").read_text()
    assert "# The course repository" in config  # comments kept
    assert book.colab_url(*book.read_repository(copy), "book/05_dlvm.ipynb") == (
        "https://colab.research.google.com/github/teacher/fork/blob/spring/book/05_dlvm.ipynb"
    )
    check = subprocess.run([sys.executable, "-m", "vaebook.authoring.book", "check", "--root", str(copy)], capture_output=True, text=True)
    assert check.returncode == 0


def test_check_reports_a_chapter_that_disagrees(tmp_path):
    copy = _course(tmp_path)
    nb = json.loads(CHAPTERS[0].read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    first["source"] = _src(first).replace("github.com/vaebook/vaebook", "github.com/someone/else")
    (copy / "book" / CHAPTERS[0].name).write_text(json.dumps(nb))
    problems = book.check_chapters(copy)
    assert len(problems) == 1 and "does not install from https://github.com/vaebook/vaebook@main" in problems[0]
    check = subprocess.run([sys.executable, "-m", "vaebook.authoring.book", "check", "--root", str(copy)], capture_output=True, text=True)
    assert check.returncode == 1


def test_the_setup_cell_is_folded_and_the_data_warning_left_out_of_the_html_book(tmp_path):
    copy = _course(tmp_path)
    nb = json.loads(CHAPTERS[0].read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    data = next(c for c in nb["cells"] if c["cell_type"] == "code" and "vb.load_mnist(" in _src(c))
    assert "hide-input" in first["metadata"]["tags"] and "remove-stderr" in data["metadata"]["tags"]  # as committed
    first["metadata"]["tags"].remove("hide-input")
    data["metadata"]["tags"].remove("remove-stderr")
    path = copy / "book" / CHAPTERS[0].name
    path.write_text(json.dumps(nb))
    problems = book.check_chapters(copy)
    assert len(problems) == 2 and all(CHAPTERS[0].name in p for p in problems), problems
    assert "not folded" in problems[0] and "offline-data warning" in problems[1]
    out = subprocess.run([sys.executable, "-m", "vaebook.authoring.book", "normalize", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert book.check_chapters(copy) == []
    folded = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert folded["metadata"]["tags"] == ["vaebook-bootstrap", "hide-input"]
    loads = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code" and "vb.load_mnist(" in _src(c))
    assert loads["metadata"]["tags"] == ["remove-stderr"]


def test_set_repository_rejects_bad_input_and_writes_nothing(tmp_path):
    copy = tmp_path / "course"
    (copy / "book").mkdir(parents=True)
    shutil.copy2(ROOT / "_config.yml", copy / "_config.yml")
    shutil.copy2(ROOT / "_toc.yml", copy / "_toc.yml")
    before = (copy / "_config.yml").read_text()
    with pytest.raises(ValueError, match="must look like https://github.com/OWNER/REPO"):
        book.set_repository(copy, "not a url", "main")
    with pytest.raises(ValueError, match="characters a git branch cannot have"):
        book.set_repository(copy, "https://github.com/a/b", "bad branch")
    nb = {"cells": [{"cell_type": "code", "source": "print(1)", "metadata": {}, "outputs": [], "execution_count": None}], "metadata": {}}
    (copy / "book" / "x.ipynb").write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="is not the vaebook setup cell"):
        book.set_repository(copy, "https://github.com/a/b", "main")
    assert (copy / "_config.yml").read_text() == before  # nothing half-written


def test_colab_url_needs_a_github_repository():
    with pytest.raises(ValueError, match="Colab opens notebooks from GitHub repositories"):
        book.colab_url("https://gitlab.com/a/b", "main", "book/x.ipynb")


def _coding_exercises():
    """``{(chapter number, function name): tier}`` of every coding exercise, from the chapters' titles."""
    found = {}
    for p in CHAPTERS:
        title = None
        for c in _cells(p):
            src = _src(c)
            if c["cell_type"] == "markdown":
                for m in re.finditer(r"^`{3,}\{exercise\} (.*)$", src, flags=re.M):
                    title = m.group(1)
            elif "### BEGIN SOLUTION" in src:
                name = re.search(r"^def\s+(\w+)", src, flags=re.M).group(1)
                tier = re.match(r"\((warm-up|core|project)\) ", title or "")
                assert tier, f"{p.name}: the exercise of {name}() has no tier in its title: {title!r}"
                found[(str(int(p.stem[:2])), name)] = tier.group(1)
    return found


def test_every_coding_exercise_has_a_tier_and_a_row_on_the_instructors_page():
    exercises = _coding_exercises()
    page = (ROOT / "book" / "instructors.md").read_text(encoding="utf-8")
    rows = {(c, f): t for c, f, t in re.findall(r"^\| (\d+) \| `(\w+)` \| (warm-up|core|project) \|", page, flags=re.M)}
    assert rows == exercises, (f"the instructors' table and the chapters differ: only in the chapters "
                               f"{sorted(set(exercises.items()) - set(rows.items()))}, only on the page "
                               f"{sorted(set(rows.items()) - set(exercises.items()))}")
    tiers = list(exercises.values())
    assert len(tiers) >= 20 and tiers.count("project") >= 4, tiers
