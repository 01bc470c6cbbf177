"""The chunk cache: synthesised chunks kept under a content address, so no text is paid twice.

A chunk's address is the SHA-256 of everything that changes its audio: the
cache's format, the engine spec (engine, model, voice, language), the sample
format ttsbatch asks every engine for (s16le mono at the engine's rate) and
the exact text sent. A chunk whose address is cached is not sent to the
engine: its audio and word times come from the cache and are placed on the
new job's timeline like any other chunk.

An entry is two objects in a store, ``cache/<scope>/<aa>/<address>.pcm`` and
then ``.json`` (the chunk's record): a record means a complete entry. Reading
one checks the audio's length and SHA-256 against its record; an entry that
does not match (cut short, half written, damaged) is removed and reported as
a miss, so the chunk is synthesised again and never stitched.

Scopes: each API tenant has its own (a hit would tell a tenant that someone
else spoke that text), unless the deployment shares one (``TTSBATCH_CACHE_SHARED``);
the CLI's local runs use ``local`` in the user's cache folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import redis

from ttsbatch import keys
from ttsbatch.billing import account_of
from ttsbatch.errors import ObjectNotFoundError
from ttsbatch.keys import RedisKeys
from ttsbatch.models import ChunkRecord, EngineSpec
from ttsbatch.storage import Store, Stored
from ttsbatch.storage.local import LocalStore

if TYPE_CHECKING:
    from ttsbatch.state import JobState

#: Bumped when what an address covers, or an entry's layout, changes.
CACHE_FORMAT: Final = 1
#: The sample format every engine is asked for: part of the address.
SAMPLE_FORMAT: Final = "s16le-mono"
LOCAL_SCOPE: Final = "local"
SHARED_SCOPE: Final = "shared"
#: The scope of ``ttsbatch synth --distributed`` jobs, which belong to no API tenant.
CLI_SCOPE: Final = "cli"
#: An entry's objects, in the order they are removed (the record first).
SUFFIXES: Final = ("json", "pcm")


def chunk_address(engine: EngineSpec, text: str) -> str:
    """Return the content address of a chunk spoken by ``engine``."""
    identity = {
        "cache": CACHE_FORMAT,
        "engine": engine.model_dump(mode="json"),
        "samples": SAMPLE_FORMAT,
        "text": text,
    }
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def tenant_scope(tenant: str, *, shared: bool) -> str:
    """Return the cache scope of an API tenant: its account (keys never hold a tenant's key)."""
    return SHARED_SCOPE if shared else account_of(tenant)


@dataclass(frozen=True, slots=True)
class Entry:
    """A complete cache entry as listed: where it is, its bytes, when it was last used."""

    scope: str
    address: str
    size: int
    used: float

    @property
    def member(self) -> str:
        """The entry's name in the use log: ``<scope>/<address>``."""
        return f"{self.scope}/{self.address}"


@dataclass(frozen=True)
class UseLog:
    """When each entry of a store's cache was last used (a sorted set in Redis).

    An object store cannot touch an object's time on a hit as a folder can,
    so workers note hits here; :func:`scan_entries` takes the later of this
    and the entry's own time. A Redis that lost it falls back to write times.
    """

    client: redis.Redis
    names: RedisKeys = field(default_factory=RedisKeys)

    @classmethod
    def of(cls, state: JobState) -> UseLog:
        """The log beside ``state``'s jobs (its Redis, its namespace)."""
        return cls(state.client, RedisKeys(state.namespace))

    def note(self, scope: str, address: str, *, now: float | None = None) -> None:
        """Note that an entry was used now."""
        self.client.zadd(self.names.cache_used, {f"{scope}/{address}": now or time.time()})

    def last(self, members: Sequence[str]) -> list[float | None]:
        """When each of ``members`` (``<scope>/<address>``) was last noted used, if ever."""
        if not members:
            return []
        found = self.client.zmscore(self.names.cache_used, list(members))
        return [None if value is None else float(value) for value in found]

    def forget(self, members: Sequence[str]) -> None:
        """Drop ``members`` (removed entries) from the log."""
        if members:
            self.client.zrem(self.names.cache_used, *members)


def scan_entries(store: Store, prefix: str, uses: UseLog | None = None) -> list[Entry]:
    """Every complete entry under ``prefix`` (a record beside its audio), with its last use.

    Holds one small object per entry (about 300 bytes kept, some 900 at the peak
    of a listing): a million entries, some 2 TB of audio, take about 1 GB.
    """
    records: dict[str, Stored] = {}
    audio: dict[str, int] = {}
    for stored in store.scan(prefix):
        name, _, suffix = stored.key.rpartition(".")
        if suffix == "json":
            records[name] = stored
        elif suffix == "pcm":
            audio[name] = stored.size
    entries = []
    for name, record in records.items():
        if name in audio:
            scope, _, address = name.removeprefix(keys.CACHE_PREFIX).partition("/")
            address = address.rpartition("/")[2]
            entries.append(Entry(scope, address, record.size + audio[name], record.modified))
    if uses is not None:
        for start in range(0, len(entries), 1000):
            batch = entries[start : start + 1000]
            for i, used in enumerate(uses.last([entry.member for entry in batch])):
                if used is not None and used > batch[i].used:
                    entries[start + i] = dataclasses.replace(batch[i], used=used)
    return entries


def evictions(
    entries: Iterable[Entry], max_bytes: int, *, max_age: float | None = None, now: float
) -> Iterator[Entry]:
    """The entries to remove: those unused for ``max_age`` seconds, then the least
    recently used until the rest fit in ``max_bytes`` (once one does not fit, every
    entry used before it goes too: a small old entry never outlives a newer one)."""
    kept, full = 0, False
    for entry in sorted(entries, key=lambda entry: entry.used, reverse=True):
        too_old = max_age is not None and now - entry.used > max_age
        full = full or kept + entry.size > max_bytes
        if too_old or full:
            yield entry
        else:
            kept += entry.size


def prune(
    store: Store,
    prefix: str,
    max_bytes: int,
    *,
    max_age: float | None = None,
    uses: UseLog | None = None,
) -> tuple[int, int]:
    """Remove what :func:`evictions` says from the entries under ``prefix``; return the
    entries and bytes removed. Each goes record first: a half-removed entry is no entry,
    and a job reading it meanwhile finds a miss (its checks fail) and synthesises it."""
    removed = freed = 0
    gone: list[Entry] = []
    for entry in evictions(
        scan_entries(store, prefix, uses), max_bytes, max_age=max_age, now=time.time()
    ):
        store.delete([keys.cache_key(entry.scope, entry.address, suffix) for suffix in SUFFIXES])
        removed, freed = removed + 1, freed + entry.size
        gone.append(entry)
    if uses is not None:
        uses.forget([entry.member for entry in gone])
    return removed, freed


class ChunkCache:
    """The chunks of one scope in a store; ``uses`` notes hits where the store cannot."""

    def __init__(self, store: Store, scope: str, uses: UseLog | None = None) -> None:
        self.store = store
        self.scope = scope
        self.uses = uses

    def get(self, address: str, index: int) -> tuple[ChunkRecord, bytes] | None:
        """Return the cached chunk as chunk ``index`` of a job, or ``None`` (a miss).

        An entry whose audio does not match its record is removed: a miss.
        """
        try:
            record = ChunkRecord.model_validate_json(self.store.read(self._key(address, "json")))
            pcm = self.store.read(self._key(address, "pcm"))
        except ObjectNotFoundError:
            return None
        except ValueError:
            self.remove(address)
            return None
        if len(pcm) != record.samples * 2 or hashlib.sha256(pcm).hexdigest() != record.pcm_sha256:
            self.remove(address)
            return None
        self._used(address)
        return record.model_copy(update={"index": index, "cached": True, "retries": 0}), pcm

    def holds(self, address: str) -> bool:
        """Whether an entry is complete at ``address`` (its record is there; not read)."""
        return self.store.exists(self._key(address, "json"))

    def put(self, address: str, record: ChunkRecord, pcm: bytes | memoryview) -> None:
        """Keep a synthesised chunk: its audio, then its record (which completes the entry)."""
        self.store.write(self._key(address, "pcm"), bytes(pcm))
        stored = record.model_copy(update={"index": 0, "cached": False, "retries": 0})
        self.store.write(self._key(address, "json"), stored.model_dump_json(by_alias=True).encode())

    def remove(self, address: str) -> None:
        """Remove an entry (the record first: a half-removed entry is no entry)."""
        self.store.delete([self._key(address, suffix) for suffix in SUFFIXES])

    def _key(self, address: str, suffix: str) -> str:
        return keys.cache_key(self.scope, address, suffix)

    def _used(self, address: str) -> None:
        """Note a hit (the cache evicts the least recently used)."""
        if self.uses is not None:
            self.uses.note(self.scope, address)

    def entries(self) -> list[Entry]:
        """Every complete entry of this scope."""
        return scan_entries(self.store, keys.cache_prefix(self.scope), self.uses)

    def prune(self, max_bytes: int, *, max_age: float | None = None) -> tuple[int, int]:
        """Remove entries unused for ``max_age`` seconds, then the least recently used
        until the rest fit in ``max_bytes``; return the entries and bytes removed."""
        return prune(
            self.store, keys.cache_prefix(self.scope), max_bytes, max_age=max_age, uses=self.uses
        )


class LocalChunkCache(ChunkCache):
    """The CLI's cache in a folder: hits are noted in the files' times; bounded by size."""

    store: LocalStore

    def __init__(self, store: LocalStore, scope: str = LOCAL_SCOPE) -> None:
        super().__init__(store, scope)

    def _used(self, address: str) -> None:
        now = time.time()
        for suffix in ("pcm", "json"):
            try:
                os.utime(self.store.path(self._key(address, suffix)), (now, now))
            except FileNotFoundError:
                return
