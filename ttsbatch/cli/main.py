"""The ``ttsbatch`` command line.

Errors reach the user as one line naming the problem and a non-zero exit,
never as a traceback (set ``TTSBATCH_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ttsbatch.cli.client import AudioChoice, audio_options
from ttsbatch.cli.costs import cost_options
from ttsbatch.errors import ConfigError, TtsBatchError
from ttsbatch.models import Document, EngineSpec, JobOptions, Manifest, Pauses, SpendLimit
from ttsbatch.settings import ENGINES, Settings

if TYPE_CHECKING:  # imported where used, so that `ttsbatch --help` stays fast
    from ttsbatch.executors.reporting import Progress
    from ttsbatch.storage import Store

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = EXIT_FAILURE) -> None:
    click.echo(f"ttsbatch: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns ttsbatch errors into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TtsBatchError as exc:
            if os.environ.get("TTSBATCH_DEBUG"):
                raise
            _fail(f"error: {exc}")
        except KeyboardInterrupt:
            _fail("interrupted: run the same command again to resume", EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # the last line of defence: one line, not a traceback
            if os.environ.get("TTSBATCH_DEBUG"):
                raise
            _fail(
                f"internal error, please report it: {type(exc).__name__}: {exc} (TTSBATCH_DEBUG=1 shows more)"
            )
        return None


@click.group(cls=_Group)
@click.version_option(package_name="ttsbatch")
def main() -> None:
    """Turn large bodies of text into speech with a word-level timeline."""


def _settings(engine: str, base_url: str | None) -> Settings:
    settings = Settings()
    if base_url is None:
        return settings
    if engine == "together":
        return settings.model_copy(
            update={"together": settings.together.model_copy(update={"base_url": base_url})}
        )
    if engine == "openai":
        return settings.model_copy(
            update={"openai": settings.openai.model_copy(update={"base_url": base_url})}
        )
    raise ConfigError(f"--base-url does not apply to the {engine} engine")


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder.",
)
@click.option(
    "--engine", type=click.Choice(ENGINES), default="espeak", show_default=True, help="The engine."
)
@click.option(
    "--voice", help="Engine voice (espeak: en-us, en-gb, …; together: tara, af_heart, …)."
)
@click.option("--model", help="Provider model (together, openai).")
@click.option("--language", help="Provider language hint.")
@click.option(
    "--base-url", help="Provider base URL (overrides TOGETHER_BASE_URL / OPENAI_BASE_URL)."
)
@click.option(
    "--max-chars", type=click.IntRange(20, 100_000), help="Characters per request [engine default]."
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 1024),
    help="Chunks in flight: espeak processes [CPU count], or provider requests on threads"
    " [TTSBATCH_PROVIDER_CONCURRENCY].",
)
@audio_options()
@click.option(
    "--pause-sentence", default=250, show_default=True, help="Pause after a sentence (ms)."
)
@click.option(
    "--pause-paragraph", default=600, show_default=True, help="Pause after a paragraph (ms)."
)
@click.option(
    "--pause-chapter", default=1500, show_default=True, help="Pause after a chapter (ms)."
)
@click.option(
    "--keep-boilerplate", is_flag=True, help="Keep Project Gutenberg's licence header/footer."
)
@click.option(
    "--keep-chunks",
    is_flag=True,
    help="Keep the chunk records (and, with --distributed, the chunk audio) after stitching.",
)
@click.option(
    "--distributed",
    is_flag=True,
    help="Run on the Celery workers (REDIS_URL, TTSBATCH_STORE) instead of local processes.",
)
@cost_options
def synth(
    inputs: tuple[Path, ...],
    outdir: Path,
    engine: str,
    voice: str | None,
    model: str | None,
    language: str | None,
    base_url: str | None,
    max_chars: int | None,
    jobs: int | None,
    audio: AudioChoice,
    pause_sentence: int,
    pause_paragraph: int,
    pause_chapter: int,
    keep_boilerplate: bool,
    keep_chunks: bool,
    distributed: bool,
    no_cache: bool,
    dry_run: bool,
    preview: float | None,
    max_cost: float | None,
    max_billed_chars: int | None,
) -> None:
    """Synthesise INPUTS (txt, md, html, epub) into OUTDIR.

    Writes NAME.wav (or .pcm, .m4b, .mp3, .opus, .flac), NAME.timestamps.json,
    NAME.source.txt, NAME.srt and NAME.vtt for each input; an encoded format
    is mastered to a loudness and carries chapters, tags and a cover. Run the
    same command again after an interruption: only the missing chunks are
    synthesised.
    """
    # Imported here so that `ttsbatch --help` stays fast.
    from scheduler.ingest import ingest_file  # noqa: PLC0415
    from ttsbatch import keys  # noqa: PLC0415
    from ttsbatch.cli.costs import Caps, check_costs, local_cache, usage_line  # noqa: PLC0415
    from ttsbatch.executors.local import run_local  # noqa: PLC0415
    from ttsbatch.executors.outputs import check_writable, download_outputs  # noqa: PLC0415
    from ttsbatch.executors.progress import TerminalProgress, clock  # noqa: PLC0415
    from ttsbatch.executors.reporting import summary  # noqa: PLC0415
    from ttsbatch.storage.local import LocalStore  # noqa: PLC0415
    from worker.engines.factory import default_max_chars  # noqa: PLC0415

    if distributed and base_url:
        raise ConfigError(
            "--base-url has no effect with --distributed: endpoints are worker settings"
            " (set TOGETHER_BASE_URL or OPENAI_BASE_URL where the workers run)"
        )
    settings = _settings(engine, base_url)
    options = JobOptions.model_validate(
        {
            "engine": EngineSpec(engine=engine, model=model, voice=voice, language=language),
            "max_chars": max_chars or default_max_chars(engine),
            "pauses": Pauses(
                sentence_ms=pause_sentence, paragraph_ms=pause_paragraph, chapter_ms=pause_chapter
            ),
            **audio.job_options(),
        }
    )
    documents = [ingest_file(path, keep_boilerplate=keep_boilerplate) for path in inputs]
    if audio.cover is not None:  # the user's cover over each source's own
        documents = [document.model_copy(update={"cover": audio.cover}) for document in documents]
    if preview is not None:
        from scheduler.costing import preview as preview_of  # noqa: PLC0415

        documents = preview_of(documents, options, preview)
    cache = None if no_cache or distributed else local_cache(settings)
    caps = Caps(max_cost=max_cost, max_billed_chars=max_billed_chars)
    if check_costs(documents, options, settings, cache, caps, dry_run=dry_run):
        return  # a dry run: its report is out, nothing was sent
    check_writable(outdir)
    started = time.monotonic()
    progress = TerminalProgress()
    store: Store
    try:
        if distributed:
            store, manifest = _on_cluster(
                documents,
                options,
                settings,
                progress,
                keep_chunks=keep_chunks,
                cache=not no_cache,
                limit=caps.limit(options, settings),
            )
        else:
            store = LocalStore(outdir / ".ttsbatch")
            manifest = run_local(
                documents,
                options,
                store=store,
                settings=settings,
                jobs=jobs,
                progress=progress,
                keep_chunks=keep_chunks,
                cache=cache,
                spend=caps.allowance(options, settings),
            )
    finally:
        progress.close()
    if cache is not None:
        cache.prune(settings.chunk_cache.max_bytes, max_age=settings.chunk_cache.max_age)
    written = download_outputs(store, manifest, outdir)
    if isinstance(store, LocalStore) and not keep_chunks:
        # The outputs are in OUTDIR now (hard links): the job's folder was work in progress.
        store.remove_tree(keys.job_prefix(manifest.job_id))
    elapsed = time.monotonic() - started
    for line in summary(manifest, outdir):
        click.echo(line)
    if manifest.usage is not None and not manifest.options.engine.engine.in_process:
        click.echo(usage_line(manifest.usage))
    spoken = progress.audio_seconds
    speed = f" ({spoken / elapsed:.0f}x real time)" if spoken and elapsed > 0 else ""
    click.echo(f"done in {clock(elapsed)}{speed}; {len(written)} files in {outdir}")


def _on_cluster(
    documents: Sequence[Document],
    options: JobOptions,
    settings: Settings,
    progress: Progress,
    *,
    keep_chunks: bool,
    cache: bool,
    limit: SpendLimit | None,
) -> tuple[Store, Manifest]:
    """Run the job on the Celery workers (``synth --distributed``); warn if none serves it."""
    from ttsbatch.cache import CLI_SCOPE  # noqa: PLC0415
    from ttsbatch.executors.distributed import run_distributed  # noqa: PLC0415
    from ttsbatch.roster import Roster  # noqa: PLC0415

    roster = Roster.from_url(settings.redis_url)
    try:
        waiting = roster.waiting_reason(options.engine.engine)
    finally:
        roster.client.close()
    if waiting:  # the job is still sent: a worker may be starting
        click.echo(f"warning: {waiting}", err=True)
    return run_distributed(
        documents,
        options,
        settings=settings,
        progress=progress,
        keep_chunks=keep_chunks,
        cache_scope=CLI_SCOPE if cache else None,
        limit=limit,
    )


@main.command("fake-provider", context_settings={"ignore_unknown_options": False})
@click.option("--port", default=8808, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.argument("options", nargs=-1)
def fake_provider(port: int, host: str, options: tuple[str, ...]) -> None:
    """Serve the imitation speech provider (Together, OpenAI and Kokoro protocols).

    OPTIONS are key=value settings, e.g. ``shape=b64 fault_rate=0.3 seed=7``;
    any of them can also be set per request with an ``x-fake-<key>`` header.
    """
    import dataclasses  # noqa: PLC0415

    from ttsbatch.dev.fakeprovider.config import FakeProviderConfig, option_names, parse_options  # noqa: PLC0415
    from ttsbatch.dev.fakeprovider.server import main as serve  # noqa: PLC0415

    pairs = dict(option.split("=", 1) for option in options if "=" in option)
    if len(pairs) != len(options):
        raise ConfigError(f"options are key=value; keys: {', '.join(option_names())}")
    try:
        config = parse_options(FakeProviderConfig(), pairs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    click.echo(f"imitation provider on http://{host}:{port}/v1 (Ctrl-C stops it)", err=True)
    serve(port, host, **{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


def _register() -> None:
    # Commands live beside the code they drive; `status` of the client falls back
    # to the cluster's own when no --server is given.
    from ttsbatch.cli import client as cli_client  # noqa: PLC0415
    from ttsbatch.cli import cluster as cli_cluster  # noqa: PLC0415
    from ttsbatch.cli import costs as cli_costs  # noqa: PLC0415

    for command in (cli_cluster.worker, cli_cluster.dev, cli_cluster.resume, cli_cluster.cancel):
        main.add_command(command)
    for command in cli_client.COMMANDS:
        main.add_command(command)
    main.add_command(cli_costs.cache_group)


_register()
