"""The chapters' setup cell, run the way a fresh Colab runtime runs it.

A new environment that already has torch (as Colab has; here it sees the project's packages) but
no vaebook runs the setup cell of a chapter, pointed at this repository through a ``git+file://``
URL (no network needed). The cell must install vaebook with pip, leave torch alone, import and
seed; run again, it must not call pip at all.
"""

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from vaebook import book

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory):
    if not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history (a clone) to install from")
    env = tmp_path_factory.mktemp("colab") / "env"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # "Already has torch": the project's packages on the path (a path entry, so the project's own
    # editable vaebook is not), the way Colab's system site-packages are.
    Path(site, "_preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, Path(site)


def test_setup_cell_installs_vaebook_once_and_keeps_torch(colab_like, tmp_path):
    python, site = colab_like
    nb = json.loads((ROOT / "book" / "00_setup.ipynb").read_text())
    cell = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    url, branch = book.read_repository(ROOT)
    assert cell == book.bootstrap_source(url, branch)  # the chapter's cell is the generated one
    # the same cell, pointed at this checkout (pip wants a host in a git+file URL: localhost)
    local = book.bootstrap_source(f"file://localhost{ROOT}", _head())
    probe = (
        "import importlib.util, torch\n"
        "assert importlib.util.find_spec('vaebook') is None, 'vaebook must start out missing'\n"
        "torch_before = torch.__file__\n"
        + local
        + "\nimport torch as t2\n"
        "assert t2.__file__ == torch_before, 'the install replaced torch'\n"
        "print('VAEBOOK', vb.__file__)\n"
    )
    out = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    where = Path(out.stdout.split("VAEBOOK", 1)[1].strip())
    assert where.is_relative_to(site), f"vaebook came from {where}, not from the new install in {site}"
    assert not any(site.glob("torch-*.dist-info")), "pip installed a torch of its own"
    # Run the cell again: vaebook is importable now, so pip must not run.
    again = (
        "import subprocess\n"
        "def no_pip(*a, **k): raise AssertionError('the setup cell ran pip although vaebook is installed')\n"
        "subprocess.run = no_pip\n" + local + "\nprint('OK')\n"
    )
    out = subprocess.run([str(python), "-c", again], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stdout + out.stderr
