"""Execute every chapter and print its wall-clock time against the 60 s budget, in one run.

    python benchmarks/chapter_times.py                         # offline data (the 5,000-digit fallback)
    python benchmarks/chapter_times.py --data-root ../shared/data   # full MNIST as well, side by side

Each chapter runs in a fresh kernel from the book/ folder, as the book build runs it, with
progress bars off. Times include kernel start and imports. The budget is 60 s per chapter on a
2-core CPU; the ratio column is time / 60 s.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="a folder holding MNIST/raw, to time full MNIST too")
    ap.add_argument("chapters", nargs="*", help="notebook stems (default: every chapter in book/)")
    args = ap.parse_args()
    paths = [ROOT / "book" / f"{c}.ipynb" for c in args.chapters] or sorted((ROOT / "book").glob("*.ipynb"))
    modes = [("offline", None)] + ([("full MNIST", args.data_root)] if args.data_root else [])
    header = f"{'chapter':<24}" + "".join(f"{m:>24}" for m, _ in modes)
    print(header)
    print("-" * len(header))
    worst = 0.0
    for p in paths:
        cells = []
        for _, root in modes:
            dt, status = run(p, root)
            worst = max(worst, dt / BUDGET)
            cells.append(f"{dt:6.1f} s  {dt / BUDGET:4.2f}x {status:>6}")
        print(f"{p.stem:<24}" + "".join(f"{c:>24}" for c in cells), flush=True)
    print(f"\nbudget {BUDGET:.0f} s per chapter; the slowest used {worst:.2f}x of it")


if __name__ == "__main__":
    main()
