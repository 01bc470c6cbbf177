"""Fixtures of the API tests: an app on a real Redis database and a local store, two tenants."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from scheduler.api import create_app
from ttsbatch.settings import ApiSettings, Settings
from ttsbatch.storage import Store
from ttsbatch.storage.local import LocalStore

with warnings.catch_warnings():
    # Starlette 1.x warns when its TestClient runs on httpx rather than httpx2;
    # httpx2 is not on the package index here, and httpx works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY_A = "key-of-tenant-a"
KEY_B = "key-of-tenant-b"
AUTH_A = {"Authorization": f"Bearer {KEY_A}"}
AUTH_B = {"Authorization": f"Bearer {KEY_B}"}


def api_settings(redis_url: str, store_url: str, **api: Any) -> Settings:
    """Settings of a test app: two keys, limits overridable."""
    return Settings(
        store=store_url,
        redis_url=redis_url,
        api=ApiSettings(keys=SecretStr(f"{KEY_A},{KEY_B}"), **api),
    )


@pytest.fixture
def make_app(redis_db_url: str, local_store: LocalStore) -> Callable[..., FastAPI]:
    """Return a factory of apps on this test's Redis database and store."""

    def make(store: Store | None = None, **api: Any) -> FastAPI:
        chosen = store or local_store
        settings = api_settings(redis_db_url, chosen.url, **api)
        return create_app(settings, store=chosen, notify_webhooks=False, rescue_stalled=False)

    return make


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    """An app with default limits."""
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of ``app`` (send AUTH_A or AUTH_B)."""
    with TestClient(app) as test_client:
        yield test_client
