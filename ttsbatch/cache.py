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

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ttsbatch import keys
from ttsbatch.billing import account_of
from ttsbatch.errors import ObjectNotFoundError
from ttsbatch.models import ChunkRecord, EngineSpec
from ttsbatch.storage import Store
from ttsbatch.storage.local import LocalStore

#: Bumped when what an address covers, or an entry's layout, changes.
CACHE_FORMAT: Final = 1
#: The sample format every engine is asked for: part of the address.
SAMPLE_FORMAT: Final = "s16le-mono"
LOCAL_SCOPE: Final = "local"
SHARED_SCOPE: Final = "shared"
#: The scope of ``ttsbatch synth --distributed`` jobs, which belong to no API tenant.
CLI_SCOPE: Final = "cli"


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
    """A complete cache entry as listed: its address, bytes, and when it was last used."""

    address: str
    size: int
    used: float


class ChunkCache:
    """The chunks of one scope in a store."""

    def __init__(self, store: Store, scope: str) -> None:
        self.store = store
        self.scope = scope

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
        self.store.delete([self._key(address, "json"), self._key(address, "pcm")])

    def _key(self, address: str, suffix: str) -> str:
        return keys.cache_key(self.scope, address, suffix)

    def _used(self, address: str) -> None:
        """Note a hit (the local cache evicts the least recently used)."""


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

    def entries(self) -> Iterator[Entry]:
        """Yield every complete entry (those with a record)."""
        for key in self.store.list(keys.cache_prefix(self.scope)):
            if not key.endswith(".json"):
                continue
            address = key.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                record = self.store.path(key).stat()
                audio = self.store.path(self._key(address, "pcm")).stat()
            except FileNotFoundError:
                continue
            yield Entry(address, record.st_size + audio.st_size, record.st_mtime)

    def prune(self, max_bytes: int, *, max_age: float | None = None) -> tuple[int, int]:
        """Remove entries older than ``max_age`` seconds, then the least recently used
        until the rest fit in ``max_bytes``; return the entries and bytes removed."""
        entries = sorted(self.entries(), key=lambda entry: entry.used, reverse=True)
        kept = removed = freed = 0
        now = time.time()
        for entry in entries:
            too_old = max_age is not None and now - entry.used > max_age
            if too_old or kept + entry.size > max_bytes:
                self.remove(entry.address)
                removed += 1
                freed += entry.size
            else:
                kept += entry.size
        return removed, freed
