"""The lowest versions vaebook declares, installed together, and the unit tests run there.

    python -m tests.floors_env          # build _build/floors-env (reused while current), run the unit tests
    python -m tests.floors_env --pins   # only print the pins

``pyproject.toml`` declares ranges (``torch>=2.6``, ``numpy>=1.24``, ...). A range is a promise that
every version in it works, so the lowest end of each range gets one run of the unit tests: every
``name>=X`` of ``[project] dependencies`` is pinned to ``name==X`` (read from ``pyproject.toml`` each
time, so a floor cannot move without this run seeing it), installed into a fresh environment with
Python 3.11, and the tests import vaebook from this checkout (``PYTHONPATH``), so that nothing
moves the pins. The newest releases are what ``.venv`` holds (``make unit``), up to what the
machine's pip allows (some test machines cap torch at 2.14.1).

The test tools come at their newest releases that live with the pins. nbgrader and otter-grader do
not: they need IPython >= 8.10 and ipywidgets >= 8.1.5, above vaebook's floors (7.34 and 7.7, Colab's
versions). They are instructors' tools, not vaebook's dependencies, so the four tests that run them
are left out here (``GRADER_TESTS``); ``make unit`` runs them with the tools installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.colab_env import normalize_name, pip_errors, python_candidates, run_pip, version_of

ROOT = Path(__file__).resolve().parents[1]
ENV = ROOT / "_build" / "floors-env"
PYTHON = (3, 11)
TOOLS = ("pytest", "hypothesis", "nbformat", "nbclient", "ipykernel", "myst-nb", "packaging")
GRADER_TESTS = (
    "tests/test_assign.py::test_nbgrader_config_sets_the_timeout_the_instructors_page_states",
    "tests/test_assign.py::test_otter_strips_our_solutions_into_our_stubs",
    "tests/test_checks.py::test_check_cells_in_a_real_kernel_show_no_result_and_nbgrader_grades_them",
    "tests/test_oracles.py::test_solution_stripper_matches_nbgraders_clear_solutions",
)
MARKERS = "not browser and not colab"  # as make unit


def floors(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """``name==X`` for every ``name>=X`` among the project's dependencies; an error for any other form."""
    import tomllib

    pins = []
    for dep in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        m = re.fullmatch(r"\s*([A-Za-z0-9][\w.-]*)\s*>=\s*([\w.]+)\s*", dep)
        if not m:
            raise ValueError(f"pyproject.toml dependency {dep!r}: expected the form 'name>=version', which has one lowest version")
        pins.append(f"{m.group(1)}=={m.group(2)}")
    return pins


def find_python() -> Path:
    for p in [Path(sys.executable), *python_candidates()]:
        if version_of(p) == PYTHON:
            return p
    raise RuntimeError(f"no Python {'.'.join(map(str, PYTHON))} found (looked at this Python, pyenv's versions and PATH)")


def build_env() -> Path:
    """Make (or reuse) the environment with the floors; return its Python."""
    pins, base = floors(), find_python()
    python = ENV / "bin" / "python"
    stamp = ENV / ".floors-fingerprint"
    key = hashlib.sha256(" ".join([*pins, *TOOLS, str(base)]).encode()).hexdigest()[:16]
    if stamp.is_file() and stamp.read_text() == key and python.exists():
        print(f"floors environment {ENV} is current", flush=True)
    else:
        print(f"building the floors environment in {ENV} with {base}: {' '.join(pins)}", flush=True)
        shutil.rmtree(ENV, ignore_errors=True)
        subprocess.run([str(base), "-m", "venv", str(ENV)], check=True)
        t0 = time.perf_counter()
        out = run_pip(python, "install", "--quiet", *pins, *TOOLS, capture_output=True)
        if out.returncode != 0:
            raise RuntimeError(f"installing the floors failed:\n{pip_errors(out.stderr)}")
        stamp.write_text(key)
        print(f"  installed in {time.perf_counter() - t0:.0f} s", flush=True)
    from packaging.version import Version

    have = {}
    for line in run_pip(python, "freeze", capture_output=True, check=True).stdout.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            have[normalize_name(name)] = Version(version)
    wrong = [p for p in pins if have.get(normalize_name(p.split("==")[0])) != Version(p.split("==")[1])]
    if wrong:
        raise RuntimeError(f"the floors environment does not hold {wrong}")
    return python


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.floors_env", description=__doc__.splitlines()[0])
    ap.add_argument("--pins", action="store_true", help="print the pins and stop")
    ap.add_argument("pytest_args", nargs="*", help="more arguments for pytest")
    args = ap.parse_args(argv)
    if args.pins:
        print("\n".join(floors()))
        return 0
    python = build_env()
    print(f"unit tests at the floors: {' '.join(floors())}, Python {'.'.join(map(str, PYTHON))}", flush=True)
    cmd = [str(python), "-m", "pytest", "tests", "-m", MARKERS, "-q", "-p", "no:cacheprovider",
           *[f"--deselect={t}" for t in GRADER_TESTS], *args.pytest_args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
