"""``ttsbatch dev``: starts every service, runs a job, and stops everything on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ttsbatch.distributed import run_distributed
from ttsbatch.models import JobStatus
from ttsbatch.settings import Settings

from .conftest import OPTIONS, make_book

pytestmark = pytest.mark.integration


def test_the_dev_stack_runs_a_job_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TTSBATCH_", "TOGETHER_", "AWS_", "REDIS_"))
    }
    dev = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ttsbatch.cli_cluster",
            "dev",
            "--engine",
            "together",
            "--fake-provider",
            "--workers",
            "1",
            "--data-dir",
            str(tmp_path / "dev"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert dev.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while not lines or lines[-1].strip() != "Ctrl-C stops all.":
        assert time.monotonic() < deadline and dev.poll() is None, "".join(lines)
        lines.append(dev.stdout.readline())
    summary = "".join(lines)
    exports = dict(re.findall(r"export (\w+)=(\S+)", summary))
    assert {"REDIS_URL", "TTSBATCH_STORE", "AWS_ENDPOINT_URL", "TOGETHER_BASE_URL"} <= set(exports)
    children = [p.pid for p in psutil.Process(dev.pid).children(recursive=True)]
    assert len(children) >= 4  # redis, weed, provider, worker
    try:
        settings = Settings(store=exports["TTSBATCH_STORE"], redis_url=exports["REDIS_URL"])
        saved = {k: os.environ.get(k) for k in exports}
        os.environ.update({k: v for k, v in exports.items() if k.startswith("AWS_")})
        try:
            _, manifest = run_distributed([make_book(5)], OPTIONS, settings=settings, timeout=60)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        assert manifest.status is JobStatus.SUCCEEDED
    finally:
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=60) == 0
    assert "stopping" in dev.stdout.read()
    dev.stdout.close()
    assert not [
        pid
        for pid in children
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
