"""Fixtures of the API tests: an app on a real Redis database and a local store, two tenants.

No beat runs here: an app plans the jobs it accepts itself, at once
(:func:`plan_here`), unless a test asks for ``plan_here=False`` and plans them
when it chooses with :func:`planner_of`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from scheduler.api import create_app
from scheduler.intake import Planner
from ttsbatch.messages import ALL_QUEUES
from ttsbatch.roster import Roster
from ttsbatch.settings import ApiSettings, JobDefaults, Settings
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


def api_settings(
    redis_url: str, store_url: str, *, defaults: JobDefaults | None = None, **api: Any
) -> Settings:
    """Settings of a test app: two keys, limits and the deployment's defaults overridable."""
    return Settings(
        store=store_url,
        redis_url=redis_url,
        api=ApiSettings(keys=SecretStr(f"{KEY_A},{KEY_B}"), **api),
        defaults=defaults or JobDefaults(),
    )


#: The worker these tests pretend runs: no process takes the jobs they submit.
PRETEND_WORKER = "pretend@test"


def pretend_worker(redis_url: str, queues: tuple[str, ...] = ALL_QUEUES) -> Roster:
    """Announce a worker on ``queues`` for an hour, so that the API accepts jobs for them."""
    roster = Roster.from_url(redis_url)
    roster.announce(PRETEND_WORKER, queues, ttl=3600)
    return roster


def planner_of(app: FastAPI) -> Planner:
    """The planner ``ttsbatch beat`` would run, on ``app``'s store, Redis and producer."""
    services = app.state.services
    return Planner(
        store=services.store,
        state=services.state,
        producer=services.producer,
        max_chars=services.settings.api.max_chars_per_job,
    )


def plan_here(app: FastAPI) -> FastAPI:
    """Make ``app`` plan each job it accepts in the request, as the beat would a moment later."""
    planner = planner_of(app)
    app.state.services = dataclasses.replace(app.state.services, plan=planner)
    return app


@pytest.fixture
def make_app(redis_db_url: str, local_store: LocalStore) -> Callable[..., FastAPI]:
    """Return a factory of apps on this test's Redis database and store.

    A worker on ``worker_queues`` (every queue unless told) is announced
    (:func:`pretend_worker`): the API refuses jobs no live worker serves, and
    these tests run none. Accepted jobs are planned in the request unless
    ``plan_here=False`` (then they stay queued until a test plans them).
    """

    def make(
        store: Store | None = None,
        *,
        defaults: JobDefaults | None = None,
        worker_queues: tuple[str, ...] = ALL_QUEUES,
        plan_here: bool = True,
        **api: Any,
    ) -> FastAPI:
        chosen = store or local_store
        settings = api_settings(redis_db_url, chosen.url, defaults=defaults, **api)
        if worker_queues:
            pretend_worker(redis_db_url, worker_queues).client.close()
        app = create_app(settings, store=chosen)
        return _plan_here(app) if plan_here else app

    return make


_plan_here = plan_here  # the factory's keyword hides the function


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    """An app with default limits."""
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of ``app`` (send AUTH_A or AUTH_B)."""
    with TestClient(app) as test_client:
        yield test_client
