"""A Redis outage is a BrokerError naming REDIS_URL, for commands, pipelines and scripts alike."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from scheduler.dispatch import create_producer, dispatch_finalize
from ttsbatch import redisclient
from ttsbatch.dev.services import free_port
from ttsbatch.errors import BrokerError
from ttsbatch.settings import ApiSettings, Settings
from ttsbatch.storage.local import LocalStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient on httpx (see the API tests)
    from starlette.testclient import TestClient


@pytest.fixture
def dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_commands_pipelines_and_scripts_on_an_unreachable_redis_raise_broker_error(
    dead_url: str,
) -> None:
    client = redisclient.connect(dead_url, socket_connect_timeout=1)
    for call in (
        lambda: client.get("k"),
        lambda: client.pipeline().set("k", 1).execute(),
        client.register_script("return 1"),
    ):
        with pytest.raises(BrokerError, match=r"Redis at redis://127\.0\.0\.1:\d+/0 .*REDIS_URL"):
            call()


def test_what_redis_refuses_is_not_an_outage(redis_db_url: str) -> None:
    client = redisclient.connect(redis_db_url, decode_responses=True)
    try:
        assert client.register_script("return 7")() == 7  # NOSCRIPT is handled as before
        client.set("k", "text")
        with pytest.raises(redis.ResponseError):
            client.incr("k")
    finally:
        client.close()


def test_the_api_answers_an_outage_with_a_503_problem(dead_url: str, tmp_path: Path) -> None:
    from scheduler.api import create_app  # noqa: PLC0415 - the API only for this test

    store = LocalStore(tmp_path)
    settings = Settings(store=store.url, redis_url=dead_url, api=ApiSettings(keys=SecretStr("k")))
    app = create_app(settings, store=store)
    with TestClient(app) as client:
        response = client.get("/v1/jobs", headers={"Authorization": "Bearer k"})
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    body = response.json()
    assert body["error"] == "broker_unavailable"
    assert "REDIS_URL" in body["detail"]


def test_sending_a_task_to_an_unreachable_broker_raises_broker_error(dead_url: str) -> None:
    app = create_producer(Settings(redis_url=dead_url))
    with pytest.raises(BrokerError, match="REDIS_URL"):
        dispatch_finalize(app, "job-1")
