"""A webhook survives restarts: real ``ttsbatch api`` and ``ttsbatch beat`` processes, SIGKILLed.

The receiver answers 503 to the first attempts. While the beat waits to try
again, the beat and the API are killed (SIGKILL, each with its process group:
the embedded beat is a child of the worker, as in a container) and started
again; the event still arrives, every attempt with the same ``webhook-id``
and a valid signature. No worker runs: the test ends the job in Redis, as a
worker's finalize would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scheduler.webhooks import EVENT_HEADER, ID_HEADER, TIMESTAMP_HEADER, signing_key, verify
from ttsbatch.dev.services import LOOPBACK, free_port, log_tail, stop_process
from ttsbatch.dev.stack import ttsbatch_command
from ttsbatch.models import JobStatus
from ttsbatch.state import JobState

from ..scheduler.receiver import receiving
from .conftest import wait_for

pytestmark = pytest.mark.integration

KEY = "restart-key"
SECRET = "whsec_cmVzdGFydC10ZXN0LXNlY3JldC1rZXk="  # noqa: S105 - a test key
#: Four attempts: three answered 503, the fourth after the restart. The beat's
#: visibility timeout is then 2 x (4 s longest countdown + 10 s POST) = 28 s.
ATTEMPTS = 4


class Processes:
    """``ttsbatch api`` and ``ttsbatch beat``, each in its own process group, logging to files."""

    def __init__(self, env: dict[str, str], logs: Path, port: int) -> None:
        self.env = env
        self.logs = logs
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        args = {
            "api": ("api", "--host", LOOPBACK, "--port", str(self.port)),
            "beat": ("beat", "--loglevel=info"),
        }[name]
        with (self.logs / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                ttsbatch_command(*args),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if name == "api":
            wait_for(self.answers, timeout=60, what="the API to answer", explain=self.explain)

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def explain(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{log_tail(path, 40)}" for path in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.running.values():
            stop_process(process, 20)
            with contextlib.suppress(ProcessLookupError):  # the embedded beat, if it outlived it
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def processes(own_redis: str, tmp_path: Path) -> Iterator[Processes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TTSBATCH_", "AWS_"))},
        "REDIS_URL": own_redis,
        "TTSBATCH_STORE": str(tmp_path / "store"),
        "TTSBATCH_API_KEYS": KEY,
        "TTSBATCH_API_REQUIRE_WORKERS": "false",
        "TTSBATCH_API_WEBHOOK_SECRET": SECRET,
        "TTSBATCH_API_WEBHOOK_ALLOW_PRIVATE": "true",
        "TTSBATCH_API_WEBHOOK_ATTEMPTS": str(ATTEMPTS),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Processes(env, logs, free_port())
    try:
        yield running
    finally:
        running.stop()


def test_a_webhook_answered_503_arrives_after_the_api_and_the_beat_are_killed_and_restarted(
    processes: Processes, own_redis: str
) -> None:
    state = JobState.from_url(own_redis)
    with receiving([503] * (ATTEMPTS - 1)) as target:
        processes.start("api")
        processes.start("beat")
        answer = httpx.post(
            f"{processes.url}/v1/jobs",
            json={"input": "A job with a webhook.", "webhook_url": target.url},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        state.finish(job_id, JobStatus.SUCCEEDED)  # what a worker's finalize does

        # Three attempts answered 503; the beat now holds the fourth until its countdown.
        wait_for(
            lambda: len(target.requests()) >= ATTEMPTS - 1,
            timeout=60,
            what="three attempts",
            explain=processes.explain,
        )
        processes.kill("beat")
        processes.kill("api")
        assert not target.delivered()

        processes.start("api")
        processes.start("beat")
        headers, body = wait_for(
            target.delivered, timeout=120, what="the delivery", explain=processes.explain
        )[0]
        job = httpx.get(
            f"{processes.url}/v1/jobs/{job_id}",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=30,
        )
    state.client.close()
    assert job.status_code == 200 and job.json()["status"] == "succeeded"
    requests = target.requests()
    # At least once: a message killed between its retry and its acknowledgement comes
    # back too, as another 200 with the same id.
    statuses = [status for _, _, status in requests]
    assert statuses[: ATTEMPTS - 1] == [503] * (ATTEMPTS - 1) and set(statuses[ATTEMPTS - 1 :]) == {
        200
    }
    assert {h[ID_HEADER] for h, _, _ in requests} == {headers[ID_HEADER]}
    assert headers[ID_HEADER].startswith(f"job_{job_id}_succeeded_")
    assert headers[EVENT_HEADER] == "job.succeeded"
    assert int(headers[TIMESTAMP_HEADER]) > int(requests[0][0][TIMESTAMP_HEADER])
    assert verify(signing_key(SECRET), headers, body)
