"""Benchmark the REST API under load: many small jobs from many concurrent clients.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_api.py [--jobs 1000] [--clients 50] [--workers 2]
    .venv/bin/python bench/bench_api.py --jobs 1000 --clients 50 --workers 0
    .venv/bin/python bench/bench_api.py --jobs 1000 --clients 50 --workers 0 --rate 1

Starts its own Redis, SeaweedFS, espeak worker processes, the beat (``ttsbatch
beat``, which plans what the API accepts) and the API (``ttsbatch api`` in a
subprocess). Each client thread has its own API key (tenant) and submits its
share of jobs, each a distinct one-sentence text, over one keep-alive
connection; submit latency is measured per request. By default each client
submits as soon as its last submission is answered (the API's capacity, and
the latency at it); with ``--rate R`` each client submits R jobs a second (the
latency at that load). Then every job is followed to its end. Reports submit
latency p50/p99, submit throughput, the CPU time the API and the beat processes
spent per submission while the clients ran (where the shared cores went), time
until all jobs succeeded, and checks that all succeeded and none was lost or
duplicated (the API's listings and the store's manifests both hold exactly the
submitted ids). The store is written to once before the clock starts: the
first write to a fresh SeaweedFS bucket grows a volume, which is not the API's cost.

With ``--workers 0`` only the submission is measured: no worker runs, the API
accepts jobs anyway (``TTSBATCH_API_REQUIRE_WORKERS=false``), and the check is
that the API lists exactly the submitted ids, none lost or duplicated.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ttsbatch.dev.services import LOOPBACK, RedisServer, SeaweedFS, free_port  # noqa: E402
from ttsbatch.dev.stack import (  # noqa: E402
    queues_for,
    stop_process,
    ttsbatch_command,
    worker_command,
)
from ttsbatch.storage.s3 import S3Store, create_client  # noqa: E402

TERMINAL = {"succeeded", "failed", "cancelled"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def client_run(
    url: str,
    key: str,
    texts: list[str],
    latencies: list[float],
    ids: list[str],
    *,
    rate: float,
    start: float,
) -> None:
    """Submit ``texts`` one after another over one keep-alive connection.

    The standard library's client, not httpx: on 2 shared cores the client's
    own CPU (httpx: about 2-3 ms a request) would be measured as the server's.
    With ``rate`` the submissions are paced at ``rate`` per second from
    ``start``, and latency counts from when each was due (a late send is the
    server's delay, not hidden).
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        for n, text in enumerate(texts):
            due = start + n / rate if rate else time.perf_counter()
            if rate and (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            body = json.dumps({"input": text, "name": "bench"}).encode()
            connection.request("POST", "/v1/jobs", body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            latencies.append(time.perf_counter() - due)
            if answer.status != 202:
                sys.exit(f"submission refused: {answer.status} {data.decode(errors='replace')}")
            ids.append(json.loads(data)["id"])
    finally:
        connection.close()


def cpu_seconds(process: psutil.Process) -> float:
    """User plus system CPU time of ``process`` and its live children, in seconds."""
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def follow(url: str, key: str, job_ids: list[str], deadline: float) -> dict[str, str]:
    statuses: dict[str, str] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        pending = list(job_ids)
        while pending and time.monotonic() < deadline:
            still = []
            for job_id in pending:
                status = http.get(f"/v1/jobs/{job_id}").json()["status"]
                statuses[job_id] = status
                if status not in TERMINAL:
                    still.append(job_id)
            pending = still
            if pending:
                time.sleep(0.5)
    return statuses


def listed(url: str, key: str) -> list[str]:
    found: list[str] = []
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as http:
        offset: int | None = 0
        while offset is not None:
            page = http.get("/v1/jobs", params={"offset": offset, "limit": 200}).json()
            found += [job["id"] for job in page["items"]]
            offset = page["next_offset"]
    return found


def main() -> None:  # noqa: PLR0915 - one linear scenario
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="Submissions per second per client (0: each as soon as the last is answered).",
    )
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as tmp,
        RedisServer(Path(tmp) / "redis") as redis_server,
        SeaweedFS(Path(tmp) / "s3") as s3,
    ):
        keys = [f"bench-key-{n}" for n in range(args.clients)]
        store_url = "s3://bench/jobs"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TTSBATCH_", "AWS_"))},
            "REDIS_URL": redis_server.url,
            "TTSBATCH_STORE": store_url,
            "AWS_ENDPOINT_URL": s3.endpoint_url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "TTSBATCH_API_KEYS": ",".join(keys),
            "TTSBATCH_API_MAX_CONCURRENT_JOBS": str(args.jobs),
            "TTSBATCH_API_REQUIRE_WORKERS": "true" if args.workers else "false",
        }
        client = create_client(
            endpoint_url=s3.endpoint_url,
            access_key_id="bench",
            secret_access_key="bench",  # noqa: S106 - a throwaway SeaweedFS without auth
        )
        store = S3Store.from_url(store_url, client=client)
        store.ensure_bucket()
        # SeaweedFS grows a volume on a bucket's first write (about 0.2 s here): a cold
        # start of this throwaway server, not of the API, so it happens before the clock.
        client.put_object(Bucket="bench", Key="warm-up", Body=b"")
        logs = Path(tmp) / "logs"
        logs.mkdir()
        processes = []
        for n in range(args.workers):
            with (logs / f"worker-{n}.log").open("ab") as log:
                processes.append(
                    subprocess.Popen(
                        [*worker_command(queues=queues_for("espeak")), f"--hostname=b{n}@%h"],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        with (logs / "beat.log").open("ab") as log:
            # The scheduler side's own process, as in every deployment.
            beat = subprocess.Popen(
                ttsbatch_command("beat"), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        processes.append(beat)
        port = free_port()
        with (logs / "api.log").open("ab") as log:
            api = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from ttsbatch.cli.client import api; api()",
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(api)
        url = f"http://{LOOPBACK}:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    sys.exit(f"the API did not start: {(logs / 'api.log').read_text()}")
                time.sleep(0.1)

            texts = [f"Bench job number {n} says a short sentence." for n in range(args.jobs)]
            shares = [texts[i :: args.clients] for i in range(args.clients)]
            latencies: list[float] = []
            ids_by_client: list[list[str]] = [[] for _ in keys]
            watched = {"API": psutil.Process(api.pid), "beat": psutil.Process(beat.pid)}
            cpu_before = {name: cpu_seconds(process) for name, process in watched.items()}
            started = time.perf_counter()
            threads = [
                threading.Thread(
                    target=client_run,
                    args=(url, key, share, latencies, ids_by_client[n]),
                    # Paced clients start spread over one period, as independent clients would.
                    kwargs={
                        "rate": args.rate,
                        "start": started + (n / args.clients / args.rate if args.rate else 0),
                    },
                )
                for n, (key, share) in enumerate(zip(keys, shares, strict=True))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            submitted_in = time.perf_counter() - started
            cpu = {name: cpu_seconds(p) - cpu_before[name] for name, p in watched.items()}
            all_ids = [job for ids in ids_by_client for job in ids]
            print(
                f"submitted {len(all_ids)} jobs from {args.clients} clients in {submitted_in:.1f} s"
                f" ({len(all_ids) / submitted_in:.0f} jobs/s)"
            )
            pace = f", each paced at {args.rate:g}/s" if args.rate else ""
            print(
                f"submit latency{pace}: p50 {percentile(latencies, 0.5) * 1000:.0f} ms,"
                f" p99 {percentile(latencies, 0.99) * 1000:.0f} ms,"
                f" max {max(latencies) * 1000:.0f} ms, mean {statistics.mean(latencies) * 1000:.0f} ms"
            )
            print(
                "CPU per submission while the clients ran: "
                + ", ".join(
                    f"{name} {seconds / len(all_ids) * 1000:.1f} ms"
                    for name, seconds in cpu.items()
                )
                + f", {len(os.sched_getaffinity(0))} cores in all"
            )

            if not args.workers:
                listed_ids = [job for key in keys for job in listed(url, key)]
                ok = len(set(all_ids)) == args.jobs and sorted(listed_ids) == sorted(set(all_ids))
                print(
                    f"distinct ids {len(set(all_ids))}/{args.jobs}; listed by the API"
                    f" {len(listed_ids)} ({len(set(listed_ids))} distinct)"
                )
                print("OK: none lost or duplicated" if ok else "FAILED")
                return

            end = time.monotonic() + args.timeout
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                results = list(
                    pool.map(
                        lambda pair: follow(url, pair[0], pair[1], end),
                        zip(keys, ids_by_client, strict=True),
                    )
                )
            statuses = {job: status for result in results for job, status in result.items()}
            done_in = time.perf_counter() - started
            counts: dict[str, int] = {}
            for status in statuses.values():
                counts[status] = counts.get(status, 0) + 1
            print(f"all ended {done_in:.1f} s after the first submit: {counts}")
            listed_ids = [job for key in keys for job in listed(url, key)]
            manifests = [k for k in store.list("jobs/") if k.endswith("/manifest.json")]
            print(
                f"distinct ids {len(set(all_ids))}/{args.jobs}; listed by the API"
                f" {len(listed_ids)} ({len(set(listed_ids))} distinct);"
                f" manifests in the store {len(manifests)}"
            )
            ok = (
                counts.get("succeeded") == args.jobs
                and len(set(all_ids)) == args.jobs
                and sorted(listed_ids) == sorted(set(all_ids))
                and len(manifests) == args.jobs
            )
            print("OK: all succeeded, none lost or duplicated" if ok else "FAILED")
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                stop_process(process, 20)


if __name__ == "__main__":
    main()
