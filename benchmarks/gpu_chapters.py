"""Run every chapter on a GPU, each in a fresh kernel, and record its time and its failing checks in one file.

Two steps, on two machines:

    python benchmarks/gpu_chapters.py --wheels .whl          # here: the wheels a bare GPU machine lacks
    python3 benchmarks/gpu_chapters.py --install .whl        # there: install them, run the chapters on CUDA

**Here**, ``--wheels DIR`` builds vaebook's own wheel from this checkout and downloads, for Python
3.12 on x86-64 Linux, every package the chapters need that the GPU machine's image does not hold
(:data:`ON_DEVICE`): nbclient, nbformat, ipykernel, jupyter_client, ipywidgets, mlxtend, and what
they need in turn, each at the version installed here. The machine reaches no package registry, so
the wheels travel with the checkout (``.whl/`` is ignored by git).

**There**, ``--install DIR`` installs those wheels into ``/tmp/site`` (``pip --target``, no
network), puts it on ``PYTHONPATH`` and runs the chapters. Each chapter runs as
``benchmarks/chapter_times.py`` runs it: in a fresh kernel started in ``book/``, progress bars off,
strict checks, on the offline digits (``$VAEBOOK_DATA`` names a folder without MNIST; where a name
lookup takes long to fail, the download that ``load_mnist`` tries first goes to a proxy that refuses
at once). In addition:

- ``$VAEBOOK_DEVICE`` is ``--device`` (``cuda`` by default), so :func:`vaebook.default_device`, and so
  every ``vb.fit`` of the chapter, trains there;
- every cell runs even after one fails, so a run reports every failing check of a chapter, not only
  the first; and one cell is added at the end (in memory: the notebook files are not changed) that
  reports the device the chapter trained on and the most GPU memory it used;
- each chapter has a time limit, and the whole run a budget (``--budget``, 540 s by default, the
  install included, to stay inside a 10-minute command): a chapter still running at its limit is
  stopped and recorded as timed out, and one not started by the end of the budget as not run;
- ``--jobs`` chapters run at a time (2 by default), each kernel with its share of the CPU cores.
  Their times are then those of chapters sharing the machine, not of a chapter alone.

It writes ``gpu_chapters.json`` and ``gpu_chapters.md`` into ``--out`` (``$OUT`` where that is set,
else ``_build/gpu_chapters``), after every chapter, so a run cut short keeps what it finished: the
device, torch and CUDA versions, and for each chapter its seconds, its status, and the index, error
and traceback of the first failing cell (and the index and error of every other). The executed
notebooks, their images left out, go into ``executed.tar.gz`` beside them.

Run the second step on the CPU to try it: ``python benchmarks/gpu_chapters.py --device cpu 00_setup``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SITE = Path("/tmp/site")
sys.path.insert(0, str(ROOT))
from tests.colab_env import normalize_name, pip_errors  # noqa: E402  (stdlib only: importable before the install)

# What the chapters need beyond vaebook's own dependencies: the kernel and the client that runs it.
KERNEL_STACK = ("nbclient", "nbformat", "ipykernel", "jupyter_client", "ipywidgets", "mlxtend")
TARGET_PYTHON = "3.12"  # the GPU machine's python3 (Python 3.12.3, /opt/torch/.venv)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
# The GPU machine's image ('cuda'), as its package list read on such a machine on 2026-11-17 gives
# it. Their wheels stay behind: the machine's own builds (torch 2.11.0 for CUDA 13 among them) are
# the ones to test, and a second copy of a package on PYTHONPATH would shadow the machine's.
ON_DEVICE = frozenset(normalize_name(n) for n in """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
    certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
    cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
    flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
    huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt
    jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
    linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
    mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba
    numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
    nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
    nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx
    onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
    orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client
    propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions
    pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning
    pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn
    sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
    tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers
    toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
    triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray
    xxhash yarl zipp
""".split())

STARTED = "GPU_CHAPTERS_STARTED"  # when the run began (time.time()), across --install's restart
STARTED_AT = float(os.environ.get(STARTED, time.time()))
MARKER = "GPU_CHAPTERS_PROBE "
PROBE = f'''
import json, torch, vaebook
print({MARKER!r} + json.dumps({{
    "default_device": str(vaebook.default_device()),
    "cuda_max_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
    "vaebook": vaebook.__file__,
}}))
'''
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --------------------------------------------------------------------------- here: the wheels
def _requirements(dist: importlib.metadata.Distribution, extras: tuple[str, ...] = ()) -> list[str]:
    """The names ``dist`` needs on the target (Python 3.12, Linux, x86-64), its ``extras`` included."""
    from packaging.requirements import Requirement

    env = {"python_version": TARGET_PYTHON, "python_full_version": TARGET_PYTHON + ".3", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    names = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)):
            names.append(req.name)
    return names


def closure(roots: list[str]) -> tuple[dict[str, str | None], set[str]]:
    """``{name: version}`` of every package the roots need, as installed here, less those on the
    device; and the names left to the device.

    A version is ``None`` where the package is not installed here (it is needed on Python 3.12 alone):
    pip then picks the newest release for 3.12.
    """
    need: dict[str, str | None] = {}
    on_device: set[str] = set()
    todo = list(roots)
    while todo:
        name = normalize_name(todo.pop())
        if name in ON_DEVICE:
            on_device.add(name)
        if name in need or name in ON_DEVICE or name == "vaebook":
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            need[name] = None
            continue
        need[name] = dist.version
        todo.extend(_requirements(dist))
    return need, on_device


def build_vaebook_wheel(folder: Path) -> Path:
    """vaebook's wheel, built from a clean copy of this checkout's package (a build/ folder may hold
    modules since deleted, which a wheel built in place would carry)."""
    for old in folder.glob("vaebook-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, tmp)
        shutil.copytree(ROOT / "vaebook", Path(tmp) / "vaebook", ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(folder), tmp],
                       check=True)
    (wheel,) = folder.glob("vaebook-*.whl")
    return wheel


def prepare_wheels(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    build_vaebook_wheel(folder)
    vaebook_deps = _requirements(importlib.metadata.distribution("vaebook"))
    need, on_device = closure([*KERNEL_STACK, *vaebook_deps])
    specs = [f"{name}=={version}" if version else name for name, version in sorted(need.items())]
    stale = [w for w in folder.glob("*.whl") if not w.name.startswith("vaebook-")
             and normalize_name(w.name.split("-")[0]) not in need]
    for w in stale:  # two versions of one package stop the whole install there
        w.unlink()
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    pip = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                          "--python-version", TARGET_PYTHON, "--implementation", "cp", *platforms, "-d", str(folder), *specs],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        sys.exit(f"pip download failed:\n{pip_errors(pip.stderr)}")
    wheels = sorted(folder.glob("*.whl"))
    total = sum(w.stat().st_size for w in wheels)
    for w in wheels:
        print(f"{w.stat().st_size / 2**20:7.2f} MiB  {w.name}")
    print(f"{len(wheels)} wheels, {total / 2**20:.1f} MiB in {folder}")
    print(f"left to the device's own packages: {', '.join(sorted(on_device))}")


# --------------------------------------------------------------------------- there: install, then run
def install(folder: Path) -> None:
    """Install the wheels of ``folder`` into /tmp/site, then run this script again with it on PYTHONPATH."""
    wheels = sorted(str(w) for w in folder.glob("*.whl"))
    if not wheels:
        sys.exit(f"--install: no wheels in {folder}; make them here first with: python benchmarks/gpu_chapters.py --wheels {folder}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
                    "--upgrade", "--target", str(SITE), *wheels], check=True)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), os.environ.get("PYTHONPATH")]))
    os.environ[STARTED] = str(STARTED_AT)  # the budget counts the install too
    argv = [a for i, a in enumerate(sys.argv) if a != "--install" and (i == 0 or sys.argv[i - 1] != "--install")]
    os.execv(sys.executable, [sys.executable, *argv])


def _differences(installed: Path, checkout: Path) -> list[str]:
    """Files of the installed vaebook that differ from (or are missing in) the checkout's, and modules it lacks."""
    def files(folder: Path, pattern: str) -> set[str]:
        return {str(f.relative_to(folder)) for f in folder.rglob(pattern) if f.is_file() and "__pycache__" not in f.parts}

    ours = files(installed, "*")
    differ = sorted(f for f in ours if not (checkout / f).is_file() or (checkout / f).read_bytes() != (installed / f).read_bytes())
    return differ + sorted(files(checkout, "*.py") - ours)


def check_vaebook_is_this_checkout(book: Path) -> str:
    """The vaebook that the kernels import (from ``book``, with this PYTHONPATH), which must be this checkout's code."""
    out = subprocess.run([sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('vaebook').origin)"],
                         cwd=book, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"vaebook is not importable from book/: {out.stderr.strip().splitlines()[-1:]}")
    installed = Path(out.stdout.strip()).parent
    differ = _differences(installed, ROOT / "vaebook") if installed != ROOT / "vaebook" else []
    if differ:
        sys.exit(f"the vaebook at {installed} is not this checkout's (differing: {', '.join(differ[:5])}); "
                 "rebuild its wheel here with --wheels before the run")
    return str(installed)


def offline_data_env(data_root: str | None, scratch: Path) -> tuple[dict[str, str], str]:
    """``$VAEBOOK_DATA`` and how MNIST's download will fail, quickly, on a machine with no network."""
    if data_root:
        return {"VAEBOOK_DATA": str(Path(data_root).resolve())}, f"MNIST from {data_root}"
    env = {"VAEBOOK_DATA": str(scratch / "no-mnist-here")}
    t0 = time.perf_counter()
    try:
        socket.getaddrinfo("yann.lecun.com", 443)
        resolves = True
    except OSError:
        resolves = False
    seconds = time.perf_counter() - t0
    if seconds > 0.5:
        # load_mnist tries a download first: where names take long to fail, a proxy that refuses
        # at once makes it give up without resolving them
        env.update(https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9", no_proxy="")
    how = (f"offline digits; a name lookup {'resolved' if resolves else 'failed'} in {seconds:.2f} s"
           + ("; downloads sent to a refusing proxy" if "https_proxy" in env else ""))
    return env, how


def machine_facts(device: str) -> dict:
    import torch

    facts = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
             "cpu_cores": os.cpu_count(), "device_asked": device}
    if torch.cuda.is_available():
        facts.update(gpu=torch.cuda.get_device_name(0), compute_capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                     tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    else:
        facts["gpu"] = None
    return facts


# --------------------------------------------------------------------------- one chapter, in a child process
def run_one(path: Path, record: Path, timeout: float) -> None:
    """Execute one chapter in a fresh kernel, every cell even after an error, and keep a record of it up to date."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    state = {"chapter": path.stem, "running_cell": None, "kernel_pid": None, "seconds": None}

    def save():
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({**state, "errors": errors(nb)}))
        tmp.replace(record)

    def started(notebook, **_):
        km = getattr(client, "km", None)
        state["kernel_pid"] = getattr(getattr(km, "provisioner", None), "pid", None)
        save()

    def cell_start(cell, cell_index, **_):
        state["running_cell"] = cell_index
        save()

    client = NotebookClient(nb, timeout=int(timeout), allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            on_notebook_start=started, on_cell_start=cell_start, on_cell_executed=lambda **_: save())
    t0 = time.perf_counter()
    try:
        client.execute()
        state["status"] = "ran"
    except Exception as err:  # a kernel that died, a cell past the limit: recorded, not raised
        state["status"] = f"stopped: {type(err).__name__}: {str(err).strip().splitlines()[-1][:300] if str(err).strip() else ''}"
    state["seconds"] = time.perf_counter() - t0
    state["running_cell"] = None
    state["probe"] = probe_of(nb)
    save()
    nbformat.write(_without_images(nb), record.with_suffix(".ipynb"))


def errors(nb) -> list[dict]:
    """Every cell whose output holds an error: its index, tags, first line, the error, and (first only) its traceback."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first_line = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                entry = {"cell": i, "tags": cell.get("metadata", {}).get("tags", []), "source": first_line[:120],
                         "error": f"{out.get('ename')}: {out.get('evalue', '')}"[:600]}
                if not found:
                    entry["traceback"] = ANSI.sub("", "\n".join(out.get("traceback", [])))[-3000:]
                found.append(entry)
                break
    return found


def probe_of(nb) -> dict | None:
    for out in nb.cells[-1].get("outputs", []):
        for line in out.get("text", "").splitlines() if out.get("output_type") == "stream" else []:
            if line.startswith(MARKER):
                return json.loads(line[len(MARKER):])
    return None


def _without_images(nb):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for key in [k for k in out.get("data", {}) if k.startswith("image/") or k == "application/vnd.jupyter.widget-view+json"]:
                out["data"][key] = "(left out)"
    return nb


# --------------------------------------------------------------------------- the run
def _kill(pid: int | None) -> None:
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)  # the process and everything it started in its session
        except (ProcessLookupError, PermissionError):
            pass


def result_of(name: str, record: Path, seconds: float, timed_out: bool) -> dict:
    data = json.loads(record.read_text()) if record.exists() else {}
    errs = data.get("errors", [])
    if timed_out:
        status = f"timed out in cell {data.get('running_cell')}"
    elif "status" not in data:
        log = record.with_suffix(".log")
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        status = "crashed" + (f": {tail[0][:300]}" if tail else "")
    elif data["status"] != "ran":
        status = data["status"]
    else:
        status = "ok" if not errs else "failed"
    probe = data.get("probe") or {}
    return {"chapter": name, "status": status, "seconds": round(data.get("seconds") or seconds, 1),
            "failing_cells": len(errs), "first_failure": errs[0] if errs else None,
            "other_failures": [{k: e[k] for k in ("cell", "error")} for e in errs[1:10]],
            "trained_on": probe.get("default_device"), "cuda_max_memory_mib": probe.get("cuda_max_memory_mib")}


def write_report(out: Path, report: dict) -> None:
    (out / "gpu_chapters.json").write_text(json.dumps(report, indent=1))
    m = report["machine"]
    lines = [f"# Chapters on {m.get('gpu') or 'the CPU'} ({report['device']})", "",
             f"torch {m['torch']} (CUDA {m['cuda']}), Python {m['python']}, {m['cpu_cores']} cores; "
             f"{report['jobs']} chapters at a time, {report['threads_per_kernel']} threads each; {report['data']}; "
             f"{report['started']}, {report['seconds']:.0f} s in all.", "",
             "| chapter | seconds | status | trained on | GPU MiB | first failing cell |", "|---|---|---|---|---|---|"]
    for r in report["chapters"]:
        f = r["first_failure"]
        first = f"cell {f['cell']} ({', '.join(f['tags']) or 'shown'}): {f['error'][:160]}" if f else ""
        mem = f"{r['cuda_max_memory_mib']:.0f}" if r.get("cuda_max_memory_mib") is not None else ""
        first = first.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['chapter']} | {r['seconds']} | {r['status']} | {r.get('trained_on') or ''} | {mem} | {first} |")
    (out / "gpu_chapters.md").write_text("\n".join(lines) + "\n")


def run_all(args) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="gpu-chapters-"))  # the chapters' records, and a folder without MNIST
    try:
        _run_all(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_all(args, scratch: Path) -> None:
    out = Path(args.out or os.environ.get("OUT") or ROOT / "_build" / "gpu_chapters")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter() - (time.time() - STARTED_AT)  # on perf_counter's clock, the install included
    book = Path(args.book).resolve()
    vaebook_path = check_vaebook_is_this_checkout(book)
    names = args.chapters or sorted(p.stem for p in book.glob("*.ipynb"))
    missing = [n for n in names if not (book / f"{n}.ipynb").exists()]
    if missing:
        sys.exit(f"no such chapter in {book}: {', '.join(missing)}")
    data_env, data_how = offline_data_env(args.data_root, scratch)
    threads = args.threads or max(1, (os.cpu_count() or 2) // args.jobs)
    env = {**os.environ, **data_env, "VAEBOOK_PROGRESS": "0", "VAEBOOK_STRICT_CHECKS": "1", "VAEBOOK_DEVICE": args.device,
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    report = {"device": args.device, "machine": machine_facts(args.device), "vaebook": vaebook_path, "data": data_how,
              "jobs": args.jobs, "threads_per_kernel": threads, "budget_s": args.budget, "chapter_limit_s": args.timeout,
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "seconds": 0.0, "chapters": []}
    work = scratch / "records"
    work.mkdir()
    deadline = t_start + args.budget
    queue, running, done = list(names), {}, {}

    def finish(name, timed_out):
        proc, t0, _ = running.pop(name)
        if timed_out:
            record = work / f"{name}.json"
            kernel = json.loads(record.read_text()).get("kernel_pid") if record.exists() else None
            _kill(proc.pid)
            _kill(kernel)
        proc.wait()
        done[name] = result_of(name, work / f"{name}.json", time.perf_counter() - t0, timed_out)
        r = done[name]
        print(f"{name:<26} {r['seconds']:7.1f} s  {r['status']}"
              + (f"  (cell {r['first_failure']['cell']}: {r['first_failure']['error'][:100]})" if r["first_failure"] else ""), flush=True)
        report["chapters"] = [done[n] for n in names if n in done]
        report["seconds"] = time.perf_counter() - t_start
        write_report(out, report)

    while queue or running:
        while queue and len(running) < args.jobs and time.perf_counter() < deadline - 5:
            name = queue.pop(0)
            limit = min(args.timeout, deadline - time.perf_counter())
            # the child's own cell limit is later than this one: a chapter past its limit is stopped
            # from here, where the record says which cell was running
            cmd = [sys.executable, __file__, "--book", str(book), "--one", name, "--record", str(work / f"{name}.json"),
                   "--timeout", str(limit + 60)]
            with open(work / f"{name}.log", "wb") as log:
                proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
            running[name] = (proc, time.perf_counter(), time.perf_counter() + limit)
        for name, (proc, _, ends) in list(running.items()):
            if proc.poll() is not None:
                finish(name, timed_out=False)
            elif time.perf_counter() > ends:
                finish(name, timed_out=True)
        if queue and not running and time.perf_counter() >= deadline - 5:
            for name in queue:
                done[name] = {"chapter": name, "status": "not run (budget spent)", "seconds": 0, "failing_cells": 0,
                              "first_failure": None, "other_failures": []}
            queue = []
            report["chapters"] = [done[n] for n in names if n in done]
            write_report(out, report)
        time.sleep(0.2)
    report["seconds"] = time.perf_counter() - t_start
    write_report(out, report)
    with tarfile.open(out / "executed.tar.gz", "w:gz") as tar:
        for nb in sorted(work.glob("*.ipynb")):
            tar.add(nb, arcname=nb.name)
    ok = sum(r["status"] == "ok" for r in report["chapters"])
    print(f"{ok} of {len(names)} chapters ran with every check passing, in {report['seconds']:.0f} s; report in {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", metavar="DIR", help="here: build vaebook's wheel and download the others into DIR, then stop")
    ap.add_argument("--install", metavar="DIR", help="there: install the wheels of DIR into /tmp/site first (no network needed)")
    ap.add_argument("--device", default="cuda", help="where the chapters train ($VAEBOOK_DEVICE; default cuda)")
    ap.add_argument("--out", help="folder for the report (default $OUT, else _build/gpu_chapters)")
    ap.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run (default 540)")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds for one chapter (default 240)")
    ap.add_argument("--jobs", type=int, default=2, help="chapters at a time (default 2)")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads per kernel (default: the cores shared among the jobs; on a machine that others "
                         "use too, 1, since torch slows down many times over when threads outnumber free cores)")
    ap.add_argument("--data-root", help="a folder holding MNIST/raw, instead of the offline digits")
    ap.add_argument("--book", default=str(BOOK), help="the folder of the chapters (default book/)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child: run this one chapter
    ap.add_argument("--record", help=argparse.SUPPRESS)
    ap.add_argument("chapters", nargs="*", help="notebook stems, e.g. 00_setup (default: every chapter in book/)")
    args = ap.parse_args()
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.wheels:
        prepare_wheels(Path(args.wheels).resolve())
    elif args.install:
        install(Path(args.install).resolve())
    elif args.one:
        run_one(Path(args.book) / f"{args.one}.ipynb", Path(args.record), args.timeout)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
