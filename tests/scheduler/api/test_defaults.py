"""The deployment's default engine, model and voice, and jobs no live worker can serve.

A job that does not name its engine gets the deployment's
(``TTSBATCH_DEFAULT_*``); a request in the seed's shape (``model``, ``voice``,
``input``) gets what it asked for or a 422 naming the missing field, never a
silent espeak job; a job whose queue no live worker reads is refused with a
503 that names its engine.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.testclient import TestClient

from ttsbatch.messages import FINALIZE_QUEUE, LOCAL_QUEUE, PROVIDER_QUEUE
from ttsbatch.settings import JobDefaults, Settings

from .conftest import AUTH_A

TEXT = "It was a bright cold day in April. The clocks were striking thirteen."
KOKORO = {"model": "hexgrad/Kokoro-82M", "voice": "af_heart"}
TOGETHER = JobDefaults(engine="together", model=KOKORO["model"], voice=KOKORO["voice"])
#: What a deployment with only provider workers announces (``ttsbatch dev --engine together``).
PROVIDER_WORKERS = (PROVIDER_QUEUE, FINALIZE_QUEUE)


def post(app: FastAPI, **body: object) -> tuple[int, dict[str, object]]:
    with TestClient(app) as client:
        response = client.post("/v1/jobs", json={"input": TEXT, **body}, headers=AUTH_A)
    return response.status_code, response.json()


def engine_of(job: dict[str, object]) -> dict[str, object]:
    options = job["options"]
    assert isinstance(options, dict)
    engine: dict[str, object] = options["engine"]
    return engine


# -- settings ------------------------------------------------------------------------------


def test_the_defaults_are_read_from_ttsbatch_default_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TTSBATCH_DEFAULT_ENGINE", "together")
    monkeypatch.setenv("TTSBATCH_DEFAULT_MODEL", "hexgrad/Kokoro-82M")
    monkeypatch.setenv("TTSBATCH_DEFAULT_VOICE", "af_heart")
    assert Settings().defaults == TOGETHER


def test_without_variables_the_default_engine_is_espeak_with_no_model_or_voice() -> None:
    assert JobDefaults() == JobDefaults(engine="espeak", model=None, voice=None)


def test_a_default_model_for_espeak_is_refused_naming_the_variables() -> None:
    with pytest.raises(ValidationError, match="TTSBATCH_DEFAULT_MODEL=tts-1 is for a provider"):
        JobDefaults(engine="espeak", model="tts-1")


def test_an_unknown_default_engine_is_refused() -> None:
    with pytest.raises(ValidationError):
        JobDefaults(engine="piper")


# -- the deployment's defaults ----------------------------------------------------------------


def test_a_job_without_engine_gets_the_deployments_engine_model_and_voice(
    make_app: Callable[..., FastAPI],
) -> None:
    status, job = post(make_app(defaults=TOGETHER, worker_queues=PROVIDER_WORKERS))
    assert status == 202, job
    assert engine_of(job) == {"engine": "together", **KOKORO, "language": None}


def test_a_job_in_the_seeds_shape_gets_the_model_and_voice_it_asked_for(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(defaults=JobDefaults(engine="together"), worker_queues=PROVIDER_WORKERS)
    asked = {"model": "canopylabs/orpheus-3b-0.1-ft", "voice": "tara"}
    status, job = post(app, **asked)
    assert status == 202, job
    assert engine_of(job) == {"engine": "together", **asked, "language": None}


def test_the_seeds_shape_on_an_espeak_deployment_is_refused_naming_engine(
    make_app: Callable[..., FastAPI],
) -> None:
    status, problem = post(make_app(), **KOKORO)
    assert status == 422
    assert problem["error"] == "invalid_request"
    assert str(problem["detail"]).startswith("`engine` is missing")
    assert "default engine is espeak" in str(problem["detail"])


def test_a_provider_voice_without_engine_on_an_espeak_deployment_says_engine_was_not_sent(
    make_app: Callable[..., FastAPI],
) -> None:
    status, problem = post(make_app(), voice="af_heart")
    assert status == 422
    assert "unknown espeak voice 'af_heart'" in str(problem["detail"])
    assert "no `engine` was sent" in str(problem["detail"])


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"engine": "together", "voice": "af_heart"}, "model"),
        ({"engine": "together", "model": "hexgrad/Kokoro-82M"}, "voice"),
        ({"engine": "openai"}, "model"),
    ],
)
def test_a_provider_engine_without_model_or_voice_is_refused_naming_the_field(
    make_app: Callable[..., FastAPI], body: dict[str, str], missing: str
) -> None:
    status, problem = post(make_app(), **body)
    assert status == 422
    assert str(problem["detail"]).startswith(f"`{missing}` is missing: engine {body['engine']}")


def test_the_deployments_model_and_voice_fill_in_only_for_its_own_engine(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(defaults=TOGETHER)
    status, job = post(app, engine="espeak")
    assert status == 202, job
    assert engine_of(job) == {"engine": "espeak", "model": None, "voice": None, "language": None}
    status, problem = post(app, engine="openai", voice="alloy")
    assert status == 422 and str(problem["detail"]).startswith("`model` is missing")


def test_a_model_for_espeak_named_explicitly_is_refused(make_app: Callable[..., FastAPI]) -> None:
    status, problem = post(make_app(), engine="espeak", model="tts-1")
    assert status == 422
    assert "espeak takes no `model`" in str(problem["detail"])


def test_a_schedule_missing_a_model_is_refused_when_created_not_at_its_first_run(
    make_app: Callable[..., FastAPI],
) -> None:
    with TestClient(make_app()) as client:
        response = client.post(
            "/v1/schedules",
            json={"cron": "0 2 * * *", "source": "s3://corpus/x/", "engine": "together"},
            headers=AUTH_A,
        )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("`model` is missing")


# -- live workers ------------------------------------------------------------------------------


def test_a_job_no_live_worker_serves_is_refused_with_503_naming_engine_and_queue(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(defaults=TOGETHER, worker_queues=PROVIDER_WORKERS)
    with TestClient(app) as client:
        response = client.post("/v1/jobs", json={"input": TEXT, "engine": "espeak"}, headers=AUTH_A)
        listed = client.get("/v1/jobs", headers=AUTH_A).json()["items"]
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    problem = response.json()
    assert problem["error"] == "no_worker"
    assert problem["detail"].startswith(
        f"no running worker serves engine espeak: nobody consumes queue {LOCAL_QUEUE}"
    )
    assert "engines served now: together, openai" in problem["detail"]
    assert listed == []  # nothing was planned, recorded or queued


def test_without_any_worker_every_engine_is_refused(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(defaults=TOGETHER, worker_queues=())
    status, problem = post(app)
    assert status == 503
    assert "engine together" in str(problem["detail"])
    assert "no worker is running at all" in str(problem["detail"])


def test_workers_without_the_finalize_queue_cannot_serve_a_job(
    make_app: Callable[..., FastAPI],
) -> None:
    status, problem = post(make_app(worker_queues=(LOCAL_QUEUE,)))
    assert status == 503
    assert f"nobody consumes queue {FINALIZE_QUEUE}" in str(problem["detail"])


def test_with_require_workers_off_a_job_waits_for_workers_and_says_so(
    make_app: Callable[..., FastAPI],
) -> None:
    status, job = post(make_app(worker_queues=(), require_workers=False))
    assert status == 202, job
    assert job["status"] == "queued"  # accepted; it waits to be planned and spoken
    assert job["warning"] == (
        f"no running worker serves engine espeak now (nobody consumes queue {LOCAL_QUEUE}"
        f" or {FINALIZE_QUEUE}): the job waits until one starts"
    )


def test_a_job_its_workers_serve_has_no_warning(make_app: Callable[..., FastAPI]) -> None:
    status, job = post(make_app())
    assert status == 202, job
    assert job["warning"] is None
