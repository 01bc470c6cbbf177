"""Progress reporting shared by the local and the distributed executor.

Neutral ground: neither executor's machinery is imported here, so a client of
the distributed executor (or the API) does not load the worker package.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttsbatch.models import JobStatus, Manifest


@dataclass(frozen=True, slots=True)
class ChunkDone:
    """What an executor reports for one finished chunk."""

    doc: str
    index: int
    chars: int
    seconds: float
    synthesized: bool


class Progress:
    """Receives progress of a job; the CLI renders it. The base class ignores it."""

    def start(self, manifest: Manifest, done: int, total: int) -> None:
        """Called once, with the chunks already stored (``done``) of ``total``."""

    def advance(self, chunk: ChunkDone) -> None:
        """Called for each chunk finished by this run."""

    def stage(self, status: JobStatus) -> None:
        """Called when the job enters a new stage (e.g. stitching)."""
