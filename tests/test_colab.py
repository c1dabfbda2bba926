"""Colab fidelity: vaebook's install and widgets, in an environment pinned to Colab's packages.

The environment is tests/colab_env.py's (Colab's Python where the machine has one, and Colab's
IPython 7.34, ipywidgets 7.7.1, traitlets 5.7.1, ipykernel 6.17.1, numpy, matplotlib, ...), built on
first use and reused while tests/colab/constraints.txt is unchanged. The chapters themselves run
there in ``make notebooks`` (``python -m tests.colab_env nbval book``). The first test needs no
environment: it reads vaebook's ranges against the versions Colab publishes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import colab_env
from vaebook.authoring import book

ROOT = Path(__file__).resolve().parents[1]


def _colab_versions() -> dict[str, list[str]]:
    """``{name: [versions]}`` from the constraints file: each pin, and for torch and torchvision also Colab's own label (``+cpu``)."""
    versions: dict[str, list[str]] = {}
    for line in colab_env.CONSTRAINTS.read_text().splitlines():
        relabelled = re.match(r"^#\s+(\S+)==(\S+)\s+->\s+\S+$", line)
        pin = re.match(r"^([A-Za-z0-9][\w.-]*)==(\S+)$", line)
        for m in (relabelled, pin):
            if m:
                versions.setdefault(colab_env.normalize_name(m.group(1)), []).append(m.group(2))
    return versions


def test_vaebooks_ranges_admit_the_versions_colab_ships():
    """Every dependency's range admits Colab's version, with and without its local label."""
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement
    from packaging.version import Version

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    colab = _colab_versions()
    assert colab["torch"] == ["2.11.0+cpu", "2.11.0"] and colab["ipython"] == ["7.34.0"], colab.get("torch")
    for dep in deps:
        req = Requirement(dep)
        name = colab_env.normalize_name(req.name)
        assert name in colab, f"{req.name} is not among Colab's packages: installing vaebook there would add it"
        for v in colab[name]:
            assert req.specifier.contains(Version(v), prereleases=True), f"{dep} rejects Colab's {req.name} {v}"


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """The Colab-like environment with no vaebook in it, and a kernel for nbclient."""
    python = colab_env.build_env(quiet=True)
    subprocess.run([str(python), "-m", "pip", "uninstall", "--yes", "--quiet", "vaebook"], check=True, capture_output=True)
    return python


@pytest.fixture
def kernel_env(colab, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", colab_env.jupyter_env()["JUPYTER_PATH"])
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return colab


def _run_cells(sources: list[str], cwd: Path, timeout: int = 600):
    """Run cells in a fresh Colab-like kernel; return the executed cells (errors kept, not raised)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    NotebookClient(nb, kernel_name=colab_env.KERNEL_NAME, timeout=timeout, allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb.cells


def _errors(cell) -> list[dict]:
    return [o for o in cell.outputs if o.output_type == "error"]


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _setup_cell() -> str:
    nb = json.loads((ROOT / "book" / "00_setup.ipynb").read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    assert src == book.bootstrap_source(*book.read_repository(ROOT))  # the chapters' cell is the generated one
    return src


@pytest.mark.colab
def test_installing_vaebook_changes_none_of_colabs_packages(colab):
    result = colab_env.dry_run(colab_env.build_wheel())
    assert result["replaced"] == [], f"the setup cell's pip install would replace Colab's packages: {result['replaced']}"
    assert result["would_install"] == ["vaebook"], result


@pytest.mark.colab
def test_setup_cell_installs_vaebook_from_git_once(kernel_env, tmp_path):
    """The cell as the chapters have it, pointed at this repository's git history: installs, then never again."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history (a clone) to install from")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    cell = colab_env.point_setup_cell_at(_setup_cell(), f"git+file://localhost{ROOT}@{head}")
    probe = "import torch, importlib.util\nassert importlib.util.find_spec('vaebook') is None\nTORCH = torch.__file__"
    check = ("import torch, vaebook\nassert torch.__file__ == TORCH, 'the install replaced torch'\n"
             "print('VAEBOOK', vaebook.__file__)")
    no_pip = ("import subprocess\n"
              "def no_pip(*a, **k): raise AssertionError('the setup cell ran pip although vaebook is installed')\n"
              "subprocess.run = no_pip")
    cells = _run_cells([probe, cell, check, no_pip, cell, "print('OK')"], tmp_path)
    for c in cells:
        assert not _errors(c), (c.source, _errors(c))
    where = Path(_text(cells[2]).split("VAEBOOK", 1)[1].strip())
    assert where.is_relative_to(colab_env.ENV), f"vaebook came from {where}, not from the new install"
    assert _text(cells[5]).strip() == "OK"
    subprocess.run([str(kernel_env), "-m", "pip", "uninstall", "--yes", "--quiet", "vaebook"], check=True, capture_output=True)


@pytest.mark.colab
@pytest.mark.parametrize("source", ["git+file://localhost/nonexistent/course@main", "file:///nonexistent/vaebook-0.1.0-py3-none-any.whl"])
def test_a_failed_install_says_so_in_one_message(kernel_env, tmp_path, source):
    cell = colab_env.point_setup_cell_at(_setup_cell(), source)
    (done,) = _run_cells([cell], tmp_path)
    (err,) = _errors(done)
    assert err["ename"] == "SetupError"
    message = "\n".join(err["traceback"])
    assert "Traceback" not in message and "CalledProcessError" not in message and "File " not in message, message
    assert f"vaebook could not be installed from {source}" in message
    assert "pip said:" in message and ("fatal:" in message or "ERROR:" in message), message  # pip's own reason
    assert "python -m vaebook.authoring.book set-repository https://github.com/OWNER/REPO" in message
    assert len(err["traceback"]) == 1 and message.count("\n") == 3, message  # the message, and nothing else


WIDGET_PROBE = """
import sys, types, ipywidgets, IPython
calls = []
# What Colab's kernel has: a google.colab package with output.enable_custom_widget_manager.
google = types.ModuleType("google"); colab = types.ModuleType("google.colab"); output = types.ModuleType("google.colab.output")
output.enable_custom_widget_manager = lambda *a, **k: calls.append("enabled")
colab.output = output; google.colab = colab
sys.modules.update({"google": google, "google.colab": colab, "google.colab.output": output})
import torch, vaebook as vb
vae = vb.VAE(z_dim=2, hidden=(16,)); ae = vb.Autoencoder(z_dim=4, hidden=(16,))
images = torch.rand(4, 1, 28, 28)
print("versions", IPython.__version__, ipywidgets.__version__, vb.colab.on_colab())
"""


@pytest.mark.colab
def test_widgets_and_progress_bars_render_with_colabs_widget_manager(kernel_env, tmp_path):
    """On Colab's ipywidgets 7.7.1 every widget is a core widget of protocol 2, and the custom manager stays off."""
    wheel = colab_env.build_wheel()
    install = f"import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', {str(wheel)!r}], check=True)"
    shows = [
        "vb.widgets.latent_sliders(vae)",
        "vb.widgets.denoise_explorer(ae, images, n=2)",
        "vb.widgets.interpolation_explorer(vae, images)",
        "h = vb.fit(ae, images, epochs=1, batch_size=2, progress=True)",
    ]
    cells = _run_cells([install, WIDGET_PROBE, *shows, "print('custom manager calls:', calls)"], tmp_path)
    for c in cells:
        assert not _errors(c), (c.source, _errors(c))
    assert "versions 7.34.0 7.7.1 True" in _text(cells[1])
    for c in cells[2:6]:
        views = [o["data"]["application/vnd.jupyter.widget-view+json"] for o in c.outputs
                 if o.output_type in ("display_data", "execute_result") and "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert views, f"{c.source!r} showed no widget: {c.outputs}"
        assert all(v["version_major"] == 2 for v in views), views  # ipywidgets 7's protocol, which Colab draws
        assert not any("Error" in _text(c) or "IProgress not found" in _text(c) for _ in [0]), _text(c)
    assert "custom manager calls: []" in _text(cells[-1])  # nothing to turn on with Colab's own ipywidgets
    subprocess.run([str(kernel_env), "-m", "pip", "uninstall", "--yes", "--quiet", "vaebook"], check=True, capture_output=True)


def test_ensure_widget_support_enables_colabs_custom_manager_only_on_colab_with_ipywidgets_8(monkeypatch):
    import types

    import ipywidgets

    from vaebook import colab

    calls = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    monkeypatch.setattr(colab, "_custom_manager_enabled", [])
    assert colab.ensure_widget_support() is False and calls == []  # not on Colab: nothing, no import of google.colab
    fake = types.ModuleType("google.colab")
    fake.output = output
    monkeypatch.setitem(sys.modules, "google.colab", fake)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr(ipywidgets, "__version__", "7.7.1")
    assert colab.ensure_widget_support() is False and calls == []  # Colab's own manager draws ipywidgets 7
    monkeypatch.setattr(ipywidgets, "__version__", "8.1.5")
    assert colab.ensure_widget_support() is True and calls == [1]
    assert colab.ensure_widget_support() is False and calls == [1]  # once per session


def test_live_explorers_turn_colabs_custom_manager_on_where_they_need_it(monkeypatch):
    """The explorers (and fit's progress bar) call it before they build a widget: on Colab with ipywidgets 8, once."""
    import types

    import ipywidgets
    import torch

    import vaebook as vb
    from vaebook import colab

    calls = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    fake = types.ModuleType("google.colab")
    fake.output = output
    monkeypatch.setitem(sys.modules, "google.colab", fake)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr(colab, "_custom_manager_enabled", [])
    monkeypatch.setattr(ipywidgets, "__version__", "8.1.5")
    vb.widgets.latent_sliders(vb.VAE(z_dim=2, hidden=(8,)))
    assert calls == [1]
    monkeypatch.setattr(colab, "_custom_manager_enabled", [])
    vb.fit(vb.Autoencoder(z_dim=2, hidden=(8,)), torch.rand(4, 1, 28, 28), epochs=1, batch_size=2, progress=True)
    assert calls == [1, 1]
