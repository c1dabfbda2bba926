"""Execute every chapter and print its wall-clock time against the 60 s budget, in one run.

    python benchmarks/chapter_times.py                         # offline data (the 5,000-digit fallback)
    python benchmarks/chapter_times.py --data-root ../shared/data   # full MNIST as well, side by side
    python benchmarks/chapter_times.py --repeat 3 02_denoising      # the median of 3 runs of one chapter

Each chapter runs in a fresh kernel from the book/ folder, as the book build runs it, with
progress bars off. Times include kernel start and imports. The budget is 60 s per chapter on a
2-core CPU; the ratio column is time / 60 s.

A shared virtual machine's speed drifts by tens of percent from one minute to the next, so before
every chapter run the script also times a fixed workload (300 training steps of chapter 2's
convolutional autoencoder on random images) and prints its range at the end: a chapter time is
comparable with another machine's only beside that reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 60.0


def run(path: Path, data_root: str | None) -> tuple[float, str]:
    env_before = dict(os.environ)
    os.environ["VAEBOOK_PROGRESS"] = "0"
    os.environ["VAEBOOK_STRICT_CHECKS"] = "1"
    if data_root:
        os.environ["VAEBOOK_DATA"] = str(Path(data_root).resolve())
    else:  # a folder without MNIST: the offline fallback
        os.environ["VAEBOOK_DATA"] = str(ROOT / "_build" / "no-mnist-here")
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
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


def reference_seconds() -> float:
    """Seconds for a fixed workload: 300 steps of chapter 2's convolutional autoencoder, batch 32."""
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
    ap.add_argument("chapters", nargs="*", help="notebook stems (default: every chapter in book/)")
    args = ap.parse_args()
    paths = [ROOT / "book" / f"{c}.ipynb" for c in args.chapters] or sorted((ROOT / "book").glob("*.ipynb"))
    modes = [("offline", None)] + ([("full MNIST", args.data_root)] if args.data_root else [])
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    width = 24 + (10 if args.repeat > 1 else 0)
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
                reference.append(reference_seconds())
                runs.append(run(p, root))
            dt = statistics.median(t for t, _ in runs)
            status = next((st for _, st in runs if st != "ok"), "ok")
            worst = max(worst, dt / BUDGET)
            spread = f" ({min(t for t, _ in runs):.0f}-{max(t for t, _ in runs):.0f})" if args.repeat > 1 else ""
            cells.append(f"{dt:6.1f} s{spread}  {dt / BUDGET:4.2f}x {status:>6}")
        print(f"{p.stem:<24}" + "".join(f"{c:>{width}}" for c in cells), flush=True)
    print(f"\nbudget {BUDGET:.0f} s per chapter; the slowest{' median' if args.repeat > 1 else ''} used {worst:.2f}x of it")
    print(f"machine reference (300 steps of chapter 2's conv AE, batch 32), timed before each run: "
          f"median {statistics.median(reference):.2f} s, range {min(reference):.2f}-{max(reference):.2f} s")


if __name__ == "__main__":
    main()
