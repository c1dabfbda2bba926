"""Derive tests/colab/constraints.txt from Google Colab's published package list.

    python scripts/colab_constraints.py ../shared/colab/pip-freeze.txt

Colab publishes the packages of its runtime in the googlecolab/backend-info repository
(``pip-freeze.txt``). The Colab-fidelity tests (tests/colab_env.py) build an environment pinned to
those versions and check that installing vaebook changes none of them. This script writes the
pins as a pip constraints file, with its source named in its header. Three kinds of line change:

- A local version label is dropped: Colab's CPU runtime lists ``torch==2.11.0+cpu`` and
  ``torchvision==0.26.0+cpu``, PyTorch's CPU-only builds, which only PyTorch's own package index
  serves. The package registry serves the same releases, 2.11.0 and 0.26.0, built with CUDA; on a
  machine without a GPU they run on the CPU like the ``+cpu`` builds, and bring the CUDA libraries
  along (about 4.7 GB), which ``import torch`` loads.
- What that torch itself pins is left to it: the CUDA libraries (``nvidia-*``) and ``triton``. The
  ``+cpu`` build has none, so Colab's list holds only one of them (``nvidia-nccl-cu13``), at a version
  that need not be the one the registry's torch asks for. vaebook uses none of them.
- A package installed from a git commit (no version) is left out: no constraint can name it.

Everything else is copied as ``name==version``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "colab" / "constraints.txt"

LEFT_TO_TORCH = re.compile(r"^(nvidia-[\w.-]+|triton)$", re.I)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def _header_lines(text: str) -> list[str]:
    """The freeze file's own comment lines that say where it came from (its first two)."""
    return [line for line in text.splitlines() if line.startswith("#")][:2]


def derive(freeze: str) -> str:
    pins, relabelled, left, skipped = [], [], [], []
    for line in freeze.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        if not m:
            skipped.append(line.split("#")[0].strip() or line)
            continue
        name, version = m.groups()
        if "+" in version:
            relabelled.append(f"{name}=={version}")
            pins.append(f"{name}=={version.split('+')[0]}")
        elif LEFT_TO_TORCH.match(name):
            left.append(f"{name}=={version}")
        else:
            pins.append(line)
    head = [
        "# Pip constraints for the Colab-fidelity tests (tests/colab_env.py): Google Colab's runtime, pinned.",
        "# Derived by scripts/colab_constraints.py from Colab's pip-freeze.txt, which says of itself:",
        *("#   " + h.lstrip("# ") for h in _header_lines(freeze)),
        "# Regenerate with: python scripts/colab_constraints.py ../shared/colab/pip-freeze.txt",
        "#",
        "# The same releases from the package registry, without the local label (there they are CUDA builds):",
        *(f"#   {s}  ->  {s.split('+')[0]}" for s in relabelled),
        "# Left to that torch's own requirements (not used by vaebook): " + ", ".join(left),
        "# Not constrainable (installed from a git commit): " + (", ".join(skipped) or "none"),
    ]
    return "\n".join(head + sorted(pins, key=str.lower)) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("freeze", type=Path, help="Colab's pip-freeze.txt (e.g. ../shared/colab/pip-freeze.txt)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not args.freeze.is_file():
        print(f"error: {args.freeze} is not a file (expected Colab's pip-freeze.txt)", file=sys.stderr)
        return 2
    text = derive(args.freeze.read_text(encoding="utf-8"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({sum(not line.startswith('#') for line in text.splitlines())} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
