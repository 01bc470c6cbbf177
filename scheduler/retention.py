"""Retention: a job's outputs and chunks removed once its lifetime has passed.

A job given a lifetime (``time_to_live_hours``, or the deployment's
``TTSBATCH_API_JOB_TTL_HOURS``) gets a marker in the store when it is
accepted, ``expiry/<expires at, epoch seconds>-<job id>``: the markers list in
the order they fall due, so a sweep reads only those due and stops at the
first that is not. The beat sweeps every :data:`SWEEP_INTERVAL` seconds. A due
job that is still running is left alone (nothing a running job needs is ever
removed) and looked at again next sweep; an ended one loses its outputs, its
chunk objects and any assembly, and its manifest says ``expired`` (the API
answers 410 for its files). Its manifest and record stay, so it is still
listed and its history still reads. Markers live in the store, so a Redis
that lost its data forgets none.

The store's chunk cache has a budget of its own (``TTSBATCH_CACHE_STORE_MAX_BYTES``,
``TTSBATCH_CACHE_MAX_AGE_DAYS``), kept by the beat every :data:`CACHE_INTERVAL`
seconds. A cache entry is never something a running job needs: a job copies
a hit into its own chunks, and an entry removed while it is read is a miss.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from ttsbatch import keys
from ttsbatch.cache import UseLog, prune
from ttsbatch.keys import CACHE_PREFIX
from ttsbatch.manifests import find_manifest, write_manifest
from ttsbatch.settings import CacheSettings
from ttsbatch.state import TERMINAL, JobState
from ttsbatch.storage import Store

log = logging.getLogger(__name__)

#: Seconds between two sweeps of the beat.
SWEEP_INTERVAL: Final = 600.0
#: Seconds between two prunes of the store's chunk cache.
CACHE_INTERVAL: Final = 3600.0
_PREFIX: Final = "expiry/"


def expiry_key(expires_at: float, job_id: str) -> str:
    """The marker of a job that expires at ``expires_at`` (epoch seconds)."""
    return f"{_PREFIX}{int(expires_at):012d}-{job_id}"


def mark(store: Store, job_id: str, hours: float | None, *, now: float | None = None) -> None:
    """Give ``job_id`` a lifetime of ``hours`` from now (``None`` or 0: it keeps its outputs)."""
    if hours:
        store.write(expiry_key((now or time.time()) + hours * 3600, job_id), b"")


def sweep(store: Store, state: JobState, *, now: float | None = None) -> int:
    """Remove the outputs of every ended job whose lifetime has passed; return how many."""
    now = now or time.time()
    removed = 0
    for key in list(store.list(_PREFIX)):
        due, _, job_id = key.removeprefix(_PREFIX).partition("-")
        if int(due) > now:
            break  # the rest fall due later
        status = state.status(job_id)
        manifest = find_manifest(store, job_id)
        running = (status is not None and status not in TERMINAL) or (
            manifest is not None and manifest.status not in TERMINAL
        )
        if running:
            continue  # its chunks and outputs are in use; looked at again next sweep
        for part in ("out", "chunks", "assembly"):
            store.delete(list(store.list(f"{keys.job_prefix(job_id)}{part}/")))
        if manifest is not None and not manifest.expired:
            write_manifest(store, manifest.model_copy(update={"expired": True, "outputs": {}}))
        store.delete([key])
        removed += 1
        log.info("job %s: lifetime passed, outputs removed", job_id)
    return removed


def prune_cache(store: Store, state: JobState, settings: CacheSettings) -> tuple[int, int]:
    """Bring the store's chunk cache (every scope) within its budget; return the entries
    and bytes removed. The least recently used go first (hits noted by the workers)."""
    removed, freed = prune(
        store,
        CACHE_PREFIX,
        settings.store_max_bytes,
        max_age=settings.max_age,
        uses=UseLog.of(state),
    )
    if removed:
        log.info("chunk cache: removed %d entries, %.1f MB", removed, freed / 1e6)
    return removed, freed
