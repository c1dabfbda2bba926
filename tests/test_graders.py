"""tests/graders.py, the runner of the real graders: the pieces it relies on, checked in seconds.

The graders themselves run in `make student-check` and `make graders` (python -m tests.graders).
"""

import json
import math
import re

import pytest
import torch

import vaebook as vb
from tests import graders
from vaebook import checks
from vaebook.authoring import assign

CHAPTERS = sorted((graders.ROOT / "book").glob("*.ipynb"))
PAGE_TEXT = graders.PAGE.read_text(encoding="utf-8")


def _src(cell):
    return graders._src(cell)


def _exercises(nb):
    return [c for c in nb["cells"] if graders._solution_id(c)]


def test_the_page_has_every_command_block_the_runner_runs():
    blocks = graders.page_blocks()
    assert set(blocks) == {
        "grading-student-versions", "grading-nbgrader-release", "grading-nbgrader-autograde",
        "grading-otter-assign", "grading-otter-run",
    }
    assert "python -m vaebook.authoring.assign book/ --out student/" in blocks["grading-student-versions"]
    assert "nbgrader autograde" in blocks["grading-nbgrader-autograde"] and "nbgrader export" in blocks["grading-nbgrader-autograde"]
    assert all(graders.OTTER_CHAPTER in blocks[n] for n in ("grading-otter-assign", "grading-otter-run"))
    # default configuration: nothing set on the command line or in the environment
    for name, script in blocks.items():
        assert "VAEBOOK_STRICT_CHECKS" not in script and "--Execute" not in script and "--config" not in script, name


def test_duplicate_block_names_are_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```{code-block} bash\n:name: grading-a\necho 1\n```\n\n```{code-block} bash\n:name: grading-a\necho 2\n```\n")
    with pytest.raises(ValueError, match="two command blocks are named 'grading-a'"):
        graders.page_blocks(page)


def test_the_page_gives_no_environment_variable_to_set_and_says_how_long_make_graders_takes():
    grading = PAGE_TEXT[PAGE_TEXT.index("## Student versions"):PAGE_TEXT.index("## How long each chapter takes")]
    assert "VAEBOOK_STRICT_CHECKS" not in grading
    assert re.search(r"`make graders`.*?takes about \d+ minutes", grading, flags=re.S), "the page must say how long make graders takes"


def test_every_chapter_with_an_exercise_has_a_planted_mistake():
    with_exercises = [p.stem for p in CHAPTERS if _exercises(json.loads(p.read_text()))]
    assert sorted(graders.PLANTED) == with_exercises
    assert set(graders.QUICK) <= set(with_exercises) and graders.OTTER_CHAPTER in with_exercises


def _imports(nb) -> str:
    lines = []
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            lines += [line for line in _src(c).splitlines() if re.match(r"(import|from) \w", line)]
    return "\n".join(lines)


@pytest.mark.parametrize("chapter", sorted(graders.PLANTED))
def test_each_planted_mistake_is_caught_by_its_check_with_its_hint(chapter, capsys):
    """The submissions the runner builds: the solutions pass, the planted mistake fails with the hint."""
    book = json.loads((graders.ROOT / "book" / f"{chapter}.ipynb").read_text())
    released = assign.student_notebook(book)
    exercise, _, _, hint = graders.PLANTED[chapter]
    for mistake in (False, True):
        nb = graders.submission(released, book, chapter, mistake=mistake)
        assert "NotImplementedError" not in json.dumps(nb) and graders.BEGIN not in json.dumps(nb)
        ns = {"vb": vb, "torch": torch, "math": math}
        exec(_imports(book), ns)  # noqa: S102 (our own notebooks)
        for cell in nb["cells"]:
            grade_id = graders._solution_id(cell)
            if grade_id is None:
                continue
            exec(_src(cell), ns)  # noqa: S102
            call = f"vb.checks.{grade_id}({grade_id})"
            if mistake and grade_id == exercise:
                with pytest.raises(checks.CheckFailed, match=re.escape(f"Hint: {hint}")):
                    eval(call, ns)
            else:
                eval(call, ns)
                assert capsys.readouterr().out.startswith("✓ ")


def test_a_planted_mistake_that_no_longer_applies_is_an_error():
    book = json.loads((graders.ROOT / "book" / "07_reparametrization.ipynb").read_text())
    with pytest.raises(ValueError, match=r"07_reparametrization: the planted mistake expects .* once in the solution, found it 0 times"):
        graders.planted_solution("07_reparametrization", "return 2 * x")
    assert graders.submission(assign.student_notebook(book), book, "07_reparametrization")  # and applies today


def _code(source, *outputs):
    return {"cell_type": "code", "source": source, "metadata": {}, "outputs": list(outputs)}


def _stream(name, text):
    return {"output_type": "stream", "name": name, "text": text}


def test_stub_problems_finds_errors_outside_checks_and_checks_that_said_something_else():
    ok = {"cells": [
        _code("x = 1", _stream("stderr", "OfflineDataWarning: ...\n")),
        _code("vb.checks.gaussian_kl(gaussian_kl)", _stream("stderr", "gaussian_kl: not yet implemented. ...\n")),
    ]}
    assert graders.stub_problems("ch", ok) == []
    bad = {"cells": [
        _code("y = gaussian_kl(mu, logvar)", {"output_type": "error", "ename": "NotImplementedError", "evalue": "", "traceback": []}),
        _code("vb.checks.gaussian_kl(gaussian_kl)", _stream("stdout", "✓ gaussian_kl: correct\n")),
    ]}
    problems = graders.stub_problems("ch", bad)
    assert len(problems) == 2
    assert "cell 0: NotImplementedError" in problems[0] and "only check cells may fail" in problems[0]
    assert "cell 1" in problems[1] and "did not say 'not yet implemented'" in problems[1]
    assert graders.stub_problems("ch", {"cells": [_code("x = 1")]}) == ["ch: no check cells"]


def test_cell_seconds_reads_nbclients_timestamps():
    cell = _code("x")
    cell["metadata"]["execution"] = {"iopub.execute_input": "2026-01-01T10:00:00.500000Z", "shell.execute_reply": "2026-01-01T10:00:03.000000Z"}
    assert graders.cell_seconds(cell) == 2.5
    assert graders.cell_seconds(_code("y")) is None
    assert graders.run_seconds({"cells": [cell, _code("y")]}) == (2.5, 2.5, 0)


def test_read_grades_reads_nbgraders_export(tmp_path):
    csv = tmp_path / "grades.csv"
    csv.write_text(
        "assignment,duedate,timestamp,student_id,last_name,first_name,email,raw_score,late_submission_penalty,score,max_score\n"
        "07_reparametrization,,,stubs,,,,0.0,0.0,0.0,2.0\n07_reparametrization,,,mistake,,,,1.0,0.0,1.0,2.0\n"
    )
    grades = graders.read_grades(csv)
    assert grades == {("07_reparametrization", "stubs"): (0.0, 2.0), ("07_reparametrization", "mistake"): (1.0, 2.0)}
    assert [graders.expected_score(s, 2.0) for s in graders.STUDENTS] == [0.0, 2.0, 1.0]
