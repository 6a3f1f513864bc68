"""Imports only point down (docs/architecture.md): every import of every module, read from its
source (function-level imports included), against the layers of the import-linter contract in
pyproject.toml, so the test and `lint-imports` cannot disagree about the map."""

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CONTRACT = next(contract for contract in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
                ["contracts"] if contract["type"] == "layers")
LAYERS = [[name.strip() for name in layer.split("|")] for layer in CONTRACT["layers"]]  # highest first
LAYER_OF = {package: depth for depth, layer in enumerate(LAYERS) for package in layer}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(our top-level package, line) of every import in the file; relative imports stay inside."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
        found |= {(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in LAYER_OF}
    return found


def modules() -> list[Path]:
    return sorted(path for package in LAYER_OF for path in (ROOT / package).rglob("*.py"))


def test_the_contract_names_every_package_of_ours():
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench", "examples"}
    assert packages == set(LAYER_OF)


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_imports_from_a_higher_layer_or_a_sibling(path):
    own = path.relative_to(ROOT).parts[0]
    wrong = [f"line {line}: {own} imports {package}" for package, line in imported_packages(path)
             if package != own and LAYER_OF[package] <= LAYER_OF[own]]
    assert not wrong, wrong


def test_the_check_finds_an_import_that_points_up(tmp_path):
    upward = tmp_path / "module.py"
    upward.write_text("def f():\n    from commcredits.cli import app\n")
    assert imported_packages(upward) == {("commcredits", 2)}
