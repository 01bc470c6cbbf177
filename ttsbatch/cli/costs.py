"""The CLI's side of "never pay twice": its chunk cache, dry runs, and ``ttsbatch cache``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import click

from ttsbatch.cache import Entry, LocalChunkCache, UseLog, prune, scan_entries
from ttsbatch.errors import BudgetError
from ttsbatch.keys import CACHE_PREFIX
from ttsbatch.models import Document, Estimate, JobOptions, SpendLimit, Usage
from ttsbatch.settings import Settings
from ttsbatch.storage.local import LocalStore
from ttsbatch.usage import Allowance


def cost_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of ``synth`` and ``submit`` that keep a job from paying twice or too much:
    ``--no-cache``, ``--dry-run``, ``--preview``, ``--max-cost``, ``--max-billed-chars``."""
    options = [
        click.option(
            "--no-cache",
            is_flag=True,
            help="Synthesise every chunk, even those the chunk cache holds (and keep none).",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Say what the job would cost (characters, cache hits, time, money);"
            " send nothing and make no job.",
        ),
        click.option(
            "--preview",
            type=click.FloatRange(min=1),
            metavar="SECONDS",
            help="Speak only the first part of each input, about this much audio: a cheap"
            " check of voice and pronunciation; the full run takes those chunks from the cache.",
        ),
        click.option(
            "--max-cost",
            type=click.FloatRange(min=0),
            metavar="USD",
            help="Refuse the job, before anything is sent, if it would cost more; stop it,"
            " between requests, if retries take it there.",
        ),
        click.option(
            "--max-billed-chars",
            type=click.IntRange(min=0),
            metavar="N",
            help="Refuse the job, before anything is sent, if it would bill more characters;"
            " stop it, between requests, if retries take it there.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def local_cache(settings: Settings) -> LocalChunkCache:
    """The user's chunk cache (TTSBATCH_CACHE, else $XDG_CACHE_HOME/ttsbatch, ~/.cache/ttsbatch)."""
    return LocalChunkCache(LocalStore(settings.chunk_cache.folder()))


def dry_estimate(
    documents: Sequence[Document],
    options: JobOptions,
    settings: Settings,
    cache: LocalChunkCache | None,
) -> Estimate:
    """Plan the job as a run would and say what it would cost; nothing is sent or written."""
    from scheduler.costing import estimate  # noqa: PLC0415 - the splitter, for dry runs only
    from scheduler.planning import plan_job  # noqa: PLC0415

    manifest = plan_job(documents, options)
    texts = {plan.doc: doc.text for plan, doc in zip(manifest.documents, documents, strict=True)}
    return estimate(manifest, texts, settings, cache)


@dataclass(frozen=True, slots=True)
class Caps:
    """A job's caps: what it may cost, or bill in characters (``None``: no cap)."""

    max_cost: float | None = None
    max_billed_chars: int | None = None

    def limit(self, options: JobOptions, settings: Settings) -> SpendLimit | None:
        """The caps as characters at the job's price (``None``: no cap).

        Before the run, the caps are held against its estimate; while it runs,
        against what it sends (retries count, chunks from the cache do not).
        """
        engine = options.engine
        price = settings.price_of(engine.engine, engine.model)
        return SpendLimit.of(
            max_cost=self.max_cost, max_billed_chars=self.max_billed_chars, price_per_million=price
        )

    def allowance(self, options: JobOptions, settings: Settings) -> Allowance | None:
        """What a local run under these caps may send while it runs (``None``: no cap)."""
        limit = self.limit(options, settings)
        return None if limit is None or limit.max_chars is None else Allowance(limit.max_chars)


def check_costs(
    documents: Sequence[Document],
    options: JobOptions,
    settings: Settings,
    cache: LocalChunkCache | None,
    caps: Caps,
    *,
    dry_run: bool,
) -> bool:
    """Print a dry run's estimate (and return True), or refuse a job over its caps.

    Raises:
        BudgetError: the job would cost more than a cap allows; nothing was sent.
    """
    if not dry_run and caps == Caps():
        return False
    from scheduler.costing import over_budget  # noqa: PLC0415

    found = dry_estimate(documents, options, settings, cache)
    if dry_run:
        for line in estimate_lines(found):
            click.echo(line)
        return True
    refusal = over_budget(found, max_cost=caps.max_cost, max_billed_chars=caps.max_billed_chars)
    if refusal:
        raise BudgetError(refusal)
    return False


def money(cost: float | None) -> str:
    """A cost in USD, or what stands for an unknown price."""
    return "price unknown (TTSBATCH_PRICES)" if cost is None else f"${cost:.4f}"


def estimate_lines(found: Estimate) -> Iterator[str]:
    """The dry run's report, a line per fact."""
    engine = found.engine + (f" {found.model}" if found.model else "")
    yield f"dry run: {found.chunks:,} chunks, {found.chars:,} characters for {engine}"
    yield f"cached: {found.cached_chunks:,} chunks, {found.cached_chars:,} characters (not billed)"
    yield f"billed: {found.billed_chars:,} characters, {money(found.cost)}"
    hours, minutes = divmod(round(found.audio_seconds / 60), 60)
    yield f"audio: about {hours} h {minutes:02d} min; synthesis about {found.wall_seconds:,.0f} s"


def usage_line(usage: Usage) -> str:
    """One line of what a job's characters cost."""
    retried = f" (+{usage.chars_retried:,} retried)" if usage.chars_retried else ""
    return (
        f"billed: {usage.chars_sent:,} characters sent{retried}, "
        f"{usage.chars_cached:,} from the cache; {money(usage.cost)}"
    )


@click.group("cache")
def cache_group() -> None:
    """The chunk cache: chunks already spoken are not sent again.

    Without --store, the cache of local runs (TTSBATCH_CACHE); with it, the
    deployment's cache in TTSBATCH_STORE, every tenant's scope together (its
    hits are noted in Redis, REDIS_URL; the beat prunes it every hour).
    """


_STORE = click.option(
    "--store", "in_store", is_flag=True, help="The deployment's cache in TTSBATCH_STORE."
)


@dataclass(frozen=True, slots=True)
class _Cache:
    """One of the two caches: where it is, how to prune it, its budget."""

    where: str
    prune: Callable[..., tuple[int, int]]
    entries: Callable[[], list[Entry]]
    budget: int
    budget_name: str


def _cache(settings: Settings, *, in_store: bool) -> _Cache:
    if not in_store:
        local = local_cache(settings)
        return _Cache(
            str(local.store.root),
            local.prune,
            local.entries,
            settings.chunk_cache.max_bytes,
            "TTSBATCH_CACHE_MAX_BYTES",
        )
    from ttsbatch import redisclient  # noqa: PLC0415 - only the store's cache needs Redis
    from ttsbatch.storage import open_store  # noqa: PLC0415

    store = open_store(settings.store)
    uses = UseLog(redisclient.connect(settings.redis_url))
    return _Cache(
        f"{store.url}/{CACHE_PREFIX}",
        functools.partial(prune, store, CACHE_PREFIX, uses=uses),
        lambda: scan_entries(store, CACHE_PREFIX, uses),
        settings.chunk_cache.store_max_bytes,
        "TTSBATCH_CACHE_STORE_MAX_BYTES",
    )


@cache_group.command("stats")
@_STORE
def cache_stats(in_store: bool) -> None:
    """Say where the cache is, how many chunks it holds and its size."""
    settings = Settings()
    cache = _cache(settings, in_store=in_store)
    entries = cache.entries()
    size = sum(entry.size for entry in entries)
    click.echo(f"{cache.where}: {len(entries):,} chunks, {size / 1e6:,.1f} MB")
    click.echo(f"budget: {cache.budget / 1e6:,.0f} MB ({cache.budget_name})")


@cache_group.command("prune")
@_STORE
@click.option("--max-bytes", type=click.IntRange(min=0), help="Size to prune to [the budget].")
@click.option(
    "--max-age-days",
    type=click.FloatRange(min=0),
    help="Remove chunks unused this long [TTSBATCH_CACHE_MAX_AGE_DAYS].",
)
def cache_prune(in_store: bool, max_bytes: int | None, max_age_days: float | None) -> None:
    """Remove the least recently used chunks until the cache fits its budget."""
    settings = Settings()
    cache = _cache(settings, in_store=in_store)
    age = settings.chunk_cache.max_age if max_age_days is None else max_age_days * 86400
    removed, freed = cache.prune(cache.budget if max_bytes is None else max_bytes, max_age=age)
    click.echo(f"removed {removed:,} chunks, {freed / 1e6:,.1f} MB")


@cache_group.command("clear")
@_STORE
def cache_clear(in_store: bool) -> None:
    """Remove every chunk of the cache."""
    removed, freed = _cache(Settings(), in_store=in_store).prune(0)
    click.echo(f"removed {removed:,} chunks, {freed / 1e6:,.1f} MB")
