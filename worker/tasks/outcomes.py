"""What a task decided: the vocabulary between the task logic and its Celery wrapper."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Done:
    """The chunk (or job) is stored; ``synthesized`` is False if it already was."""

    synthesized: bool = False


@dataclass(frozen=True, slots=True)
class Dropped:
    """Nothing to do (job failed, cancelled or finished; someone else has the chunk or job)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Send ``message`` again after ``countdown`` seconds."""

    countdown: float
    message: dict[str, object]
    reason: str


@dataclass(frozen=True, slots=True)
class Requeue:
    """Put the message back at once: this worker is shutting down."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The chunk or job failed for good; ``reason`` is recorded in state and manifest."""

    reason: str


Outcome = Done | Dropped | Retry | Requeue | Failed
