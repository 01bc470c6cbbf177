"""Task messages: what the scheduler sends the workers through Celery, by task name.

``scheduler`` and ``worker`` never import each other (architecture.md): they
share these names and models, and the store. A message carries ids and keys,
the job's engine choice and the chunk's text; audio never rides in a message,
it goes through the store. Every model carries a versioned ``schema`` so a
worker refuses a message it does not understand instead of guessing.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field

from ttsbatch.models import EngineName, EngineSpec, Frozen, SpendLimit

#: Celery task names; the scheduler sends by name (``send_task``), never by import.
SYNTHESIZE_CHUNK: Final = "ttsbatch.synthesize_chunk"
FINALIZE_JOB: Final = "ttsbatch.finalize"

#: Queues. Engines that burn CPU (espeak) want a prefork worker; network
#: engines want many threads: separate queues let each pool take its kind.
LOCAL_QUEUE: Final = "ttsbatch.local"
PROVIDER_QUEUE: Final = "ttsbatch.provider"
FINALIZE_QUEUE: Final = "ttsbatch.finalize"
ALL_QUEUES: Final = (LOCAL_QUEUE, PROVIDER_QUEUE, FINALIZE_QUEUE)

#: Engines that run inside the worker process (no provider behind them).
LOCAL_ENGINES: Final = frozenset(e for e in EngineName if e.in_process)

CHUNK_MESSAGE_SCHEMA: Final = "ttsbatch.msg.chunk/1"
FINALIZE_MESSAGE_SCHEMA: Final = "ttsbatch.msg.finalize/1"


def queue_for(engine: str) -> str:
    """Return the queue that carries chunks of ``engine``."""
    return LOCAL_QUEUE if engine in LOCAL_ENGINES else PROVIDER_QUEUE


def chunk_id(doc: str, index: int) -> str:
    """Return a chunk's id within its job, as used in job state: ``doc/000042``."""
    return f"{doc}/{index:06d}"


class ChunkMessage(Frozen):
    """Synthesise chunk ``index`` of document ``doc`` of job ``job_id``."""

    schema_: Literal["ttsbatch.msg.chunk/1"] = Field(default=CHUNK_MESSAGE_SCHEMA, alias="schema")
    job_id: str
    doc: str
    index: int = Field(ge=0)
    text: str = Field(description="The chunk's text (at most the job's max_chars).")
    engine: EngineSpec
    attempt: int = Field(
        default=0, ge=0, description="Failed attempts so far, as counted by the retry policy."
    )
    cache_scope: str | None = Field(
        default=None,
        description="The chunk cache to look in and keep the chunk in (none: no cache).",
    )
    limit: SpendLimit | None = Field(
        default=None, description="What the job may send (its manifest's), checked before sending."
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def chunk_id(self) -> str:
        """This chunk's id within its job."""
        return chunk_id(self.doc, self.index)


class FinalizeMessage(Frozen):
    """Stitch job ``job_id`` once every chunk is stored."""

    schema_: Literal["ttsbatch.msg.finalize/1"] = Field(
        default=FINALIZE_MESSAGE_SCHEMA, alias="schema"
    )
    job_id: str
    keep_chunks: bool = False
    attempt: int = Field(default=0, ge=0)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def encode(message: ChunkMessage | FinalizeMessage) -> dict[str, object]:
    """Return ``message`` as the JSON-safe dict a task receives as its ``message`` kwarg."""
    return message.model_dump(mode="json", by_alias=True)
