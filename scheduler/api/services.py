"""The connections of an API process: store, Redis, the Celery producer, the source reader.

:class:`Services` is made once by the app factory (and by ``ttsbatch beat``
for its ports) and passed to everything the routes call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import redis
from celery import Celery

from scheduler.api.registry import Registry
from scheduler.api.sources import SourceReader
from scheduler.dispatch import create_producer
from scheduler.intake import send_plan
from scheduler.records import JobRecord
from ttsbatch import redisclient
from ttsbatch.models import JobStatus
from ttsbatch.roster import Roster
from ttsbatch.settings import Settings
from ttsbatch.state import JobState
from ttsbatch.storage import Store, open_store

#: Plans an accepted job, given its id and maybe its record (by default: queues the planning task).
Plan = Callable[[str, JobRecord | None], object]


@dataclass(frozen=True, slots=True)
class Services:
    """The connections of an API process, made once by the app factory."""

    settings: Settings
    store: Store
    state: JobState
    registry: Registry
    producer: Celery
    sources: SourceReader
    #: Plans an accepted job: sends the planning task to ``ttsbatch beat``.
    plan: Plan

    @classmethod
    def connect(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        client: redis.Redis | None = None,
        producer: Celery | None = None,
        plan: Plan | None = None,
    ) -> Services:
        """Open (lazily) the store, Redis and a producer named by ``settings``.

        Args:
            plan: plans an accepted job (default: queue the planning task).
        """
        store = store or open_store(settings.store)
        client = client or redisclient.connect(settings.redis_url, decode_responses=True)
        producer = producer or create_producer(settings)
        state = JobState(client)
        plan = plan or functools.partial(send_plan, producer)
        return cls(
            settings=settings,
            store=store,
            state=state,
            registry=Registry(client, store=store, replan=functools.partial(_replan, state, plan)),
            producer=producer,
            sources=SourceReader(settings.api, store),
            plan=plan,
        )

    @property
    def roster(self) -> Roster:
        """The workers' heartbeats, in the job state's Redis and namespace."""
        return Roster(self.state.client, namespace=self.state.namespace)


def _replan(state: JobState, plan: Plan, job_id: str) -> None:
    """Plan again a job accepted before Redis lost its state and its planning message."""
    if state.status(job_id) is None:
        state.set_status(job_id, JobStatus.QUEUED, only_if_active=False)
        plan(job_id, None)
