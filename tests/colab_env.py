"""Google Colab's runtime, rebuilt here from its published package list, and the chapters run in it.

    python -m tests.colab_env build                     # the environment (reused while it is current)
    python -m tests.colab_env dry-run                   # what the setup cell's pip install would change
    python -m tests.colab_env unit                      # the training step's and checkpoints' unit tests there
    python -m tests.colab_env nbval book [--prime-cache _build/.jupyter_cache]

**The environment** (``_build/colab-env``) is a virtual environment made with Python 3.13 (Colab's;
pyenv's where the machine has one, else the newest Python there is, and it says which) holding the
packages that Colab preinstalls and the course touches, at Colab's versions: pip installs them under
``tests/colab/constraints.txt``, which ``scripts/colab_constraints.py`` derives from Colab's
``pip-freeze.txt`` (torch 2.11.0, torchvision 0.26.0, IPython 7.34, ipywidgets 7.7.1, traitlets 5.7.1,
ipykernel 6.17.1, numpy 2.1.3, ...). Colab's torch is its CPU-only build (``2.11.0+cpu``); the
package registry serves the same release as a CUDA build, which runs on this CPU the same way and
brings 4.7 GB of CUDA libraries with it (pip's cache keeps them for the next build). No vaebook is in it.

**The unit tests** of the training step, the trainer and checkpoints (``tests/test_fused.py``,
``test_train.py``, ``test_checkpoints.py``) run there too, with Colab's torch and pytest, on this
checkout's library: the training step relies on parts of PyTorch that change between releases.

**The dry run** asks that environment's pip (Colab's pip 24.1.2) what the chapters' first cell,
``pip install "vaebook @ <source>"``, would install, with the source pointed at a wheel built from
this checkout, and lists every installed package it would replace. It must replace none.

**nbval** copies each chapter **alone** into its own temporary folder outside the repository, points
its first cell at the wheel (only the ``VAEBOOK_SOURCE = ...`` line changes; the cell's code runs as
written), uninstalls vaebook from the environment before each chapter, and runs the chapters with
the environment's Python as the kernel (pytest and nbval themselves run outside it, as Colab's
front end is outside the kernel). So every chapter installs vaebook through its own first cell, on
Colab's IPython, ipywidgets and numpy. Hidden check cells and the exercise checks (strict) fail the
run. With ``--prime-cache`` the executed notebooks, with their first cell's source put back as the
book has it, go into Jupyter Book's execution cache, so the book build renders these very outputs
instead of running every chapter a second time.
"""

from __future__ import annotations

import argparse
import hashlib
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
ENV = ROOT / "_build" / "colab-env"
WHEELS = ROOT / "_build" / "wheel"
CONSTRAINTS = ROOT / "tests" / "colab" / "constraints.txt"
KERNEL_NAME = "vaebook-colab"
COLAB_PYTHON = (3, 13)

# What Colab preinstalls and the course uses (vaebook's dependencies and the kernel's stack). pip
# resolves their own dependencies under the same constraints, so the environment holds the whole
# closure at Colab's versions.
PREINSTALLED = (
    "pip", "torch", "torchvision", "numpy", "scipy", "matplotlib", "scikit-learn", "scikit-image",
    "mlxtend", "tqdm", "pillow", "ipython", "ipykernel", "ipywidgets", "traitlets", "jupyter_client",
    "widgetsnbextension", "jupyterlab_widgets", "pytest",
)
# The unit tests that run in the environment as well (python -m tests.colab_env unit).
UNIT_TESTS = ("tests/test_fused.py", "tests/test_train.py", "tests/test_checkpoints.py")

SOURCE_LINE = re.compile(r'^VAEBOOK_SOURCE = ".*"$', flags=re.M)

# A pytest plugin, written next to the notebooks. Before each chapter's first cell it uninstalls
# vaebook from the environment, so that the chapter's own first cell installs it; it keeps nbval's
# outputs and writes each executed notebook back, so that the book can render what was tested.
COLLECT_PLUGIN = '''
import json, os, subprocess, time
import nbformat

_files = {}
_start = {}
_end = {}
_PYTHON = os.environ["VAEBOOK_COLAB_PYTHON"]


def pytest_runtest_setup(item):
    path = str(item.parent.fspath)
    if path not in _start:
        subprocess.run([_PYTHON, "-m", "pip", "uninstall", "--yes", "--quiet", "vaebook"], check=True,
                       capture_output=True)
        _start[path] = time.perf_counter()


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


# --------------------------------------------------------------------------- the environment
def version_of(python: Path) -> tuple[int, int]:
    """(major, minor) of the interpreter ``python``; (0, 0) where it does not run. floors_env uses it too."""
    out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True)
    if out.returncode != 0:
        return (0, 0)
    major, minor = out.stdout.split()
    return int(major), int(minor)


def python_candidates() -> list[Path]:
    """Interpreters on this machine that could make an environment: pyenv's versions, then the PATH's."""
    found = []
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    try:
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    for root in filter(None, roots):
        found += sorted(Path(root).glob("versions/3.*/bin/python3"))
    for d in os.environ.get("PATH", "").split(os.pathsep):
        found += sorted(Path(d).glob("python3.[0-9]*"))
    return [p for p in dict.fromkeys(found) if p.is_file() and re.fullmatch(r"python3(\.\d+)?", p.name)]


def find_python() -> tuple[Path, str]:
    """Colab's Python (3.13) where this machine has one, else the newest Python 3 here: (path, why)."""
    versions = {p: version_of(p) for p in python_candidates()}
    versions = {p: v for p, v in versions.items() if v >= (3, 9)}
    if not versions:
        raise RuntimeError("no Python 3.9 or newer found (looked in pyenv's versions and on PATH)")
    exact = [p for p, v in versions.items() if v == COLAB_PYTHON]
    if exact:
        return exact[0], f"Python {'.'.join(map(str, COLAB_PYTHON))} at {exact[0]} (Colab's)"
    best = max(versions, key=versions.get)
    v = ".".join(map(str, versions[best]))
    return best, f"Python {v} at {best}: no Python {'.'.join(map(str, COLAB_PYTHON))} here, so the newest there is"


def env_python() -> Path:
    return ENV / "bin" / "python"


def _fingerprint(python: Path) -> str:
    h = hashlib.sha256(CONSTRAINTS.read_bytes())
    h.update(" ".join(PREINSTALLED).encode())
    h.update(str(python.resolve()).encode())
    return h.hexdigest()[:16]


def run_pip(python: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    # PIP_CONSTRAINT empty: a machine-wide constraints file (some test machines cap torch) must not
    # stand between the environment and Colab's pins
    env = {**os.environ, "PIP_CONSTRAINT": ""}
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], text=True, env=env, **kwargs)


def build_env(quiet: bool = False) -> Path:
    """Make (or reuse) the Colab-like environment; return its Python."""
    base, why = find_python()
    stamp = ENV / ".colab-fingerprint"
    if stamp.is_file() and stamp.read_text() == _fingerprint(base) and env_python().exists():
        if not quiet:
            print(f"Colab environment {ENV} is current ({why})", flush=True)
        return env_python()
    print(f"building the Colab environment in {ENV} with {why}", flush=True)
    shutil.rmtree(ENV, ignore_errors=True)
    subprocess.run([str(base), "-m", "venv", str(ENV)], check=True)
    t0 = time.perf_counter()
    # pip first (Colab's 24.1.2, whose resolver the setup cell meets), then the rest under the pins
    run_pip(env_python(), "install", "--quiet", "-c", str(CONSTRAINTS), "pip", check=True, stderr=subprocess.DEVNULL)
    out = run_pip(env_python(), "install", "--quiet", "-c", str(CONSTRAINTS), *PREINSTALLED, capture_output=True)
    if out.returncode != 0:
        raise RuntimeError(f"installing Colab's packages failed:\n{pip_errors(out.stderr)}")
    kernel_dir = ENV / "share" / "jupyter" / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(env_python()), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like Python",
        "language": "python",
        # the debugger's warning about frozen modules on Python 3.11+ goes to the kernel's log, not to cells;
        # silence it all the same
        "env": {"PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    stamp.write_text(_fingerprint(base))
    print(f"  installed in {time.perf_counter() - t0:.0f} s: {describe_env()}", flush=True)
    return env_python()


def pip_errors(stderr: str) -> str:
    # this machine's pip configuration names local package folders that may be missing: not errors
    return "\n".join(line for line in stderr.splitlines() if "is ignored: it is neither" not in line)


def installed() -> dict[str, str]:
    """``{normalized name: version}`` of every distribution in the environment."""
    out = run_pip(env_python(), "list", "--format=json", capture_output=True, check=True)
    return {normalize_name(d["name"]): d["version"] for d in json.loads(out.stdout)}


def normalize_name(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503): lower case, runs of -, _ and . as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def describe_env() -> str:
    have = installed()
    py = subprocess.run([str(env_python()), "-c", "import platform; print(platform.python_version())"],
                        capture_output=True, text=True).stdout.strip()
    keys = ("torch", "ipython", "ipywidgets", "traitlets", "ipykernel", "numpy", "matplotlib")
    return f"Python {py}, " + ", ".join(f"{k} {have.get(k, '?')}" for k in keys)


def jupyter_env() -> dict[str, str]:
    """Environment variables that let Jupyter tools outside the environment find its kernel."""
    share = str(ENV / "share" / "jupyter")
    path = os.pathsep.join(filter(None, [share, os.environ.get("JUPYTER_PATH")]))
    return {**os.environ, "JUPYTER_PATH": path}


# --------------------------------------------------------------------------- the wheel and the setup cell
def build_wheel() -> Path:
    shutil.rmtree(WHEELS, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(WHEELS), str(ROOT)],
        check=True, stderr=subprocess.DEVNULL,
    )
    wheels = sorted(WHEELS.glob("vaebook-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one vaebook wheel in {WHEELS}, found {wheels}")
    return wheels[0]


def point_setup_cell_at(source: str, target: str) -> str:
    """The setup cell with its ``VAEBOOK_SOURCE`` set to ``target`` (a wheel's file URL): nothing else changes."""
    new, n = SOURCE_LINE.subn(f'VAEBOOK_SOURCE = "{target}"', source)
    if n != 1:
        raise ValueError(f"the setup cell must assign VAEBOOK_SOURCE on exactly one line, found {n}")
    return new


def _first_code_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def dry_run(wheel: Path) -> dict:
    """What ``pip install "vaebook @ <wheel>"`` would do in the environment: ``{"replaced": [...], "added": [...]}``.

    ``replaced`` lists ``(name, installed version, new version)`` for every installed package it would
    change; ``added`` lists ``(name, version)`` for packages the environment does not have.
    """
    have = installed()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        out = run_pip(env_python(), "install", "--dry-run", "--quiet", "--report", str(report),
                   f"vaebook @ {wheel.resolve().as_uri()}", capture_output=True)
        if out.returncode != 0:
            raise RuntimeError(f"pip's dry run failed:\n{pip_errors(out.stderr)}")
        items = json.loads(report.read_text())["install"]
    replaced, added = [], []
    for item in items:
        name, version = normalize_name(item["metadata"]["name"]), item["metadata"]["version"]
        if name in have:
            replaced.append((name, have[name], version))
        elif name != "vaebook":
            added.append((name, version))
    return {"replaced": replaced, "added": added, "would_install": [normalize_name(i["metadata"]["name"]) for i in items]}


# --------------------------------------------------------------------------- nbval
def prime_cache(cache_path: Path, executed: dict[Path, Path], seconds: dict[Path, float]) -> None:
    """Store executed notebooks in Jupyter Book's cache under the source notebooks' paths.

    The cache matches a notebook by its code cells' sources, so the executed copy gets its first
    cell's source back as the book has it (the run pointed that cell at the wheel instead; its
    output is empty either way).
    """
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_path))
    for source, done in executed.items():
        nb = nbformat.read(str(done), as_version=4)
        original = nbformat.read(str(source), as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        first.source = next(c for c in original.cells if c.cell_type == "code").source
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(source), data={"execution_seconds": seconds.get(source)}),
            check_validity=False,
            overwrite=True,
        )


def run_nbval(folder: Path, prime: Path | None, timeout: int) -> int:
    notebooks = sorted(p for p in folder.glob("*.ipynb") if not p.name.endswith(".executed.ipynb"))
    if not notebooks:
        print(f"no notebooks in {folder}", file=sys.stderr)
        return 2
    python = build_env()
    wheel = build_wheel()
    work = Path(tempfile.mkdtemp(prefix="vaebook-colab-"))
    try:
        copies = {}
        for nb_path in notebooks:
            d = work / nb_path.stem
            d.mkdir()
            nb = json.loads(nb_path.read_text(encoding="utf-8"))
            cell = _first_code_cell(nb)
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = point_setup_cell_at(src, wheel.resolve().as_uri())
            (d / nb_path.name).write_text(json.dumps(nb, indent=1), encoding="utf-8")  # alone, nothing beside it
            copies[nb_path] = d / nb_path.name
        (work / "conftest.py").write_text(COLLECT_PLUGIN)
        print(f"Colab-like run of {len(notebooks)} chapter(s) in {work}: {describe_env()}; "
              f"each chapter's first cell installs {wheel.name}", flush=True)
        env = dict(jupyter_env(), VAEBOOK_PROGRESS="0", VAEBOOK_STRICT_CHECKS="1", PYTHONDONTWRITEBYTECODE="1",
                   VAEBOOK_COLAB_PYTHON=str(python))
        env.pop("PYTHONPATH", None)
        cmd = [
            sys.executable, "-m", "pytest", "--nbval-lax", f"--nbval-cell-timeout={timeout}",
            f"--nbval-kernel-name={KERNEL_NAME}", "-p", "no:cacheprovider", "-q", "--durations=0",
            "--rootdir", str(work), *[str(copies[nb].relative_to(work)) for nb in notebooks],
        ]
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=work, env=env).returncode
        report = json.loads((work / "nbval-report.json").read_text()) if (work / "nbval-report.json").exists() else {}
        print(f"\nnbval finished in {time.perf_counter() - t0:.0f} s; per chapter (budget 60 s each on 2 cores):")
        seconds = {}
        for nb in notebooks:
            r = report.get(str(copies[nb]), {})
            if "seconds" in r:
                seconds[nb] = r["seconds"]
                print(f"  {nb.name:<32} {r['seconds']:6.1f} s  {'FAILED' if r['failed'] else 'ok'}")
        where = subprocess.run([str(python), "-c", "import vaebook; print(vaebook.__file__)"], cwd=work,
                               capture_output=True, text=True).stdout.strip()
        if rc == 0 and not Path(where or "/").resolve().is_relative_to(ENV.resolve()):
            print(f"vaebook was imported from {where!r}, not from the environment's own install", file=sys.stderr)
            return 1
        executed = {nb: copies[nb].with_name(nb.stem + ".executed.ipynb") for nb in notebooks}
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


def run_unit(extra: list[str]) -> int:
    """``UNIT_TESTS`` under the environment's Python and pytest, importing vaebook from this checkout."""
    python = build_env(quiet=True)
    print(f"unit tests in the Colab environment ({describe_env()}): {' '.join(UNIT_TESTS)}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [str(python), "-m", "pytest", *UNIT_TESTS, "-q", "-p", "no:cacheprovider", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.colab_env", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build", help="make the Colab-like environment, or say that it is current")
    sub.add_parser("dry-run", help="what the setup cell's pip install would change in it")
    u = sub.add_parser("unit", help="the training step's, trainer's and checkpoints' unit tests there")
    u.add_argument("pytest_args", nargs="*", help="more arguments for pytest")
    n = sub.add_parser("nbval", help="run every chapter in FOLDER there, each alone, from its own first cell")
    n.add_argument("folder", type=Path)
    n.add_argument("--prime-cache", type=Path, default=None, help="store executed notebooks in this jupyter-cache")
    n.add_argument("--timeout", type=int, default=300, help="per-cell timeout in seconds")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        build_env()
        print(describe_env())
        return 0
    if args.cmd == "unit":
        return run_unit(args.pytest_args)
    if args.cmd == "dry-run":
        build_env(quiet=True)
        result = dry_run(build_wheel())
        print(json.dumps(result, indent=1))
        return 1 if result["replaced"] else 0
    return run_nbval(args.folder.resolve(), args.prime_cache.resolve() if args.prime_cache else None, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
