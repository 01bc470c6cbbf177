"""What the job state answers: snapshots of a job, its events, and decisions."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ttsbatch.models import JobStatus

TERMINAL: Final = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class DoneResult:
    """What :meth:`~ttsbatch.state.JobState.mark_done` decided."""

    known: bool  # False: no state for this job in Redis (wiped?)
    added: bool  # False: the chunk was counted before (a redelivery)
    done: int
    total: int
    last: bool  # True: this caller must enqueue finalize


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """One chunk newly stored, as a follower of the job sees it."""

    chunk: str
    audio_seconds: float
    synthesized: bool

    @property
    def doc(self) -> str:
        """The chunk's document id."""
        return self.chunk.rsplit("/", 1)[0]

    @property
    def index(self) -> int:
        """The chunk's index in its document."""
        return int(self.chunk.rsplit("/", 1)[1])


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A job's state at one moment.

    ``resent`` counts the chunks sent again because their lease ran out,
    ``stalls`` the times the whole job was found stalled and its missing chunks
    sent again (:mod:`ttsbatch.state.leases`).
    """

    job_id: str
    status: JobStatus
    total: int
    done: int
    chars_total: int = 0
    chars_done: int = 0
    audio_seconds: float = 0.0
    retries: int = 0
    keep_chunks: bool = False
    error: str | None = None
    failed: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    created_at: float | None = None
    started_at: float | None = None
    stitching_at: float | None = None
    finished_at: float | None = None
    resent: int = 0
    stalls: int = 0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until every chunk is stored, at the rate so far (None if unknown)."""
        if self.started_at is None or self.done == 0 or self.done >= self.total:
            return None
        elapsed = (self.finished_at or time.time()) - self.started_at
        return elapsed / self.done * (self.total - self.done)

    def reasons(self) -> str:
        """The job's error and the last error of each failed chunk, one per line."""
        lines = [self.error] if self.error else []
        lines += [f"{chunk}: {why}" for chunk, why in sorted(self.failed.items())]
        return "\n".join(dict.fromkeys(lines))


class Rescue(enum.Enum):
    """What a job gets sent again."""

    LEASES = "leases"  # chunks whose lease ran out
    CHUNKS = "chunks"  # every missing chunk without a live lease: the job stalled
    FINALIZE = "finalize"  # its finalize: the job stalled while stitching
