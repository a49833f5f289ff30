"""The project's modules import one another without loops.

A loop (a imports b, b imports a, directly or through other modules) works only while every import in
it stays lazy or under ``TYPE_CHECKING``; the first eager one breaks start-up with a half-imported
module. So every import counts here: top level, inside functions, under ``TYPE_CHECKING``, and
``importlib.import_module("...")`` with a literal name.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("streamclf", "trainer")


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


def absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(module: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules ``module`` imports. ``from package import submodule`` imports the submodule,
    not what the package's ``__init__`` imports (any submodule imports its package first anyway)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = absolute(module, path.name == "__init__.py", node)
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules
            names.update(submodules or {target})
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return (names & modules) - {module}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {
        module: imported_names(module, path, set(files))
        for module, path in files.items()
    }


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    graph = import_graph()
    assert "streamclf.onnx_backend" in graph["streamclf.classifier"]  # importlib.import_module in a function
    assert "trainer.common" in graph["trainer.report"]  # under TYPE_CHECKING
    assert "streamclf.models" in graph["streamclf.onnx_backend"]  # from .models import X


def test_no_module_imports_itself_through_others() -> None:
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as loop:
        raise AssertionError(f"import loop: {' -> '.join(loop.args[1])}") from None
