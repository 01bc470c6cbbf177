"""Where things are kept: the store's key layout and Redis's, each in one place.

The store (architecture.md), relative to a store's prefix:

::

    jobs/<job_id>/manifest.json
    jobs/<job_id>/cover.<jpg|png>      a cover uploaded with an API job, until it is planned
    jobs/<job_id>/chunks/<doc>/<n:06d>.pcm
    jobs/<job_id>/chunks/<doc>/<n:06d>.json
    jobs/<job_id>/out/<doc>.<ext>     wav, pcm, m4b, mp3, opus, flac, timestamps.json,
                                      source.txt, srt, vtt, cover.jpg or cover.png
    jobs/<job_id>/out/<doc>.<nnn>.<ext>  chapter nnn's own file (split chapters)
    jobs/<job_id>/out/<doc>.epub      the read-along book (ttsbatch.audio.readalong)
    jobs/<job_id>/readalong/<doc>/source.epub       an EPUB input, kept for its read-along
    jobs/<job_id>/readalong/<doc>/source-map.json   book, and where its text lies in it
    expiry/<epoch>-<job_id>           when a job's outputs expire (scheduler.retention)
    cache/<scope>/<aa>/<address>.pcm  a cached chunk's audio (ttsbatch.cache), then
    cache/<scope>/<aa>/<address>.json its record: a tenant's scope, ``shared`` or ``local``
    jobs/<job_id>/assembly/<doc>/     the local executor's outputs in the making:
                                      audio.part, records.jsonl (its chunk records in
                                      order), words.part, srt.part, vtt.part
    jobs/<job_id>/assembly/.lock      held by the local run of the job
    jobs/<job_id>/assembly/slots      chunks on their way from pool processes

Redis, under a namespace (``ttsbatch``), built by :class:`RedisKeys`; a job's
own keys are listed in :mod:`ttsbatch.state.names`::

    <ns>:active, <ns>:job:<id>[:<part>]   job state and chunk leases (ttsbatch.state)
    <ns>:queue-workers:<queue>            worker heartbeats (ttsbatch.roster)
    <ns>:limits:<provider>:<part>         shared provider limits (worker.limits)
    <ns>:api:<…>                          the API's tenant index (scheduler.api.registry)
    <ns>:webhook:<delivery id>            webhook deliveries enqueued (scheduler.webhooks)
    <ns>:planning:<job id>                a planner's claim on a job (scheduler.intake)
    <ns>:billing:<account>:<YYYY-MM>      what a tenant spent in a month (ttsbatch.billing)
    <ns>:spend:<job id>                   characters a job sent, retries counted (ttsbatch.billing)
    <ns>:cache-used                       when each store cache entry was last used (ttsbatch.cache)
    <ns>:redbeat:<…>                      the beat's schedule entries and lock (redbeat)
    <ns>:beat:<…>                         the beat's unacknowledged messages (kombu)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: The Redis namespace of every key ttsbatch writes.
NAMESPACE: Final = "ttsbatch"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The Redis key names under ``namespace`` (a test may choose another)."""

    namespace: str = NAMESPACE

    def job(self, job_id: str, part: str = "") -> str:
        """The key of a job's hash, or of one of its parts (``done``, ``leases``…)."""
        return f"{self.namespace}:job:{job_id}{':' + part if part else ''}"

    @property
    def active(self) -> str:
        """The set of jobs under way."""
        return f"{self.namespace}:active"

    def queue_workers(self, queue: str) -> str:
        """The sorted set of workers whose heartbeat says they consume ``queue``."""
        return f"{self.namespace}:queue-workers:{queue}"

    def limits(self, provider: str, part: str) -> str:
        """A key of ``provider``'s shared limits (``leases``, ``state``, ``wake``)."""
        return f"{self.namespace}:limits:{provider}:{part}"

    @property
    def api(self) -> str:
        """The prefix of the API's tenant index."""
        return f"{self.namespace}:api"

    def webhook(self, delivery: str) -> str:
        """The claim of a webhook delivery that a scan enqueued."""
        return f"{self.namespace}:webhook:{delivery}"

    def billing(self, account: str, month: str) -> str:
        """What an account spent in ``month`` (``YYYY-MM``)."""
        return f"{self.namespace}:billing:{account}:{month}"

    def spend(self, job_id: str) -> str:
        """Characters a job sent so far, retries counted (its cap's tally)."""
        return f"{self.namespace}:spend:{job_id}"

    @property
    def cache_used(self) -> str:
        """When each entry of the store's chunk cache was last used (a sorted set)."""
        return f"{self.namespace}:cache-used"

    def planning(self, job_id: str) -> str:
        """A planner's claim on a job."""
        return f"{self.namespace}:planning:{job_id}"

    @property
    def redbeat(self) -> str:
        """The prefix of the beat's redbeat entries and lock."""
        return f"{self.namespace}:redbeat:"

    @property
    def beat_unacked(self) -> str:
        """The prefix of the beat's unacknowledged messages (kept apart from the workers')."""
        return f"{self.namespace}:beat:"


def job_prefix(job_id: str) -> str:
    """Return the prefix that holds everything of one job."""
    return f"jobs/{job_id}/"


def manifest_key(job_id: str) -> str:
    """Return the key of a job's manifest."""
    return f"jobs/{job_id}/manifest.json"


def chunk_prefix(job_id: str, doc: str) -> str:
    """Return the prefix holding a document's chunk objects."""
    return f"jobs/{job_id}/chunks/{doc}/"


def chunk_pcm_key(job_id: str, doc: str, index: int) -> str:
    """Return the key of chunk ``index``'s raw s16le PCM."""
    return f"jobs/{job_id}/chunks/{doc}/{index:06d}.pcm"


def chunk_json_key(job_id: str, doc: str, index: int) -> str:
    """Return the key of chunk ``index``'s word timings (:class:`ChunkRecord`)."""
    return f"jobs/{job_id}/chunks/{doc}/{index:06d}.json"


def job_cover_key(job_id: str, suffix: str) -> str:
    """Return the key of the cover image uploaded with an API job (``jpg`` or ``png``)."""
    return f"jobs/{job_id}/cover.{suffix}"


def output_key(job_id: str, doc: str, suffix: str) -> str:
    """Return the key of a document output, e.g. ``suffix='timestamps.json'``."""
    return f"jobs/{job_id}/out/{doc}.{suffix}"


def readalong_source_key(job_id: str, doc: str) -> str:
    """Return the key of an EPUB input kept for its read-along book until the job finishes."""
    return f"jobs/{job_id}/readalong/{doc}/source.epub"


def readalong_map_key(job_id: str, doc: str) -> str:
    """Return the key of where an EPUB input's text lies in its XHTML (a ``SourceMap``)."""
    return f"jobs/{job_id}/readalong/{doc}/source-map.json"


def assembly_key(job_id: str, doc: str, name: str) -> str:
    """Return the key of a file of the local executor's in-order assembly of ``doc``."""
    return f"jobs/{job_id}/assembly/{doc}/{name}"


def local_lock_key(job_id: str) -> str:
    """Return the key of the lock file a local run of the job holds."""
    return f"jobs/{job_id}/assembly/.lock"


def local_slots_key(job_id: str) -> str:
    """Return the key of the file through which pool processes hand chunks back."""
    return f"jobs/{job_id}/assembly/slots"


def document_outputs(
    job_id: str, doc: str, audio_suffix: str, *, cover: str | None = None
) -> dict[str, str]:
    """Return a document's outputs as ``{kind: key}``: audio, source, timestamps, srt, vtt
    and, if the document has one, its cover (``cover`` is its suffix, ``cover.jpg``)."""
    outputs = {
        "audio": output_key(job_id, doc, audio_suffix),
        "source": output_key(job_id, doc, "source.txt"),
        "timestamps": output_key(job_id, doc, "timestamps.json"),
        "srt": output_key(job_id, doc, "srt"),
        "vtt": output_key(job_id, doc, "vtt"),
    }
    if cover:
        outputs["cover"] = output_key(job_id, doc, cover)
    return outputs


def audio_key(job_id: str, doc: str, kind: str, audio_suffix: str) -> str:
    """Return the key of a document's audio output: the whole (``audio``) or a chapter (``001``)."""
    suffix = audio_suffix if kind == "audio" else f"{kind}.{audio_suffix}"
    return output_key(job_id, doc, suffix)


#: The prefix of the chunk cache, every scope.
CACHE_PREFIX: Final = "cache/"


def cache_prefix(scope: str) -> str:
    """Return the prefix of one scope of the chunk cache."""
    return f"{CACHE_PREFIX}{scope}/"


def cache_key(scope: str, address: str, suffix: str) -> str:
    """Return the key of a cached chunk's ``pcm`` or ``json``, fanned out by its first byte."""
    return f"{CACHE_PREFIX}{scope}/{address[:2]}/{address}.{suffix}"
