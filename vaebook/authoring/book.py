"""Keep the book's Colab links and the chapters' install cells pointing at one repository.

The repository URL and branch are written once, in ``_config.yml`` (``repository.url`` and
``repository.branch``), which Jupyter Book uses for the "Open in Colab" buttons. Every chapter's
first code cell installs vaebook from the same place when it is missing (as on Colab). This module
writes that cell, and retargets both at once for an instructor who forks the course::

    python -m vaebook.authoring.book set-repository https://github.com/me/my-course --branch main
    python -m vaebook.authoring.book check          # exit 1 if any chapter disagrees with _config.yml

It edits ``_config.yml`` as text (keeping its comments) and the notebooks as JSON (nbformat).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..files import atomic_write_text

__all__ = [
    "bootstrap_source",
    "read_repository",
    "set_repository",
    "chapter_paths",
    "check_chapters",
    "colab_url",
    "normalize_notebook",
    "BOOTSTRAP_TAG",
    "read_notebook",
    "NotebookError",
]

BOOTSTRAP_TAG = "vaebook-bootstrap"
_URL_RE = re.compile(r"^https?://[^\s/]+/[^\s]+$|^file://\S+$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9._/-]+$")


def bootstrap_source(url: str, branch: str) -> str:
    """The first code cell of every chapter: install vaebook if it is missing, import it, seed.

    It must run before vaebook exists, so it is self-contained. A failed install (the repository
    unreachable, a wrong URL) ends in one message that names what was tried and how to retarget
    the chapters, instead of pip's traceback: IPython shows ``_render_traceback_``'s lines in place
    of a traceback.
    """
    return (
        "# Setup. Where vaebook is missing (a fresh Colab runtime) this installs the course library from\n"
        "# the course repository; where it is installed, it does nothing. Then: import, and fix the seeds.\n"
        "import importlib.util, os, subprocess, sys\n"
        "\n"
        f'VAEBOOK_SOURCE = "git+{url}@{branch}"\n'
        'if importlib.util.find_spec("vaebook") is None:\n'
        '    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"vaebook @ {VAEBOOK_SOURCE}"],\n'
        '                         capture_output=True, text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})\n'
        "    if pip.returncode != 0:\n"
        "        class SetupError(Exception):\n"
        "            def _render_traceback_(self):  # IPython shows this message instead of a traceback\n"
        "                return [str(self)]\n"
        "        lines = [line.strip() for line in pip.stderr.splitlines() if line.strip()]\n"
        '        cause = next((line for line in lines if line.startswith(("fatal:", "ERROR:"))), lines[-1] if lines else "")\n'
        "        raise SetupError(\n"
        '            f"vaebook could not be installed from {VAEBOOK_SOURCE}\\n  pip said: {cause}\\n"\n'
        '            "If the course lives in another repository (a fork), point every chapter at it with\\n"\n'
        '            "  python -m vaebook.authoring.book set-repository https://github.com/OWNER/REPO --branch BRANCH"\n'
        "        )\n"
        "\n"
        "import vaebook as vb\n"
        "\n"
        "vb.seed_everything(0)"
    )


def _find_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_config.yml").is_file() and (d / "_toc.yml").is_file():
            return d
    raise FileNotFoundError(f"no book here: _config.yml and _toc.yml not found in {here} or above")


def _read_config(root: Path) -> str:
    """The text of ``root/_config.yml``; an error that names the file where it is not UTF-8."""
    path = root / "_config.yml"
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: expected UTF-8 text, got byte {err.object[err.start]:#04x} at offset {err.start} "
                         "(save the file as UTF-8)") from None


def read_repository(root: Path) -> tuple[str, str]:
    """``(url, branch)`` from the ``repository:`` block of ``_config.yml``."""
    text = _read_config(root)
    block = re.search(r"^repository:\s*\n((?:[ \t]+.*\n?)+)", text, flags=re.M)
    if not block:
        raise ValueError(f"{root / '_config.yml'} has no repository: block")
    fields = dict(re.findall(r"^[ \t]+(url|branch):[ \t]*\"?([^\"\n#]*?)\"?[ \t]*(?:#.*)?$", block.group(1), flags=re.M))
    if "url" not in fields or "branch" not in fields:
        raise ValueError(f"{root / '_config.yml'}: repository needs both url and branch, found {sorted(fields)}")
    return fields["url"].strip(), fields["branch"].strip()


def colab_url(url: str, branch: str, notebook: str) -> str:
    """The Colab address that opens ``notebook`` (a path in the repository) from ``url`` at ``branch``."""
    m = re.match(r"^https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", url)
    if not m:
        raise ValueError(f"Colab opens notebooks from GitHub repositories; {url!r} is not one")
    return f"https://colab.research.google.com/github/{m.group(1)}/{m.group(2)}/blob/{branch}/{notebook}"


def chapter_paths(root: Path) -> list[Path]:
    """Every notebook in ``book/``, in name order."""
    return sorted((root / "book").glob("*.ipynb"))


class NotebookError(ValueError):
    """A file that should be a notebook is not one: missing, a folder, not JSON, not a notebook."""


def read_notebook(path: Path) -> dict:
    """A notebook's JSON, or a :class:`NotebookError` that names the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise NotebookError(f"{path}: no such notebook")
    if not path.is_file():
        raise NotebookError(f"{path}: not a file (expected a .ipynb notebook)")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NotebookError(f"{path}: not valid JSON, so not a notebook ({err})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{path}: not a notebook (expected a JSON object with a list of cells, got {type(nb).__name__})")
    return nb


def _first_code_cell(nb: dict, path: Path) -> dict:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            return cell
    raise ValueError(f"{path} has no code cell; its first code cell must be the vaebook setup cell")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _write_notebook(path: Path, nb: dict) -> None:
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def set_repository(root: Path, url: str, branch: str) -> list[Path]:
    """Point ``_config.yml`` and every chapter's setup cell at ``url``/``branch``; return the files changed."""
    if not _URL_RE.match(url):
        raise ValueError(f"the repository URL must look like https://github.com/OWNER/REPO, got {url!r}")
    if not _BRANCH_RE.match(branch):
        raise ValueError(f"the branch name {branch!r} has characters a git branch cannot have")
    config = root / "_config.yml"
    text = _read_config(root)
    read_repository(root)  # fail early, before writing anything, if the block is malformed
    new = re.sub(r"^([ \t]+url:[ \t]*).*$", lambda m: m.group(1) + url, text, count=1, flags=re.M)
    new = re.sub(r"^([ \t]+branch:[ \t]*).*$", lambda m: m.group(1) + branch, new, count=1, flags=re.M)
    # first check every chapter, then write: nothing is left half-retargeted
    notebooks = []
    for path in chapter_paths(root):
        nb = read_notebook(path)
        cell = _first_code_cell(nb, path)
        if BOOTSTRAP_TAG not in cell.get("metadata", {}).get("tags", []):
            raise ValueError(f"{path}: its first code cell is not the vaebook setup cell (tag {BOOTSTRAP_TAG!r})")
        notebooks.append((path, nb, cell))
    changed = []
    if new != text:
        atomic_write_text(config, new)
        changed.append(config)
    source = bootstrap_source(url, branch)
    for path, nb, cell in notebooks:
        if _source(cell) != source:
            cell["source"] = source
            _write_notebook(path, nb)
            changed.append(path)
    return changed


KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def normalize_notebook(nb: dict) -> dict:
    """Strip outputs and execution counts, and set the metadata Colab and Jupyter expect.

    Chapters are committed in this form: no outputs (the book build and Colab make them), a
    Python 3 kernelspec, and stable cell ids.
    """
    nb["metadata"] = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "toc_visible": True},
    }
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    data_cell = _data_cell(nb)
    for i, cell in enumerate(nb.get("cells", [])):
        cell.setdefault("metadata", {})
        cell["id"] = f"cell-{i:03d}"  # stable ids: regenerating a chapter does not churn its diff
        if data_cell is not None and cell is data_cell:
            _add_tag(cell, "remove-stderr")
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            _nbgrader_metadata(cell)
            _fold_setup_cell(cell)
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    return nb


def _add_tag(cell: dict, tag: str) -> None:
    tags = cell["metadata"].get("tags", [])
    if tag not in tags:
        cell["metadata"]["tags"] = [*tags, tag]


def _fold_setup_cell(cell: dict) -> None:
    """The setup cell's install code only matters on Colab: the HTML book folds it (``hide-input``)."""
    if BOOTSTRAP_TAG in cell["metadata"].get("tags", []):
        _add_tag(cell, "hide-input")


def _data_cell(nb: dict) -> dict | None:
    """The first code cell that loads MNIST. Its stderr, where an offline run's ``OfflineDataWarning``
    goes, is left out of the HTML book (``remove-stderr``): the intro page says once which digits the
    published pages were built on, and people who run the notebook still see the warning."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "vb.load_mnist(" in _source(cell):
            return cell
    return None


def _nbgrader_metadata(cell: dict) -> None:
    """Mark solution cells and check cells the way nbgrader expects, so its tools accept the chapters."""
    src = cell["source"]
    meta = cell["metadata"]
    if "### BEGIN SOLUTION" in src:
        name = re.search(r"^def\s+(\w+)", src, flags=re.M)
        meta["nbgrader"] = {
            "grade": False, "grade_id": name.group(1) if name else f"solution-{cell['id']}", "locked": False,
            "schema_version": 3, "solution": True, "task": False,
        }
    elif src.lstrip().startswith("vb.checks."):
        check = re.match(r"vb\.checks\.(\w+)", src.lstrip())
        assert check is not None  # the line starts with vb.checks.
        meta["nbgrader"] = {
            "grade": True, "grade_id": f"check_{check.group(1)}", "locked": True, "points": 1,
            "schema_version": 3, "solution": False, "task": False,
        }
    else:
        meta.pop("nbgrader", None)


def check_chapters(root: Path) -> list[str]:
    """Problems with the chapters' setup cells against ``_config.yml`` (an empty list when all agree)."""
    url, branch = read_repository(root)
    expected = bootstrap_source(url, branch)
    problems = []
    paths = chapter_paths(root)
    if not paths:
        problems.append(f"no chapters in {root / 'book'}")
    for path in paths:
        try:
            nb = read_notebook(path)
            cell = _first_code_cell(nb, path)
        except ValueError as err:
            problems.append(str(err))
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if BOOTSTRAP_TAG not in tags:
            problems.append(f"{path.name}: the first code cell lacks the tag {BOOTSTRAP_TAG!r}")
        elif "hide-input" not in tags:
            problems.append(f"{path.name}: the setup cell is not folded in the HTML book (tag 'hide-input'; normalize adds it)")
        data_cell = _data_cell(nb)
        if data_cell is not None and "remove-stderr" not in data_cell.get("metadata", {}).get("tags", []):
            problems.append(f"{path.name}: the data cell shows its stderr (the offline-data warning) in the HTML book "
                            "(tag 'remove-stderr'; normalize adds it)")
        if _source(cell) != expected:
            problems.append(f"{path.name}: the setup cell does not install from {url}@{branch} (run set-repository)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vaebook.authoring.book", description="Keep the Colab links and install cells in step.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("set-repository", help="point _config.yml and every chapter at a repository")
    s.add_argument("url", help="e.g. https://github.com/OWNER/REPO")
    s.add_argument("--branch", default=None, help="default: keep the branch in _config.yml")
    s.add_argument("--root", type=Path, default=None, help="the book's root (default: found from here)")
    c = sub.add_parser("check", help="exit 1 if any chapter's setup cell disagrees with _config.yml")
    c.add_argument("--root", type=Path, default=None)
    b = sub.add_parser("bootstrap", help="print the setup cell for the configured repository")
    b.add_argument("--root", type=Path, default=None)
    n = sub.add_parser("normalize", help="strip outputs and fix the metadata of notebooks (in place)")
    n.add_argument("notebooks", nargs="+", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "normalize":
            notebooks = [(path, read_notebook(path)) for path in args.notebooks]  # all read before any is written
            for path, nb in notebooks:
                _write_notebook(path, normalize_notebook(nb))
                print(f"normalized {path}")
            return 0
        root = _find_root(args.root)
        if args.cmd == "set-repository":
            branch = args.branch or read_repository(root)[1]
            changed = set_repository(root, args.url, branch)
            print(f"repository set to {args.url} (branch {branch}); {len(changed)} file(s) changed")
            for changed_path in changed:
                print(f"  {changed_path.relative_to(root)}")
            return 0
        if args.cmd == "check":
            problems = check_chapters(root)
            for p in problems:
                print(p)
            if not problems:
                url, branch = read_repository(root)
                print(f"all {len(chapter_paths(root))} chapters install from {url}@{branch}")
            return 1 if problems else 0
        print(bootstrap_source(*read_repository(root)))
        return 0
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
