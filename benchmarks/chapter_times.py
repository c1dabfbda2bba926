"""Execute every chapter and print its time against the budget, in seconds and in reference units.

    python benchmarks/chapter_times.py                         # offline data (the 5,000-digit fallback)
    python benchmarks/chapter_times.py --data-root ../shared/data   # full MNIST as well, side by side
    python benchmarks/chapter_times.py --repeat 3 02_denoising      # the median of 3 runs of one chapter

Each chapter runs in a fresh kernel from the book/ folder, as the book build runs it, with
progress bars off. Times include kernel start and imports.

Machines differ several times over in speed, and a shared virtual machine's speed drifts by tens of
percent from one minute to the next. So before every chapter run the script times a fixed workload
(300 training steps of chapter 2's convolutional autoencoder on random images), and reports the
chapter's time in **units** of that reference: chapter seconds / reference seconds. The budget is
in those units: every chapter within 60 s on a 2-core machine as slow as the slowest we have seen, an
AMD EPYC whose reference took 3.93 s (the median of three, the machine otherwise idle). That is
60 / 3.93 = 15.3 units, on any machine. The ratio column is units / 15.3.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests import colab_env  # noqa: E402  (the Colab environment of make notebooks)
from tests.colab_env import jupyter_env  # noqa: E402

BUDGET_SECONDS = 60.0  # on the slowest machine seen, whose reference workload took
SLOWEST_REFERENCE = 3.93  # seconds there
BUDGET = BUDGET_SECONDS / SLOWEST_REFERENCE  # 15.3 reference units


def run(path: Path, data_root: str | None, kernel: str = "python3") -> tuple[float, str]:
    env_before = dict(os.environ)
    if kernel != "python3":  # the Colab environment: its kernel imports vaebook from this checkout
        os.environ.update(jupyter_env(), PYTHONPATH=str(ROOT))
    os.environ["VAEBOOK_PROGRESS"] = "0"
    os.environ["VAEBOOK_STRICT_CHECKS"] = "1"
    if data_root:
        os.environ["VAEBOOK_DATA"] = str(Path(data_root).resolve())
    else:  # a folder without MNIST: the offline fallback
        os.environ["VAEBOOK_DATA"] = str(ROOT / "_build" / "no-mnist-here")
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=600, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}})
        t0 = time.perf_counter()
        try:
            client.execute()
            status = "ok"
        except Exception as err:  # report and go on with the next chapter
            status = f"FAILED ({type(err).__name__})"
        return time.perf_counter() - t0, status
    finally:
        os.environ.clear()
        os.environ.update(env_before)


REFERENCE = """
import torch
import vaebook as vb
torch.manual_seed(0)
ae = vb.Autoencoder(arch="conv", hidden=(32, 64), z_dim=128)
history = vb.fit(ae, torch.rand(3_200, 1, 28, 28), steps=300, batch_size=32, lr=2e-3, progress=False, device="cpu")
print(history.seconds)
"""


def reference_seconds(python: Path | None = None) -> float:
    """Seconds for a fixed workload: 300 steps of chapter 2's convolutional autoencoder, batch 32
    (in this process, or in a fresh one of ``python``, with vaebook from this checkout)."""
    if python is not None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "VAEBOOK_PROGRESS": "0"}
        out = subprocess.run([str(python), "-c", REFERENCE], capture_output=True, text=True, env=env, check=True)
        return float(out.stdout.split()[-1])
    import torch

    import vaebook as vb

    torch.manual_seed(0)
    ae = vb.Autoencoder(arch="conv", hidden=(32, 64), z_dim=128)
    history = vb.fit(ae, torch.rand(3_200, 1, 28, 28), steps=300, batch_size=32, lr=2e-3, progress=False, device="cpu")
    return history.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="a folder holding MNIST/raw, to time full MNIST too")
    ap.add_argument("--repeat", type=int, default=1, help="runs per chapter and data set; the median is shown")
    ap.add_argument("--colab", action="store_true",
                    help="run the chapters and the reference in the Colab environment of make notebooks "
                         "(Colab's torch and packages; python -m tests.colab_env build makes it)")
    ap.add_argument("--bracket", action="store_true",
                    help="time the reference after each chapter too, and divide by the mean of the two "
                         "(a shared machine's speed drifts within a chapter's minute)")
    ap.add_argument("chapters", nargs="*", help="notebook stems (default: every chapter in book/)")
    args = ap.parse_args()
    kernel, python = "python3", None
    if args.colab:
        if not colab_env.env_python().exists():
            ap.error("--colab: no Colab environment yet; make it with: python -m tests.colab_env build")
        kernel, python = colab_env.KERNEL_NAME, colab_env.env_python()
        print(f"in the Colab environment: {colab_env.describe_env()}")
    paths = [ROOT / "book" / f"{c}.ipynb" for c in args.chapters] or sorted((ROOT / "book").glob("*.ipynb"))
    modes = [("offline", None)] + ([("full MNIST", args.data_root)] if args.data_root else [])
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    width = 34 + (10 if args.repeat > 1 else 0)
    header = f"{'chapter':<24}" + "".join(f"{m:>{width}}" for m, _ in modes)
    print(header)
    print("-" * len(header))
    worst = 0.0
    reference = []
    for p in paths:
        cells = []
        for _, root in modes:
            runs = []
            for _ in range(args.repeat):
                ref = reference_seconds(python)
                reference.append(ref)
                seconds, status = run(p, root, kernel)
                if args.bracket:  # the machine's speed on both sides of the chapter
                    reference.append(reference_seconds(python))
                    ref = (ref + reference[-1]) / 2
                runs.append((seconds, seconds / ref, status))
            dt = statistics.median(t for t, _, _ in runs)
            units = statistics.median(u for _, u, _ in runs)
            status = next((st for _, _, st in runs if st != "ok"), "ok")
            worst = max(worst, units / BUDGET)
            spread = f" ({min(u for _, u, _ in runs):.1f}-{max(u for _, u, _ in runs):.1f})" if args.repeat > 1 else ""
            cells.append(f"{dt:6.1f} s {units:5.1f} u{spread}  {units / BUDGET:4.2f}x {status:>6}")
        print(f"{p.stem:<24}" + "".join(f"{c:>{width}}" for c in cells), flush=True)
    print(f"\nbudget {BUDGET:.1f} reference units per chapter ({BUDGET_SECONDS:.0f} s where the reference takes "
          f"{SLOWEST_REFERENCE} s); the slowest{' median' if args.repeat > 1 else ''} used {worst:.2f}x of it")
    print(f"machine reference (300 steps of chapter 2's conv AE, batch 32), timed before each run{' and after it' if args.bracket else ''}: "
          f"median {statistics.median(reference):.2f} s, range {min(reference):.2f}-{max(reference):.2f} s")


if __name__ == "__main__":
    main()
