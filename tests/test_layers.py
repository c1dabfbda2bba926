"""The library's import graph against ``vaebook.LAYERS``: imports run one way, and no module takes another's private names.

Every module of ``vaebook`` (the authoring tools aside) is read with ``ast``, so lazy imports inside
functions count too. A module belongs to the layer entry of its top-level name (``vaebook.diffusion.network``
to ``diffusion``); it may import modules listed before its own entry, and modules of its own package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vaebook

ROOT = Path(vaebook.__file__).parent
ORDER = [name for layer in vaebook.LAYERS for name in layer]


def _modules() -> dict[str, Path]:
    """Dotted name under vaebook -> file, for every module but the package itself and the authoring tools."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[0] == "authoring" or parts == ["__init__"]:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The dotted name (under vaebook) that a relative ``from ... import`` in ``module`` refers to."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, str, int]]:
    """``(target module, imported name or "", line)`` for every vaebook import in ``module``."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            target = _resolve(module, is_package, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}".strip(".")
                if sub in MODULES:  # `from . import stats`: the module itself
                    found.append((sub, "", node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vaebook"):
            found += [(node.module.removeprefix("vaebook").strip("."), a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name.removeprefix("vaebook").strip("."), "", node.lineno) for a in node.names if a.name.startswith("vaebook.")]
    return found


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_every_module_has_one_place_in_the_layers():
    tops = {_layer(m) for m in MODULES}
    assert len(ORDER) == len(set(ORDER)), "a module is listed twice in vaebook.LAYERS"
    assert tops == set(ORDER), f"missing from LAYERS: {sorted(tops - set(ORDER))}; listed but absent: {sorted(set(ORDER) - tops)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down_the_layers(module):
    mine = ORDER.index(_layer(module))
    upward = [
        f"line {line}: {target}" for target, _, line in _imports(module)
        if target and _layer(target) != _layer(module) and ORDER.index(_layer(target)) > mine
    ]
    assert not upward, f"vaebook.{module} imports modules above it in vaebook.LAYERS: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_another_modules_private_names(module):
    private = [
        f"line {line}: {name} from vaebook.{target}" for target, name, line in _imports(module)
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    tree = ast.parse(MODULES[module].read_text())
    bound = {(a.asname or a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0 for a in n.names
             if f"{_resolve(module, MODULES[module].name == '__init__.py', n)}.{a.name}".strip(".") in MODULES}
    private += [
        f"line {n.lineno}: {n.value.id}.{n.attr}" for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in bound
        and n.attr.startswith("_") and not n.attr.startswith("__")
    ]
    assert not private, f"vaebook.{module} uses private names of other modules: {private}"


def test_the_checker_sees_an_upward_and_a_private_import(tmp_path, monkeypatch):
    """The two rules catch what they are for: a planted upward import and a planted private import."""
    planted = tmp_path / "stats.py"
    planted.write_text("from .train import fit\nfrom .models import _mlp\nfrom . import guards\nguards._fail\n")
    monkeypatch.setitem(MODULES, "stats", planted)
    with pytest.raises(AssertionError, match="line 1: train"):
        test_imports_run_down_the_layers("stats")
    with pytest.raises(AssertionError, match=r"_mlp from vaebook.models.*guards._fail"):
        test_no_module_imports_another_modules_private_names("stats")
