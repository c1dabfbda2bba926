"""vaebook.authoring.assign: student notebooks lose every solution, keep every check, and never touch the source."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vaebook as vb
from vaebook import checks
from vaebook.authoring import assign

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))


def _src(cell):
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def _solution_lines(nb) -> list[str]:
    """The non-trivial lines inside every solution region (code) and solution block (markdown)."""
    lines = []
    for cell in nb["cells"]:
        src = _src(cell)
        if cell["cell_type"] == "code":
            for region in re.findall(r"### BEGIN SOLUTION\n(.*?)\n[ \t]*### END SOLUTION", src, flags=re.S):
                lines += [line.strip() for line in region.splitlines() if len(line.strip()) > 12]
        else:
            for block in re.findall(r"```\{solution\}.*?\n(.*?)\n```", src, flags=re.S):
                lines += [line.strip() for line in block.splitlines() if len(line.strip()) > 30 and not line.startswith(":")]
    return lines


def test_strip_solution_code_keeps_indentation_and_everything_else():
    src = 'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n\nprint("after")'
    out = assign.strip_solution_code(src)
    assert out == 'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nprint("after")'
    two = "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n### BEGIN SOLUTION\nc = 3\n### END SOLUTION"
    assert assign.strip_solution_code(two) == "# YOUR CODE HERE\nraise NotImplementedError()\nb = 2\n# YOUR CODE HERE\nraise NotImplementedError()"


@pytest.mark.parametrize(
    "bad, message",
    [
        ("### BEGIN SOLUTION\nx = 1", "without a matching '### END SOLUTION'"),
        ("x = 1\n### END SOLUTION", "without a matching '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another solution region"),
    ],
)
def test_strip_solution_code_rejects_unbalanced_markers(bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        assign.strip_solution_code(bad)


def test_strip_solution_markdown_removes_solution_blocks_only():
    md = (
        "Text.\n\n```{exercise} Q\n:label: ex-a\nAsk.\n```\n\n```{solution} ex-a\n:class: dropdown\nSecret answer.\n```\n\n"
        "::::{solution} ex-b\nColon secret.\n::::\n\n````{solution} ex-c\nWith code:\n```python\nx = 1\n```\n````\nEnd."
    )
    out = assign.strip_solution_markdown(md)
    assert "Secret" not in out and "Colon secret" not in out and "x = 1" not in out
    assert "```{exercise} Q" in out and "Ask." in out and out.rstrip().endswith("End.")


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in CHAPTERS}
    out = tmp_path_factory.mktemp("s") / "student"
    res = subprocess.run([sys.executable, "-m", "vaebook.authoring.assign", str(BOOK), "--out", str(out), "--no-html"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in CHAPTERS} == digest, "source notebooks changed"
    return out


def test_student_notebooks_hold_no_solution_text(student):
    for src in CHAPTERS:
        nb = json.loads(src.read_text())
        text = (student / "book" / src.name).read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text and "{solution}" not in text
        for line in _solution_lines(nb):
            assert json.dumps(line)[1:-1] not in text, f"{src.name}: solution text survived: {line!r}"
        st = json.loads(text)
        n_checks = sum(_src(c).lstrip().startswith("vb.checks.") for c in st["cells"])
        assert n_checks == sum(_src(c).lstrip().startswith("vb.checks.") for c in nb["cells"]) > 0
        assert all(c.get("outputs", []) == [] for c in st["cells"] if c["cell_type"] == "code")


def test_nbgrader_source_keeps_code_solutions_and_drops_conceptual_ones(student):
    """OUT/nbgrader/source/<chapter>/: what nbgrader's generate_assignment needs, with nothing it would leak."""
    assert sorted(p.name for p in (student / "nbgrader" / "source").iterdir()) == [p.stem for p in CHAPTERS]
    for src in CHAPTERS:
        nb = json.loads(src.read_text())
        out = json.loads((student / "nbgrader" / "source" / src.stem / src.name).read_text())
        assert "{solution}" not in json.dumps(out), f"{src.name}: a conceptual solution would reach students"
        code = lambda n: [c for c in n["cells"] if c["cell_type"] == "code"]  # noqa: E731
        assert [_src(c) for c in code(out)] == [_src(c) for c in code(nb)]  # code solutions intact
        assert [c["metadata"].get("nbgrader") for c in code(out)] == [c["metadata"].get("nbgrader") for c in code(nb)]
        assert sum("### BEGIN SOLUTION" in _src(c) for c in code(out)) >= 1


def test_student_book_hides_solutions_and_the_instructor_page(student):
    config = (student / "_config.yml").read_text()
    assert re.search(r"^\s+hide_solutions: true", config, flags=re.M)
    assert "(student edition)" in config
    assert "book/instructors" not in (student / "_toc.yml").read_text()
    assert not (student / "book" / "instructors.md").exists()
    for page in (student / "book").glob("*.md"):
        assert "{doc}`instructors`" not in page.read_text(), f"{page.name} links to the missing instructors' page"
    for nb in (student / "book").glob("*.ipynb"):
        assert "{doc}`instructors`" not in nb.read_text(), f"{nb.name} links to the missing instructors' page"


def test_a_chapter_that_links_to_the_instructors_page_gets_plain_text_in_the_student_edition():
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "Timed on two cores (see {doc}`instructors`)."}]}
    out = assign.student_notebook(nb)
    assert out["cells"][0]["source"] == "Timed on two cores (see the instructors' page (not in this edition))."


def test_existing_out_is_refused_unless_forced(student):
    res = subprocess.run([sys.executable, "-m", "vaebook.authoring.assign", str(BOOK), "--out", str(student), "--no-html"], capture_output=True, text=True)
    assert res.returncode == 2 and "exists; pass --force" in res.stderr
    res = subprocess.run([sys.executable, "-m", "vaebook.authoring.assign", str(BOOK), "--out", str(student), "--force", "--no-html"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_out_may_not_overwrite_the_source():
    with pytest.raises(ValueError, match="would overwrite the source book"):
        assign.make_student_version(BOOK, ROOT, force=True)


def _exercises(nb):
    """(solution cell, check cell) pairs, in order."""
    cells = nb["cells"]
    pairs = []
    for i, c in enumerate(cells):
        if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution"):
            check = next(d for d in cells[i + 1:] if d["cell_type"] == "code" and _src(d).lstrip().startswith("vb.checks."))
            pairs.append((c, check))
    return pairs


def _imports(nb) -> str:
    """The chapter's top-level import lines, so a solution can use what the chapter imported."""
    lines = []
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            lines += [line for line in _src(c).splitlines() if re.match(r"(import|from) \w", line)]
    return "\n".join(lines)


def _run_pair(solution_src: str, check_src: str, imports: str = ""):
    ns = {"vb": vb, "torch": torch}
    exec(imports, ns)  # noqa: S102 (our own notebooks)
    exec(solution_src, ns)  # noqa: S102
    return eval(check_src.strip(), ns)  # noqa: S307


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_source_solutions_pass_and_student_stubs_say_not_yet_implemented(path, monkeypatch, capsys):
    monkeypatch.delenv("VAEBOOK_STRICT_CHECKS", raising=False)
    nb = json.loads(path.read_text())
    stud = assign.student_notebook(nb)
    pairs, stud_pairs = _exercises(nb), _exercises(stud)
    assert pairs and len(pairs) == len(stud_pairs)
    imports = _imports(nb)
    for (sol, check), (stub, _) in zip(pairs, stud_pairs, strict=True):
        assert _run_pair(_src(sol), _src(check), imports) is None  # raises CheckFailed if wrong
        out, err = capsys.readouterr()
        assert out.startswith("✓ ") and err == "", f"{path.name}: the source solution did not pass its check: {out!r} {err!r}"
        assert _run_pair(_src(stub), _src(check), imports) is None
        out, err = capsys.readouterr()
        assert out == "" and "not yet implemented" in err, f"{path.name}: the stub's check said {out!r} {err!r}"


def test_a_wrong_kl_in_the_chapter_fails_with_a_helpful_message():
    """Flip the sign of the KL exercise's solution in the chapter itself: the check must explain."""
    path = next((p for p in CHAPTERS if "gaussian_kl(gaussian_kl)" in p.read_text()), None)
    assert path is not None, "no chapter has the Gaussian KL exercise"
    nb = json.loads(path.read_text())
    sol, check = next((s, c) for s, c in _exercises(nb) if "gaussian_kl" in _src(c))
    wrong = re.sub(r"(### BEGIN SOLUTION\n)([ \t]*)return ", r"\1\2return -", _src(sol))
    if wrong == _src(sol):  # the solution is not a single return: negate the function instead
        wrong = _src(sol) + "\n_right = gaussian_kl\ngaussian_kl = lambda mu, logvar: -_right(mu, logvar)"
    with pytest.raises(checks.CheckFailed, match="sign is flipped") as info:
        _run_pair(wrong, _src(check), _imports(nb))
    assert "expected:" in str(info.value) and "got:" in str(info.value) and "shape" in str(info.value)


def test_out_parent_is_created_and_nothing_is_left_half_written(tmp_path):
    out = tmp_path / "new" / "student"
    assign.make_student_version(BOOK, out)
    assert (out / "nbgrader" / "nbgrader_config.py").exists() and (out / "otter").is_dir()
    assert sorted(p.name for p in out.parent.iterdir()) == ["student"]  # no temporary folder left


def _nbgrader_timeout(course: Path) -> int:
    """c.Execute.timeout as nbgrader reads it: traitlets' loader of a Jupyter app's *_config.py."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config().Execute.timeout


def test_nbgrader_config_sets_the_timeout_the_instructors_page_states(student):
    assert _nbgrader_timeout(student / "nbgrader") == assign.NBGRADER_TIMEOUT
    page = (BOOK / "instructors.md").read_text()
    stated = re.search(r"\(`c\.Execute\.timeout`\): (\d+) s instead of nbgrader's 30 s", page)
    assert stated, "the instructors' page no longer states nbgrader's cell timeout"
    assert int(stated.group(1)) == assign.NBGRADER_TIMEOUT
    from nbgrader.preprocessors import Execute

    assert Execute.timeout.default_value == 30 < assign.NBGRADER_TIMEOUT  # nbgrader's default, which is too short


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "300"])
def test_nbgrader_config_rejects_a_bad_timeout(bad):
    with pytest.raises(ValueError, match=r"timeout: expected a positive whole number of seconds, got"):
        assign.nbgrader_config(bad)


def test_otter_notebooks_make_each_exercise_a_question_with_a_strict_check(student):
    for src in CHAPTERS:
        nb = json.loads(src.read_text())
        otter = json.loads((student / "otter" / src.name).read_text())
        assert "{solution}" not in json.dumps(otter), f"{src.name}: a conceptual solution would reach students"
        assert otter["cells"][0]["cell_type"] == "raw" and _src(otter["cells"][0]).startswith("# ASSIGNMENT CONFIG")
        questions = re.findall(r"^# BEGIN QUESTION\nname: (\w+)", "\n".join(_src(c) for c in otter["cells"] if c["cell_type"] == "raw"), flags=re.M)
        exercises = [(sol["metadata"]["nbgrader"]["grade_id"], _src(check).strip()) for sol, check in _exercises(nb)]
        assert questions == [name for name, _ in exercises]
        tests = [_src(c) for c in otter["cells"] if c["cell_type"] == "code" and _src(c).startswith("# HIDDEN\n")]
        assert [re.search(r"(vb\.checks\.\w+\(\w+), strict=True\)", t).group(1) + ")" for t in tests] == [check for _, check in exercises]
        assert all("nbgrader" not in c.get("metadata", {}) for c in otter["cells"])


def test_otter_strips_our_solutions_into_our_stubs():
    """otter-grader's own solution stripping turns each converted solution into vaebook.authoring.assign's stub."""
    from otter.assign.solutions import replace_solutions

    for path in CHAPTERS:
        nb = json.loads(path.read_text())
        for sol, check in _exercises(nb):
            converted = assign.otter_notebook({"cells": [sol, check], "metadata": {}})
            cell = next(c for c in converted["cells"] if c["cell_type"] == "code" and "# BEGIN SOLUTION NO PROMPT" in _src(c))
            assert "\n".join(replace_solutions(_src(cell).split("\n"), "python")) == assign.strip_solution_code(_src(sol))
            ns = {"torch": torch, "math": __import__("math"), "F": torch.nn.functional}
            exec(_src(cell), ns)  # noqa: S102  the converted cell still defines the solution (the stub is a string)


def test_otter_notebook_needs_a_check_cell_after_each_solution():
    nb = json.loads(CHAPTERS[0].read_text())
    sol, _ = _exercises(nb)[0]
    with pytest.raises(ValueError, match=r"expected a check cell `vb.checks.NAME\(FUNCTION\)` after it, found none"):
        assign.otter_notebook({"cells": [sol], "metadata": {}})
    other = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "vb.checks.gaussian_kl(gaussian_kl)"}
    with pytest.raises(ValueError, match=r"expected it to define gaussian_kl, which the next check cell checks; it does not"):
        assign.otter_notebook({"cells": [sol, other], "metadata": {}})
