"""Benchmark the REST API under load: many small jobs from many concurrent clients.

Not a test: run it by hand and read the numbers.

    .venv/bin/python bench/bench_api.py [--jobs 1000] [--clients 50] [--workers 2]
    .venv/bin/python bench/bench_api.py --jobs 1000 --clients 50 --workers 0

Starts its own Redis, SeaweedFS, espeak worker processes, the beat (``ttsbatch
beat``) and the API (``ttsbatch api`` in a subprocess). Each client thread has
its own API key (tenant) and submits its share of jobs, each a distinct
one-sentence text; submit latency is measured per request. Then every job is followed to its end. Reports submit
latency p50/p99, submit throughput, time until all jobs succeeded, and checks
that all succeeded and none was lost or duplicated (the API's listings and the
store's manifests both hold exactly the submitted ids).

With ``--workers 0`` only the submission is measured: no worker runs, the API
accepts jobs anyway (``TTSBATCH_API_REQUIRE_WORKERS=false``), and the check is
that the API lists exactly the submitted ids, none lost or duplicated.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ttsbatch.devstack import (  # noqa: E402
    queues_for,
    stop_process,
    ttsbatch_command,
    worker_command,
)
from ttsbatch.services import LOOPBACK, RedisServer, SeaweedFS, free_port  # noqa: E402
from ttsbatch.storage.s3 import S3Store, create_client  # noqa: E402

TERMINAL = {"succeeded", "failed", "cancelled"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def client_run(
    url: str, key: str, texts: list[str], latencies: list[float], ids: list[str]
) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        for text in texts:
            started = time.perf_counter()
            answer = http.post("/v1/jobs", json={"input": text, "name": "bench"})
            latencies.append(time.perf_counter() - started)
            answer.raise_for_status()
            ids.append(answer.json()["id"])


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
            processes.append(
                subprocess.Popen(
                    ttsbatch_command("beat"), env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
        port = free_port()
        with (logs / "api.log").open("ab") as log:
            api = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from ttsbatch.cli_client import api; api()",
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
            started = time.perf_counter()
            threads = [
                threading.Thread(
                    target=client_run, args=(url, key, share, latencies, ids_by_client[n])
                )
                for n, (key, share) in enumerate(zip(keys, shares, strict=True))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            submitted_in = time.perf_counter() - started
            all_ids = [job for ids in ids_by_client for job in ids]
            print(
                f"submitted {len(all_ids)} jobs from {args.clients} clients in {submitted_in:.1f} s"
                f" ({len(all_ids) / submitted_in:.0f} jobs/s)"
            )
            print(
                f"submit latency p50 {percentile(latencies, 0.5) * 1000:.0f} ms,"
                f" p99 {percentile(latencies, 0.99) * 1000:.0f} ms,"
                f" mean {statistics.mean(latencies) * 1000:.0f} ms"
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
