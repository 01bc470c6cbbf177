"""The codebase stays typed, linted, formatted and layered (style.md).

These run the real tools so that the README's one test command checks
everything CI checks.
"""

from __future__ import annotations

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
