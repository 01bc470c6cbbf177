"""``ttsbatch dev``: starts every service, serves the API and the queue, and stops everything on SIGTERM."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from ttsbatch.executors.distributed import run_distributed
from ttsbatch.models import JobStatus
from ttsbatch.settings import Settings

from .conftest import OPTIONS, make_book

pytestmark = pytest.mark.integration

#: The line ``ttsbatch dev`` prints once the API answers /readyz.
READY = "ready. Ctrl-C stops all."
TERMINAL = {"succeeded", "failed", "cancelled"}


def clean_environment() -> dict[str, str]:
    """Our environment without any service configuration: the dev stack starts its own."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TTSBATCH_", "TOGETHER_", "AWS_", "REDIS_"))
    }


def dev_command(data_dir: Path, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ttsbatch.cli.cluster",
        "dev",
        "--data-dir",
        str(data_dir),
        *flags,
    ]


@dataclass
class RunningDev:
    process: subprocess.Popen[str]
    summary: str
    lines: queue.Queue[str]

    @property
    def exports(self) -> dict[str, str]:
        return dict(re.findall(r"export (\w+)=(\S+)", self.summary))

    def rest(self, timeout: float) -> str:
        """What the stack prints after the summary, until it exits."""
        assert self.process.wait(timeout=timeout) == 0
        text: list[str] = []
        while True:
            line = self.lines.get(timeout=5)
            if not line:
                return "".join(text)
            text.append(line)


def start_dev(data_dir: Path, *flags: str, timeout: float = 60) -> RunningDev:
    """Start ``ttsbatch dev`` and return once it has printed its summary."""
    process = subprocess.Popen(
        dev_command(data_dir, *flags),
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # readline blocks; a thread lets the deadline below hold
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")  # end of output
        process.stdout.close()

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1].strip() != READY:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.01))
        except queue.Empty:
            process.kill()
            pytest.fail("ttsbatch dev was not ready in time:\n" + "".join(seen))
        if not line:
            pytest.fail(f"ttsbatch dev exited with {process.wait()}:\n" + "".join(seen))
        seen.append(line)
    return RunningDev(process, "".join(seen), lines)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[RunningDev]:
    """A dev stack with the imitation provider, one worker, and the API on a free port."""
    running = start_dev(
        tmp_path / "dev",
        "--engine",
        "together",
        "--fake-provider",
        "--workers",
        "1",
        "--port",
        "0",
    )
    yield running
    if running.process.poll() is None:  # the test failed before stopping it
        running.process.kill()
        running.process.wait()


def sample_body(summary: str) -> dict[str, object]:
    """The JSON body of the curl the summary prints."""
    body: dict[str, object] = json.loads(
        shlex.split(summary.split(" -d ", 1)[1].splitlines()[0])[0]
    )
    return body


def alive(pids: list[int]) -> list[int]:
    return [
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]


def wait_for_job(api: httpx.Client, job_id: str, timeout: float) -> dict[str, object]:
    """Poll the job until it ends; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, object] = api.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_the_dev_stack_serves_the_api_and_the_queue_then_stops_every_process(
    dev: RunningDev,
) -> None:
    exports = dev.exports
    assert {"REDIS_URL", "TTSBATCH_STORE", "AWS_ENDPOINT_URL", "TOGETHER_BASE_URL"} <= set(exports)
    assert exports["TTSBATCH_DEFAULT_ENGINE"] == "together"
    assert sample_body(dev.summary) == {"input": "Hello from ttsbatch.", "name": "hello"}
    server, key = exports["TTSBATCH_SERVER"], exports["TTSBATCH_API_KEY"]
    assert key == "dev-key"
    assert f"curl -X POST {server}/v1/jobs -H 'Authorization: Bearer dev-key'" in dev.summary
    assert f"{server}/v1/jobs/ID/events" in dev.summary
    assert f"ttsbatch submit FILE --server {server}" in dev.summary
    children = [p.pid for p in psutil.Process(dev.process.pid).children(recursive=True)]
    assert len(children) >= 6  # redis, weed, provider, worker, beat, api
    try:
        with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}) as api:
            assert api.get("/readyz").status_code == 200
            answer = api.post(
                "/v1/jobs",
                json={"input": "Hello from ttsbatch. A second sentence.", "name": "hello"}
                | OPTIONS.engine.model_dump(exclude_none=True),
            )
            assert answer.status_code == 202, answer.text
            job = wait_for_job(api, answer.json()["id"], timeout=20)
            assert job["status"] == "succeeded", job
            files = api.get(f"/v1/jobs/{job['id']}/result").raise_for_status().json()["files"]
            wav = next(f for f in files if f["name"] == "hello.wav")
            audio = httpx.get(wav["url"]).raise_for_status().content
            assert audio[:4] == b"RIFF"
            assert len(audio) == wav["size"]
            assert hashlib.sha256(audio).hexdigest() == wav["sha256"]

            # `--engine together` is the API's default: a job that names no engine (the
            # summary's own curl body) is spoken by Together, through the imitation provider.
            plain = api.post("/v1/jobs", json=sample_body(dev.summary))
            assert plain.status_code == 202, plain.text
            job = wait_for_job(api, plain.json()["id"], timeout=20)
            assert job["status"] == "succeeded", job
            assert job["options"]["engine"] == {  # type: ignore[index]
                "engine": "together",
                "model": "hexgrad/Kokoro-82M",
                "voice": "af_heart",
                "language": None,
            }
            provider = exports["TOGETHER_BASE_URL"].removesuffix("/v1")
            log = httpx.get(f"{provider}/_log").raise_for_status().json()
            assert ("hexgrad/Kokoro-82M", "af_heart") in {(e["model"], e["voice"]) for e in log}
            # No worker of this stack reads the espeak queue: refused, not left running.
            espeak = api.post("/v1/jobs", json={"input": "Hello.", "engine": "espeak"})
            assert espeak.status_code == 503, espeak.text
            assert "engine espeak" in espeak.json()["detail"]

        # The queue serves `synth --distributed` clients too.
        settings = Settings(store=exports["TTSBATCH_STORE"], redis_url=exports["REDIS_URL"])
        with pytest.MonkeyPatch.context() as env:
            for name, value in exports.items():
                if name.startswith("AWS_"):
                    env.setenv(name, value)
            _, manifest = run_distributed([make_book(5)], OPTIONS, settings=settings, timeout=20)
        assert manifest.status is JobStatus.SUCCEEDED
    finally:
        dev.process.send_signal(signal.SIGTERM)
    output = dev.rest(timeout=60)
    assert "stopping" in output
    assert "stopped." in output
    assert not alive(children)


def test_a_taken_api_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            dev_command(tmp_path / "dev", "--port", str(port)),
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr
    assert "--port" in result.stderr
    assert not (tmp_path / "dev").exists()


def test_without_the_api_and_beat_the_stack_prints_no_curl(tmp_path: Path) -> None:
    running = start_dev(tmp_path / "dev", "--no-api", "--no-beat", "--workers", "1")
    try:
        assert "curl" not in running.summary
        assert "TTSBATCH_SERVER" not in running.exports
        names = {line.split("  ")[0] for line in running.summary.splitlines()}
        assert not {"API", "API key", "beat"} & names
    finally:
        running.process.send_signal(signal.SIGTERM)
    assert "stopped." in running.rest(timeout=60)
