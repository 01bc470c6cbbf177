"""The ports of the scheduler domain: what runs, schedules and webhooks call out to.

The domain never imports :mod:`scheduler.api` (import-linter): the tenant
index, the reading of ``s3://`` sources and the submission of a job are the
API's today, so the domain names what it needs here and whoever composes it
(:mod:`scheduler.api.ports` for the API and for ``ttsbatch beat``) fills in
a :class:`Ports`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from scheduler.models import JobSpec
from ttsbatch.settings import Settings
from ttsbatch.state import JobState
from ttsbatch.storage import Store

#: The records the domain keeps in the tenant index besides jobs.
RecordKind = Literal["runs", "schedules"]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A document to speak: its bytes and its name (a file name or an object key)."""

    filename: str
    data: bytes


class JobRecord(Protocol):
    """A job as the tenant index knows it."""

    @property
    def job_id(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def tags(self) -> dict[str, str]: ...
    @property
    def webhook_url(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...


class Index(Protocol):
    """The tenant index: who owns which job, run and schedule; jobs whose webhook is due."""

    def put(self, kind: RecordKind, item_id: str, tenant: str, record: dict[str, object]) -> None:
        """Store a run or schedule record as the tenant's."""

    def get(
        self, kind: RecordKind, item_id: str, tenant: str | None = None
    ) -> dict[str, object] | None:
        """Return a record (with its ``tenant``); None if unknown or another tenant's."""

    def delete(self, kind: RecordKind, item_id: str, tenant: str) -> None:
        """Forget a run or schedule."""

    def job(self, job_id: str, tenant: str | None = None) -> JobRecord | None:
        """Return a job's record; None if unknown or (with ``tenant``) another tenant's."""

    def webhook_jobs(self) -> list[str]:
        """Return the jobs whose webhook is still to be called."""

    def claim_webhook(self, job_id: str) -> bool:
        """Take a job off the webhook list; True for the one caller that did."""


class Submit(Protocol):
    """Submits one document of a run as a job of ``tenant``; returns the job id.

    The job is named after the document unless ``spec`` names it.

    Raises:
        InputError: the document cannot be read or the spec is invalid.
    """

    def __call__(self, tenant: str, document: SourceFile, spec: JobSpec, *, run_id: str) -> str:
        """Submit the job."""


@dataclass(frozen=True, slots=True)
class Ports:
    """The connections and services the scheduler domain works with.

    Attributes:
        list_source: the ``s3://`` URLs of the objects under a prefix.
        read_source: the bytes of one object, refused above ``max_bytes``.
        rescue: re-sends what stalled jobs wait for (once per cluster, by the beat).
    """

    settings: Settings
    store: Store
    state: JobState
    index: Index
    list_source: Callable[[str], list[str]]
    read_source: Callable[[str, int], bytes]
    submit: Submit
    rescue: Callable[[], object]
