"""Fixtures of the worker tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ttsbatch.dev.fakeprovider import RunningProvider, run_in_thread


@pytest.fixture(scope="module")
def provider() -> Iterator[RunningProvider]:
    """The imitation provider over real HTTP, one per test module."""
    with run_in_thread() as running:
        yield running
