"""Commands of the distributed mode: ``worker``, ``dev``, ``resume``, ``cancel``, ``status``.

They are registered in :mod:`ttsbatch.cli`'s main group; :data:`cluster` groups
them too, so that ``python -m ttsbatch.cli.cluster worker`` works on its own.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from ttsbatch.errors import ConfigError, TtsBatchError
from ttsbatch.messages import ALL_QUEUES, LOCAL_QUEUE
from ttsbatch.models import JobStatus
from ttsbatch.settings import ENGINES, JobDefaults, Settings

POOLS = ("prefork", "threads", "solo")


def default_pool(queues: list[str]) -> str:
    """Processes when espeak chunks may arrive (not thread-safe), else threads."""
    return "prefork" if LOCAL_QUEUE in queues else "threads"


def default_concurrency(pool: str, settings: Settings) -> int:
    """One process per core for prefork; for threads, twice the provider's concurrency."""
    if pool == "prefork":
        return os.cpu_count() or 1
    if pool == "solo":
        return 1
    return max(8, 2 * settings.provider.concurrency)


def worker_argv(
    *, pool: str, concurrency: int, queues: list[str], loglevel: str, hostname: str
) -> list[str]:
    """Return the ``celery worker`` arguments of a ttsbatch worker."""
    return [
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        f"--queues={','.join(queues)}",
        f"--loglevel={loglevel}",
        f"--hostname={hostname}",
        # No gossip or mingle: workers coordinate through Redis state, and
        # start faster without waiting for their peers.
        "--without-gossip",
        "--without-mingle",
    ]


def _parse_queues(value: str) -> list[str]:
    queues = [q.strip() for q in value.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(ALL_QUEUES))
    if not queues or unknown:
        raise ConfigError(
            f"unknown queue(s) {', '.join(unknown)}: choose from {', '.join(ALL_QUEUES)}"
        )
    return queues


@click.command()
@click.option(
    "--queues",
    "-Q",
    default=",".join(ALL_QUEUES),
    show_default=True,
    help="Comma-separated queues to consume.",
)
@click.option(
    "--pool",
    type=click.Choice(POOLS),
    help="Celery pool [prefork if it takes espeak chunks (ttsbatch.local), else threads].",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 1024),
    help="Processes or threads [cores for prefork; 2 x TTSBATCH_PROVIDER_CONCURRENCY for threads].",
)
@click.option("--loglevel", "-l", default="info", show_default=True)
@click.option("--hostname", "-n", help="Node name [ttsbatch-<pid>@<host>].")
def worker(
    queues: str, pool: str | None, concurrency: int | None, loglevel: str, hostname: str | None
) -> None:
    """Run a worker: synthesise chunks and stitch jobs from the Redis queue.

    Provider endpoints and keys come from the worker's environment
    (TOGETHER_API_KEY, TOGETHER_BASE_URL, OPENAI_*), the store from
    TTSBATCH_STORE, the broker from REDIS_URL. Jobs choose engine, model and
    voice only.
    """
    from worker.celery_app import create_celery_app  # noqa: PLC0415 - keeps --help fast

    settings = Settings()
    if not settings.store:
        raise ConfigError("a worker needs TTSBATCH_STORE (s3://bucket/prefix or a shared folder)")
    chosen = _parse_queues(queues)
    pool = pool or default_pool(chosen)
    if pool == "threads" and LOCAL_QUEUE in chosen:
        raise ConfigError(
            f"espeak is not thread-safe: use --pool prefork, or leave {LOCAL_QUEUE} out of --queues"
        )
    argv = worker_argv(
        pool=pool,
        concurrency=concurrency or default_concurrency(pool, settings),
        queues=chosen,
        loglevel=loglevel,
        hostname=hostname or f"ttsbatch-{os.getpid()}@{socket.gethostname()}",
    )
    create_celery_app(settings).worker_main(argv)


@click.command()
@click.argument("job_id")
@click.option("-o", "--output", "outdir", type=click.Path(path_type=Path), help="Download here.")
@click.option("--keep-chunks", is_flag=True, help="Keep per-chunk audio after stitching.")
@click.option("--timeout", type=float, help="Give up following after this many seconds.")
def resume(job_id: str, outdir: Path | None, keep_chunks: bool, timeout: float | None) -> None:
    """Finish JOB from what the store holds (even after Redis lost everything).

    Stored chunks are not synthesised again; missing ones are queued.
    """
    from ttsbatch.executors.distributed import resume_job  # noqa: PLC0415 - keeps --help fast
    from ttsbatch.executors.outputs import check_writable, download_outputs  # noqa: PLC0415
    from ttsbatch.executors.progress import TerminalProgress  # noqa: PLC0415

    if outdir is not None:
        check_writable(outdir)
    progress = TerminalProgress()
    try:
        store, manifest = resume_job(
            job_id, settings=Settings(), progress=progress, keep_chunks=keep_chunks, timeout=timeout
        )
    finally:
        progress.close()
    click.echo(f"job {job_id}: {manifest.status.value}")
    if outdir is not None:
        written = download_outputs(store, manifest, outdir)
        click.echo(f"{len(written)} files in {outdir}")


@click.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel JOB: queued chunks are dropped without calling the provider."""
    from ttsbatch.executors.distributed import cancel_job  # noqa: PLC0415 - keeps --help fast

    if cancel_job(job_id, settings=Settings()):
        click.echo(f"job {job_id}: cancelled")
    else:
        click.echo(f"job {job_id}: had already ended; nothing to cancel")


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(job_id: str, as_json: bool) -> None:
    """Show JOB's status, progress and errors."""
    from ttsbatch.cli.costs import usage_line  # noqa: PLC0415
    from ttsbatch.executors.distributed import job_status  # noqa: PLC0415 - keeps --help fast
    from ttsbatch.executors.progress import clock  # noqa: PLC0415

    manifest, snapshot, sent = job_status(job_id, settings=Settings())
    total = sum(len(plan.chunks) for plan in manifest.documents)
    if snapshot is None:
        info: dict[str, object] = {
            "job_id": job_id,
            "status": manifest.status.value,
            "total": total,
            "error": manifest.error,
            "live": False,
        }
    else:
        info = {
            "job_id": job_id,
            "status": snapshot.status.value,
            "total": snapshot.total,
            "done": snapshot.done,
            "failed": len(snapshot.failed),
            "chars": f"{snapshot.chars_done}/{snapshot.chars_total}",
            "audio_seconds": round(snapshot.audio_seconds, 3),
            "retries": snapshot.retries,
            "eta_seconds": snapshot.eta_seconds,
            "error": snapshot.reasons() or None,
            "last_errors": dict(snapshot.errors),
            "live": True,
        }
    if manifest.usage is not None:
        info["usage"] = manifest.usage.model_dump(mode="json")
    elif sent:
        info["chars_sent"] = sent
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"job {job_id}: {info['status']}")
    if manifest.usage is not None:
        click.echo(f"  {usage_line(manifest.usage)}")
    elif sent:
        click.echo(f"  sent so far: {sent:,} characters, retries counted")
    if snapshot is None:
        click.echo(
            f"  {total} chunks; no live state in Redis (`ttsbatch resume {job_id}` rebuilds it)"
        )
    else:
        eta = f", eta {clock(snapshot.eta_seconds)}" if snapshot.eta_seconds else ""
        click.echo(
            f"  chunks {snapshot.done}/{snapshot.total} done, {len(snapshot.failed)} failed;"
            f" {clock(snapshot.audio_seconds)} audio; {snapshot.retries} retries{eta}"
        )
        for chunk, why in sorted(snapshot.errors.items())[:10]:
            click.echo(f"  last error of {chunk}: {why}")
    if info["error"] and manifest.status is not JobStatus.SUCCEEDED:
        click.echo(f"  reason: {info['error']}")


@click.command()
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    help="The engine the workers serve and the API's default [TTSBATCH_DEFAULT_ENGINE, else espeak].",
)
@click.option("--base-url", help="Provider base URL for the workers.")
@click.option(
    "--model",
    help="The API's default model [TTSBATCH_DEFAULT_MODEL; for together/openai an example model].",
)
@click.option(
    "--voice",
    help="The API's default voice [TTSBATCH_DEFAULT_VOICE; for together/openai an example voice].",
)
@click.option("--workers", "-w", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--concurrency", "-c", type=click.IntRange(1, 1024), help="Per worker.")
@click.option("--fake-provider", is_flag=True, help="Also start the imitation provider.")
@click.option(
    "--data-dir",
    default=".ttsbatch-dev",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Everything the dev stack keeps: Redis, S3 data, logs.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The API's port on 127.0.0.1 (0: any free port).",
)
@click.option("--no-api", is_flag=True, help="Do not start the REST API.")
@click.option(
    "--no-beat",
    is_flag=True,
    help="Do not start the beat: REST jobs then wait unplanned, and no webhook, rescue or schedule runs.",
)
def dev(  # noqa: PLR0917 - click passes every option of a command as a parameter
    engine: str | None,
    base_url: str | None,
    model: str | None,
    voice: str | None,
    workers: int,
    concurrency: int | None,
    fake_provider: bool,
    data_dir: Path,
    port: int,
    no_api: bool,
    no_beat: bool,
) -> None:
    """Start Redis, SeaweedFS (S3), workers, the beat and the API for development; Ctrl-C stops all.

    Uses the Redis of REDIS_URL and the S3 of AWS_ENDPOINT_URL when they answer.
    The API takes the keys of TTSBATCH_API_KEYS; without them it gets the key
    "dev-key". --engine, --model and --voice are the API's defaults
    (TTSBATCH_DEFAULT_*): a job that names no engine is spoken by the workers'.
    Prints a curl that submits a job once the API and the workers are ready.
    """
    from ttsbatch.dev.stack import DevOptions, run_dev  # noqa: PLC0415 - keeps --help fast

    try:
        defaults = JobDefaults()
    except ValidationError as exc:
        raise ConfigError(f"TTSBATCH_DEFAULT_*: {exc.errors()[0]['msg']}") from None
    if engine is None or engine == defaults.engine:
        model, voice = model or defaults.model, voice or defaults.voice
    engine = engine or defaults.engine
    run_dev(
        DevOptions(
            engine=engine,
            base_url=base_url,
            model=model,
            voice=voice,
            workers=workers,
            concurrency=concurrency,
            fake_provider=fake_provider,
            data_dir=data_dir,
            api=not no_api,
            port=port,
            beat=not no_beat,
        )
    )


COMMANDS = (worker, dev, resume, cancel, status)


@click.group()
def cluster() -> None:
    """The distributed commands alone (normally part of ``ttsbatch``)."""


for _command in COMMANDS:
    cluster.add_command(_command)


def main() -> None:
    """Run :data:`cluster`, printing ttsbatch errors as one line."""
    try:
        cluster(standalone_mode=False)
    except TtsBatchError as exc:
        click.echo(f"ttsbatch: error: {exc}", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)


if __name__ == "__main__":
    main()
