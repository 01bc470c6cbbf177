"""The codebase stays typed, linted, formatted and layered (style.md).

These run the real tools so that the README's one test command checks
everything CI checks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("ruff", "check", "."), id="ruff-check"),
        pytest.param(("ruff", "format", "--check", "."), id="ruff-format"),
        pytest.param(("mypy",), id="mypy-strict"),
        pytest.param(("lint-imports",), id="import-layers"),
    ],
)
def test_the_codebase_passes(argv: tuple[str, ...]) -> None:
    result = _run(str(BIN / argv[0]), *argv[1:])
    assert result.returncode == 0, result.stdout + result.stderr


def _module_level_imports(path: Path, package_root: Path, modules: dict[str, Path]) -> set[str]:
    """Return the project modules ``path`` imports when it is imported (not inside functions).

    ``if TYPE_CHECKING:`` blocks are left out: they never run.
    """
    module = ".".join(path.relative_to(package_root).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    module = module.removesuffix(".__init__")
    found: set[str] = set()
    body = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while body:
        node = body.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.If | ast.Try | ast.With):
            body.extend(ast.iter_child_nodes(node))  # imports guarded at module level still run
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # ``from package import submodule`` needs the submodule, not the
            # package's other names (every submodule import runs the package's
            # __init__ first, which is not a cycle of this module's making).
            names = [f"{base}.{alias.name}" for alias in node.names]
            found.update(names)
            if not all(modules.get(name) for name in names):
                found.add(base)
    return {name for name in found if name.split(".")[0] in PACKAGES}


PACKAGES = ("ttsbatch", "scheduler", "worker")


def test_no_module_level_import_cycle_anywhere() -> None:
    files = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
    }
    graph = {
        module: {name for name in _module_level_imports(path, ROOT, files) if name in files}
        - {module}
        for module, path in files.items()
    }
    cycles = [component for component in _strongly_connected(graph) if len(component) > 1]
    assert not cycles, f"module-level import cycles: {cycles}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(_strongly_connected(graph)) == [["a", "b", "c"], ["d"]]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the strongly connected components of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root, edges in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(edges)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components
