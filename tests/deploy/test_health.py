"""The worker's heartbeat: a real worker on real Redis touches the file the probes read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from celery.contrib.testing.worker import start_worker

from ttsbatch.settings import Settings
from worker import health
from worker.celery_app import create_celery_app


def test_a_fresh_heartbeat_is_healthy(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    health.beat(path)
    assert health.problem(path, max_age=5) is None


def test_a_missing_or_stale_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    assert "has not started" in (health.problem(path) or "")
    health.beat(path)
    old = time.time() - 600
    os.utime(path, (old, old))
    assert "old" in (health.problem(path, max_age=60) or "")


def test_the_probe_command_exits_by_the_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    probe = [sys.executable, "-m", "worker.health", "--file", str(path), "--max-age", "30"]
    missing = subprocess.run(probe, capture_output=True, text=True, check=False, timeout=30)
    assert missing.returncode == 1
    assert missing.stdout.startswith("unhealthy: no heartbeat")
    health.beat(path)
    assert subprocess.run(probe, check=False, timeout=30).returncode == 0


def test_a_consuming_worker_keeps_its_heartbeat_fresh(redis_db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "beat"
    app = create_celery_app(Settings(redis_url=redis_db_url), register=False)
    health.install(app, path, interval=0.2)
    with start_worker(app, pool="threads", perform_ping_check=False, shutdown_timeout=10):
        deadline = time.monotonic() + 20
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        first = path.stat().st_mtime
        deadline = time.monotonic() + 20
        while path.stat().st_mtime == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_mtime > first  # touched again by the timer, not only at start
        assert health.problem(path, max_age=5) is None
    stopped = path.stat().st_mtime
    time.sleep(0.6)
    assert path.stat().st_mtime == stopped  # a stopped consumer stops beating
