"""The README's configuration table names exactly the variables ttsbatch reads."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy import AWS_ENV, settings_env_names

README = Path(__file__).resolve().parent.parent / "README.md"

# Read by click options of the API client commands (ttsbatch/cli/client.py), not settings.
CLIENT_ENV = {"TTSBATCH_SERVER", "TTSBATCH_API_KEY"}
# Read by the CLI itself (ttsbatch/cli/main.py), and the cache folder's short name
# (ttsbatch.settings.CacheSettings.folder, beside TTSBATCH_CACHE_DIR).
CLI_ENV = {"TTSBATCH_DEBUG", "TTSBATCH_CACHE"}


def _table_names() -> set[str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_setting_is_in_the_readme_table() -> None:
    assert settings_env_names() - _table_names() == set()


def test_the_readme_table_names_only_variables_that_are_read() -> None:
    assert _table_names() - settings_env_names() - AWS_ENV - CLIENT_ENV - CLI_ENV == set()
