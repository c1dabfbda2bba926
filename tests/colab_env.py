"""Run notebooks the way Colab meets them: each alone, against vaebook installed from a wheel.

    python -m tests.colab_env nbval book [--prime-cache _build/.jupyter_cache] [--lax-checks]

1. Build a wheel of vaebook from this checkout.
2. Make an environment that "already has torch", as Colab does: a fresh venv whose site-packages
   sees the project's .venv packages (torch, numpy, nbval, ...) through a path entry, but **not**
   its editable vaebook, and install the wheel into it (not editable).
3. Copy each notebook **alone** into its own temporary directory outside the repository.
4. Run nbval over them there, with the environment's Python as the kernel. Hidden check cells and
   (unless ``--lax-checks``) exercise checks in strict mode fail the run.

A chapter that reads a file beside it in the repository, or imports vaebook from the source tree,
fails here. With ``--prime-cache``, the executed notebooks are stored in Jupyter Book's execution
cache, so the book build that follows renders these very outputs instead of running every chapter
a second time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = ROOT / "_build" / "colab-env"
WHEELS = ROOT / "_build" / "wheel"

# A pytest plugin, written next to the notebooks: it keeps nbval's outputs and writes each
# executed notebook back, so that the book can render exactly what was tested.
COLLECT_PLUGIN = '''
import json, time
import nbformat

_files = {}
_start = {}
_end = {}


def pytest_runtest_setup(item):
    _start.setdefault(str(item.parent.fspath), time.perf_counter())


def pytest_runtest_teardown(item):
    _end[str(item.parent.fspath)] = time.perf_counter()


def pytest_runtest_makereport(item, call):
    if call.when != "call" or not hasattr(item, "cell"):
        return
    outputs = getattr(item, "test_outputs", None)
    if outputs is None:
        return
    entry = _files.setdefault(str(item.parent.fspath), {"nb": item.parent.nb, "failed": False, "n": 0})
    entry["n"] += 1
    item.cell.outputs = [nbformat.from_dict(dict(o)) for o in outputs]
    item.cell.execution_count = entry["n"]
    for o in item.cell.outputs:
        if o.get("output_type") == "execute_result":
            o["execution_count"] = entry["n"]
    if call.excinfo is not None:
        entry["failed"] = True


def pytest_sessionfinish(session, exitstatus):
    report = {}
    for path, entry in _files.items():
        if not entry["failed"]:
            nbformat.write(entry["nb"], path.replace(".ipynb", ".executed.ipynb"))
        report[path] = {"failed": entry["failed"], "seconds": _end.get(path, 0.0) - _start.get(path, 0.0)}
    with open("nbval-report.json", "w") as f:
        json.dump(report, f)
'''


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    )
    return Path(out.stdout.strip())


def build_wheel() -> Path:
    shutil.rmtree(WHEELS, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(WHEELS), str(ROOT)],
        check=True,
    )
    wheels = sorted(WHEELS.glob("vaebook-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one vaebook wheel in {WHEELS}, found {wheels}")
    return wheels[0]


def make_env(wheel: Path) -> Path:
    """A venv that sees the project's packages but gets vaebook from ``wheel`` only."""
    shutil.rmtree(ENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(ENV)], check=True)
    python = ENV / "bin" / "python"
    site = _site_packages(python)
    base = Path(sysconfig.get_paths()["purelib"])  # this (.venv) interpreter's site-packages
    # A path entry, not a site dir: .venv's own .pth files (the editable vaebook) are not run.
    (site / "_colab_base_packages.pth").write_text(str(base) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
    )
    return python


def check_isolation(python: Path, workdir: Path) -> str:
    """vaebook must come from the wheel in the environment, never from the checkout."""
    out = subprocess.run(
        [str(python), "-c", "import vaebook, torch; print(vaebook.__file__); print(torch.__version__)"],
        check=True, capture_output=True, text=True, cwd=workdir,
    )
    where, torch_version = out.stdout.split()
    if not Path(where).resolve().is_relative_to(ENV.resolve()):
        raise RuntimeError(f"vaebook was imported from {where}, not from the wheel installed in {ENV}")
    return f"vaebook from {where} (wheel), torch {torch_version} (preinstalled)"


def prime_cache(cache_path: Path, executed: dict[Path, Path], seconds: dict[Path, float]) -> None:
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_path))
    for source, done in executed.items():
        nb = nbformat.read(str(done), as_version=4)
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(source), data={"execution_seconds": seconds.get(source)}),
            check_validity=False,
            overwrite=True,
        )


def verify_student_checks(executed: dict[Path, Path]) -> list[str]:
    """In executed student notebooks, every check cell must say "not yet implemented" (no traceback)."""
    import nbformat

    problems = []
    for source, done in executed.items():
        nb = nbformat.read(str(done), as_version=4)
        n = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.source.lstrip().startswith("vb.checks."):
                continue
            n += 1
            text = "".join(
                o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", [])
            )
            if "not yet implemented" not in text:
                problems.append(f"{source.name}, cell {i}: the check did not report 'not yet implemented' (got {text[:200]!r})")
        if n == 0:
            problems.append(f"{source.name}: no check cells")
    return problems


def run_nbval(folder: Path, prime: Path | None, lax_checks: bool, timeout: int, student: bool = False) -> int:
    notebooks = sorted(p for p in folder.glob("*.ipynb") if not p.name.endswith(".executed.ipynb"))
    if not notebooks:
        print(f"no notebooks in {folder}", file=sys.stderr)
        return 2
    wheel = build_wheel()
    python = make_env(wheel)
    work = Path(tempfile.mkdtemp(prefix="vaebook-colab-"))
    try:
        copies = {}
        for nb in notebooks:
            d = work / nb.stem
            d.mkdir()
            shutil.copy2(nb, d / nb.name)  # alone: nothing else from the repository comes along
            copies[nb] = d / nb.name
        (work / "conftest.py").write_text(COLLECT_PLUGIN)
        print(f"Colab-like run of {len(notebooks)} notebook(s) in {work}: {check_isolation(python, work)}", flush=True)
        env = dict(os.environ, VAEBOOK_PROGRESS="0", VAEBOOK_STRICT_CHECKS="0" if lax_checks else "1", PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        cmd = [
            str(python), "-m", "pytest", "--nbval-lax", f"--nbval-cell-timeout={timeout}", "-p", "no:cacheprovider",
            "-q", "--durations=0", "--rootdir", str(work), *[str(copies[nb].relative_to(work)) for nb in notebooks],
        ]
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=work, env=env).returncode
        report = json.loads((work / "nbval-report.json").read_text()) if (work / "nbval-report.json").exists() else {}
        print(f"\nnbval finished in {time.perf_counter() - t0:.0f} s; per notebook (limit 60 s each on 2 cores):")
        seconds = {}
        for nb in notebooks:
            r = report.get(str(copies[nb]), {})
            if "seconds" in r:
                seconds[nb] = r["seconds"]
                print(f"  {nb.name:<32} {r['seconds']:6.1f} s  {'FAILED' if r['failed'] else 'ok'}")
        executed = {nb: copies[nb].with_name(nb.stem + ".executed.ipynb") for nb in notebooks}
        if rc == 0 and student:
            problems = verify_student_checks(executed)
            for p in problems:
                print(p, file=sys.stderr)
            if problems:
                return 1
            print(f"all check cells of the {len(executed)} student notebook(s) report 'not yet implemented'")
        if rc == 0 and prime is not None:
            missing = [p for p in executed.values() if not p.exists()]
            if missing:
                raise RuntimeError(f"nbval passed but these executed notebooks were not written: {missing}")
            prime_cache(prime, executed, seconds)
            stamp = prime.parent / ".vaebook-library-stamp"
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
            print(f"stored {len(executed)} executed notebook(s) in {prime}")
        return rc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.colab_env", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("nbval", help="run nbval over every notebook in FOLDER, each alone, against a vaebook wheel")
    n.add_argument("folder", type=Path)
    n.add_argument("--prime-cache", type=Path, default=None, help="store executed notebooks in this jupyter-cache")
    n.add_argument("--lax-checks", action="store_true", help="exercise stubs report 'not yet implemented' instead of failing")
    n.add_argument("--student", action="store_true", help="student notebooks: lax checks, and every check must report 'not yet implemented'")
    n.add_argument("--timeout", type=int, default=300, help="per-cell timeout in seconds")
    args = ap.parse_args(argv)
    return run_nbval(
        args.folder.resolve(),
        args.prime_cache.resolve() if args.prime_cache else None,
        args.lax_checks or args.student,
        args.timeout,
        student=args.student,
    )


if __name__ == "__main__":
    sys.exit(main())
