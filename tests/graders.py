"""Grade the chapters with the real graders, running the instructors' page's commands as written.

    python -m tests.graders nbgrader [--all] [--student-book _build/student]
    python -m tests.graders otter

Both read their commands from the fenced blocks of ``book/instructors.md`` named ``grading-...``
(``{code-block} bash`` with a ``:name:``) and run them, each with ``bash``, in a scratch folder that
holds a copy of the book (``book/``, ``_config.yml``, ``_toc.yml``), as a clone of the repository
would. The graders run with their default configuration and without ``VAEBOOK_STRICT_CHECKS``.

``nbgrader``: after ``grading-student-versions`` and ``grading-nbgrader-release``, the released
notebooks must have the same code as the student notebooks. Then three submissions per chapter go
into ``submitted/``: the released stubs (``stubs``), the book's solutions (``solutions``) and the
solutions with one planted mistake (``mistake``, from :data:`PLANTED`). The stubs of every chapter
are graded; the other two only for :data:`QUICK`, or for every chapter with ``--all`` (what
``make graders`` runs). ``grading-nbgrader-autograde`` autogrades and exports; the scores in
nbgrader's ``grades.csv`` must be 0 for the stubs, full marks for the solutions and one point less
for the planted mistake. In the autograded stubs (real executed student notebooks), no cell but a
check cell may show an error, and every check cell must say "not yet implemented". With
``--student-book``, they become the outputs of the student book: the student folder is moved there
and the stubs' outputs are stored in its execution cache (``_build/.jupyter_cache``), where the
student book's build finds them instead of running every chapter again.

``otter``: ``grading-otter-assign`` on :data:`OTTER_CHAPTER`, whose student notebook must have the
same code as ours; then ``grading-otter-run`` once for each submission (the stubs, the solutions,
the planted mistake) saved as ``submission.ipynb``. The stubs score 0 with "not yet implemented"
in otter's output, the planted mistake loses its point with the check's hint shown, the solutions
score full marks.
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "instructors.md"
BUILD = ROOT / "_build"

# The two shortest chapters with coding exercises (about 5 s and 10 s on a 2-core CPU): the ones
# whose solutions and planted mistakes go through nbgrader in `make test`.
QUICK = ("00_setup", "07_reparametrization")
OTTER_CHAPTER = "07_reparametrization"  # the chapter the page's otter commands name
STUDENTS = ("stubs", "solutions", "mistake")

# One planted mistake per chapter: (exercise, text in its solution, what replaces it, how the hint
# the check must give begins). Each is a slip a student makes: a sign slip, a missing 1/2, an average
# for a sum, ... Each replacement must apply exactly once.
PLANTED: dict[str, tuple[str, str, str, str]] = {
    "00_setup": ("class_means", "x[y == d].mean(0)", "x.mean(0)", "average within each class"),
    "01_autoencoders": ("reconstruction_error", ".sum(dim=1)", ".mean(dim=1)", "average over pixels gives the mean"),
    "02_denoising": ("gaussian_noise_pairs", "return noisy, x", "return x, noisy", "return the pair in the order (noisy input, clean target)"),
    "02_denoising_photographs": ("square_symmetries", "x.flip(3)", "x.flip(1)", "mirror along a pixel dimension"),
    "03_superresolution": ("psnr", "10 * torch.log10", "20 * torch.log10", "use 10 log10 of a ratio of powers"),
    "04_ae_simulation": ("code_statistics", "z.std(dim=0)", "z.var(dim=0)", "return the standard deviation, not the variance"),
    "05_dlvm": ("bernoulli_log_likelihood", "x * logits - F.softplus(logits)", "F.softplus(logits) - x * logits", "a log-likelihood is the negative"),
    "06_elbo": ("elbo", "return recon - kl", "return recon + kl", "subtract the KL term"),
    "07_reparametrization": ("gaussian_kl", "return 0.5 * (", "return (", "a factor 1/2 is missing"),
    "08_vae": ("importance_log_likelihood", " - math.log(log_w.shape[0])", "", "average the weights"),
    "10_iwae": ("iwae_loss", " - math.log(k)", "", "average the k weights"),
    "12_rate_distortion": ("calibrated_gaussian_nll", "c = err.mean()", "c = err.mean(1)", "one variance for the whole batch"),
    "13_diffusion": ("diffusion_kl", "var_q = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta", "var_q = beta", "the forward posterior's variance is beta~_t"),
    "14_labels": ("unlabelled_bound", "- (q * log_q).sum(-1)", "+ (q * log_q).sum(-1)", "the entropy is -sum_y q log q"),
    "15_discrete_codes": ("nearest_code", " + codebook.pow(2).sum(1)", "", "the squared distance ||z - e||^2"),
    "16_latent_diffusion": ("latent_scale", "(z - z_bar).pow(2).mean().sqrt()", "z.pow(2).mean().sqrt()", "sigma_hat is the spread about z_bar"),
    "11_vae_failures": ("free_bits_kl", "kl.mean(dim=0).clamp_min(lam).sum()", "kl.clamp_min(lam).mean(dim=0).sum()", "floor the batch average of each coordinate"),
    "09_vae_generation": ("slerp", "torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1", "torch.sin(t * omega) * z0 + torch.sin((1 - t) * omega) * z1", "start at z0 and end at z1"),
}

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_BLOCK = re.compile(r"^```\{code-block\} bash\n:name: (grading-[\w-]+)\n(.*?)\n```$", flags=re.M | re.S)


# --------------------------------------------------------------------------- the page's commands
def page_blocks(page: Path = PAGE) -> dict[str, str]:
    """The page's named command blocks, ``{name: script}``."""
    blocks: dict[str, str] = {}
    for name, script in _BLOCK.findall(page.read_text(encoding="utf-8")):
        if name in blocks:
            raise ValueError(f"{page}: two command blocks are named {name!r}")
        blocks[name] = script
    return blocks


def _block(blocks: dict[str, str], name: str) -> str:
    if name not in blocks:
        raise KeyError(f"{PAGE.relative_to(ROOT)} has no command block named {name!r} (found: {', '.join(sorted(blocks)) or 'none'})")
    return blocks[name]


def grading_env() -> dict[str, str]:
    """The environment of an instructor's shell: this interpreter's tools first, no strict checks."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("VAEBOOK_STRICT_CHECKS", None)  # graders must work without it
    env.pop("PYTHONPATH", None)
    env["VAEBOOK_PROGRESS"] = "0"  # no progress bars in the outputs the student book shows
    return env


def run_block(name: str, script: str, cwd: Path) -> str:
    """Run one of the page's blocks with bash in ``cwd``; stream and return its output."""
    print(f"\n$ # {name} (book/instructors.md), in {cwd}\n" + "\n".join("$ " + line for line in script.splitlines()), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=grading_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        print(line, end="", flush=True)
    rc = proc.wait()
    output = "".join(lines)
    if rc:
        raise RuntimeError(f"the page's block {name!r} exited with {rc}; its last lines:\n{''.join(lines[-30:])}")
    print(f"[{name}: {time.perf_counter() - t0:.0f} s]", flush=True)
    return output


def workspace(parent: Path) -> Path:
    """A scratch folder laid out like the repository, as far as the page's commands read it."""
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vaebook-graders-", dir=parent))
    shutil.copytree(ROOT / "book", work / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, work / name)
    return work


# --------------------------------------------------------------------------- notebooks
def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, nb: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _text(output: dict) -> str:
    t = output.get("text", "")
    return "".join(t) if isinstance(t, list) else t


def code_sources(nb: dict) -> list[str]:
    return [_src(c) for c in nb["cells"] if c["cell_type"] == "code"]


def is_check_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and _src(cell).lstrip().startswith("vb.checks.")


def _solution_id(cell: dict) -> str | None:
    grading = cell.get("metadata", {}).get("nbgrader", {})
    return grading.get("grade_id") if cell["cell_type"] == "code" and grading.get("solution") else None


def _without_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def planted_solution(chapter: str, source: str) -> str:
    """The solution ``source`` of :data:`PLANTED`'s exercise of ``chapter``, with its mistake planted."""
    _, old, new, _ = PLANTED[chapter]
    if source.count(old) != 1:
        raise ValueError(f"{chapter}: the planted mistake expects {old!r} once in the solution, found it {source.count(old)} times; update PLANTED in tests/graders.py")
    return source.replace(old, new)


def submission(released: dict, book: dict, chapter: str, mistake: bool = False) -> dict:
    """A student's answer: the released notebook with each stub replaced by the book's solution.

    With ``mistake``, :data:`PLANTED`'s exercise of the chapter gets its mistake.
    """
    solutions = {_solution_id(c): _without_markers(_src(c)) for c in book["cells"] if _solution_id(c)}
    nb = copy.deepcopy(released)
    answered = set()
    for cell in nb["cells"]:
        grade_id = _solution_id(cell)
        if grade_id is None:
            continue
        if grade_id not in solutions:
            raise ValueError(f"{chapter}: the released notebook has an exercise {grade_id!r} that the book lacks")
        source = solutions[grade_id]
        if mistake and grade_id == PLANTED[chapter][0]:
            source = planted_solution(chapter, source)
        cell["source"] = source
        answered.add(grade_id)
    if mistake and PLANTED[chapter][0] not in answered:
        raise ValueError(f"{chapter}: PLANTED names the exercise {PLANTED[chapter][0]!r}, which the chapter does not have")
    return nb


def cell_seconds(cell: dict) -> float | None:
    """How long a cell ran, from the timestamps nbclient records in its metadata."""
    ex = cell.get("metadata", {}).get("execution", {})
    try:
        start, end = (dt.datetime.fromisoformat(ex[k].replace("Z", "+00:00")) for k in ("iopub.execute_input", "shell.execute_reply"))
    except KeyError:
        return None
    return (end - start).total_seconds()


def run_seconds(nb: dict) -> tuple[float, float, int]:
    """(whole notebook, slowest cell, that cell's index) in seconds."""
    times = [(cell_seconds(c) or 0.0, i) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    slowest, index = max(times)
    return sum(t for t, _ in times), slowest, index


def stub_problems(chapter: str, nb: dict) -> list[str]:
    """In an executed stub notebook: errors outside check cells, or a check that did not say "not yet implemented"."""
    problems = []
    checks = 0
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        if is_check_cell(cell):
            checks += 1
            stderr = "".join(_text(o) for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr")
            if "not yet implemented" not in stderr:
                problems.append(f"{chapter}, cell {i} ({_src(cell).strip()}): the check did not say 'not yet implemented' on stderr; its outputs: {json.dumps(outputs)[:300]}")
        else:
            for o in outputs:
                if o.get("output_type") == "error":
                    problems.append(f"{chapter}, cell {i}: {o.get('ename')}: {o.get('evalue')} (only check cells may fail in the stubs)")
    if checks == 0:
        problems.append(f"{chapter}: no check cells")
    return problems


def prime_student_cache(cache_path: Path, student_book: Path, executed: dict[str, dict]) -> None:
    """Store each chapter's executed stubs as the outputs of the student book's notebook.

    The cache matches a notebook by its code cells (sources and cell metadata) and kernelspec, so the
    outputs are copied onto the student notebook itself (whose code cells the release must equal),
    and each chapter must then match its cache entry.
    """
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_path))
    for chapter, done in executed.items():
        path = student_book / f"{chapter}.ipynb"
        nb = nbformat.read(str(path), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        ran = [c for c in done["cells"] if c["cell_type"] == "code"]
        if [c.source for c in code] != [_src(c) for c in ran]:
            raise RuntimeError(f"{chapter}: the autograded notebook's code differs from {path}")
        for cell, other in zip(code, ran, strict=True):
            cell.outputs = [nbformat.from_dict(o) for o in other.get("outputs", [])]
            cell.execution_count = other.get("execution_count")
        if "widgets" in done.get("metadata", {}):
            nb.metadata["widgets"] = done["metadata"]["widgets"]
        total, _, _ = run_seconds(done)
        record = cache.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": total}), check_validity=False, overwrite=True)
        try:
            matched = cache.match_cache_notebook(nbformat.read(str(path), as_version=4))
        except KeyError:
            raise RuntimeError(f"{chapter}: the student notebook {path} does not match the outputs stored for it in {cache_path}") from None
        if matched.pk != record.pk:
            raise RuntimeError(f"{chapter}: {path} matches cache entry {matched.pk}, not the one just stored ({record.pk})")


def read_grades(path: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """nbgrader's export: ``{(chapter, student): (score, max_score)}``."""
    with path.open(newline="", encoding="utf-8") as f:
        return {(r["assignment"], r["student_id"]): (float(r["score"]), float(r["max_score"])) for r in csv.DictReader(f)}


def expected_score(student: str, max_score: float) -> float:
    return {"stubs": 0.0, "solutions": max_score, "mistake": max_score - 1}[student]


# --------------------------------------------------------------------------- nbgrader
def run_nbgrader(full: bool, student_book: Path | None, only: list[str] | None = None, parent: Path = BUILD) -> int:
    t_start = time.perf_counter()
    blocks = page_blocks()
    work = workspace(parent)
    try:
        run_block("grading-student-versions", _block(blocks, "grading-student-versions"), work)
        student = work / "student"
        course = student / "nbgrader"
        chapters = sorted(p.stem for p in (course / "source").iterdir() if p.is_dir())
        if only:
            if set(only) - set(chapters) or student_book is not None:
                print(f"--chapters: expected some of {chapters} and no --student-book, got {only}", file=sys.stderr)
                return 2
            chapters = [c for c in chapters if c in only]
        graded = chapters if full else [c for c in QUICK if c in chapters]  # solutions and a planted mistake
        missing = [c for c in graded if c not in PLANTED]
        if missing:
            print(f"no planted mistake for {', '.join(missing)}: add one to PLANTED in tests/graders.py", file=sys.stderr)
            return 1
        unknown = [c for c in QUICK if c not in chapters and not only]
        if unknown:
            print(f"QUICK names chapters the book does not have: {unknown}", file=sys.stderr)
            return 1
        run_block("grading-nbgrader-release", _block(blocks, "grading-nbgrader-release"), work)
        problems = []
        for c in chapters:
            released = _read(course / "release" / c / f"{c}.ipynb")
            if code_sources(released) != code_sources(_read(student / "book" / f"{c}.ipynb")):
                problems.append(f"{c}: nbgrader's release differs in its code from student/book/{c}.ipynb")
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1

        for c in chapters:
            released = _read(course / "release" / c / f"{c}.ipynb")
            book = _read(work / "book" / f"{c}.ipynb")
            _write(course / "submitted" / "stubs" / c / f"{c}.ipynb", released)
            if c in graded:
                _write(course / "submitted" / "solutions" / c / f"{c}.ipynb", submission(released, book, c))
                _write(course / "submitted" / "mistake" / c / f"{c}.ipynb", submission(released, book, c, mistake=True))
        t_grade = time.perf_counter()
        run_block("grading-nbgrader-autograde", _block(blocks, "grading-nbgrader-autograde"), work)
        grading_seconds = time.perf_counter() - t_grade

        grades = read_grades(course / "grades.csv")
        print("\nnbgrader's scores (grades.csv), default configuration:")
        print(f"  {'chapter':<24}" + "".join(f"{s:>12}" for s in STUDENTS) + "   run (stubs)  slowest cell")
        slowest_cell = (0.0, "")
        for c in chapters:
            row = []
            for s in STUDENTS:
                if s != "stubs" and c not in graded:
                    row.append(f"{'-':>12}")
                    continue
                if (c, s) not in grades:
                    problems.append(f"{c}: grades.csv has no score for {s!r}")
                    row.append(f"{'?':>12}")
                    continue
                score, max_score = grades[(c, s)]
                row.append(f"{score:>7g} / {max_score:g}")
                if score != expected_score(s, max_score):
                    problems.append(f"{c}: {s!r} scored {score:g} of {max_score:g}, expected {expected_score(s, max_score):g}")
            done = _read(course / "autograded" / "stubs" / c / f"{c}.ipynb")
            total, slowest, index = run_seconds(done)
            if slowest > slowest_cell[0]:
                slowest_cell = (slowest, f"{c}, cell {index}")
            print(f"  {c:<24}" + "".join(row) + f"   {total:8.1f} s  {slowest:6.1f} s (cell {index})")
            problems += stub_problems(c, done)
        for c, s in grades:
            if s not in STUDENTS:
                problems.append(f"grades.csv has an unexpected student {s!r} ({c})")
        print(f"slowest cell: {slowest_cell[0]:.1f} s ({slowest_cell[1]}); nbgrader's autograde took {grading_seconds:.0f} s")
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        print(f"all {len(chapters)} chapters: stubs 0, and for {', '.join(graded)}: solutions full marks, planted mistake one point less")

        if student_book is not None:
            executed = {c: _read(course / "autograded" / "stubs" / c / f"{c}.ipynb") for c in chapters}
            prime_student_cache(student / "_build" / ".jupyter_cache", student / "book", executed)
            if student_book.exists():
                shutil.rmtree(student_book)
            student_book.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(student), str(student_book))
            print(f"student book sources in {student_book}, with the autograded stubs stored in its execution cache")
        print(f"tests.graders nbgrader: {time.perf_counter() - t_start:.0f} s in all")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- otter-grader
def run_otter(parent: Path = BUILD) -> int:
    t_start = time.perf_counter()
    blocks = page_blocks()
    c = OTTER_CHAPTER
    for name in ("grading-otter-assign", "grading-otter-run"):
        if c not in _block(blocks, name):
            print(f"the page's block {name!r} does not name {c}, the chapter tests/graders.py grades with otter", file=sys.stderr)
            return 1
    work = workspace(parent)
    try:
        run_block("grading-student-versions", _block(blocks, "grading-student-versions"), work)
        run_block("grading-otter-assign", _block(blocks, "grading-otter-assign"), work)
        handed_out = sorted(work.glob(f"**/student/{c}.ipynb"))  # otter's student notebook (ours is student/book/)
        if len(handed_out) != 1:
            print(f"expected one student notebook written by otter assign, found {handed_out}", file=sys.stderr)
            return 1
        ours = _read(work / "student" / "book" / f"{c}.ipynb")
        if code_sources(_read(handed_out[0])) != code_sources(ours):
            print(f"otter's student notebook {handed_out[0].relative_to(work)} differs in its code from student/book/{c}.ipynb", file=sys.stderr)
            return 1
        book = _read(work / "book" / f"{c}.ipynb")
        exercise, _, _, hint = PLANTED[c]
        submissions = {"stubs": _read(handed_out[0]), "solutions": submission(ours, book, c), "mistake": submission(ours, book, c, mistake=True)}
        n_exercises = sum(1 for cell in ours["cells"] if _solution_id(cell))
        problems = []
        for student, nb in submissions.items():
            _write(work / "submission.ipynb", nb)
            (work / "results.json").unlink(missing_ok=True)
            printed = run_block(f"grading-otter-run ({student})", _block(blocks, "grading-otter-run"), work)
            tests = {t["name"]: t for t in _read(work / "results.json")["tests"]}
            score = sum(t.get("score", 0) for t in tests.values())
            possible = sum(t.get("max_score", 0) for t in tests.values())
            if possible != n_exercises:
                problems.append(f"{student}: otter graded {possible:g} points, the chapter has {n_exercises} exercises")
            if score != expected_score(student, possible):
                problems.append(f"{student}: otter scored {score:g} of {possible:g}, expected {expected_score(student, possible):g}")
            if student == "stubs":
                for name, t in tests.items():
                    if "not yet implemented" not in t["output"] or "not yet implemented" not in printed:
                        problems.append(f"stubs: otter's output for {name} does not say 'not yet implemented': {t['output']!r}")
            if student == "mistake":
                out = tests.get(exercise, {}).get("output", "")
                if f"Hint: {hint}" not in out or f"Hint: {hint}" not in printed or "CheckFailed" not in out:
                    problems.append(f"mistake: otter's output for {exercise} does not show the check's hint {hint!r}: {out!r}")
            print(f"otter, {student}: {score:g} / {possible:g}")
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        print(f"otter on {c}: stubs 0 ('not yet implemented'), planted mistake loses its point with the hint, solutions full marks; {time.perf_counter() - t_start:.0f} s")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.graders", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("nbgrader", help="the page's nbgrader commands over every chapter")
    n.add_argument("--all", action="store_true", help=f"grade the solutions and a planted mistake of every chapter (default: {', '.join(QUICK)})")
    n.add_argument("--student-book", type=Path, default=None, help="move the student folder here, its execution cache primed with the autograded stubs")
    n.add_argument("--chapters", nargs="+", default=None, help="submit only these chapters (a quick look; make test grades them all)")
    sub.add_parser("otter", help=f"the page's otter-grader commands on {OTTER_CHAPTER}")
    args = ap.parse_args(argv)
    if args.cmd == "nbgrader":
        return run_nbgrader(args.all, args.student_book.resolve() if args.student_book else None, args.chapters)
    return run_otter()


if __name__ == "__main__":
    sys.exit(main())
