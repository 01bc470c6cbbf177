"""What the tasks of one worker process share: store, Redis state, engines, limiters, leases."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from ttsbatch.manifests import find_manifest
from ttsbatch.messages import LOCAL_ENGINES, FinalizeMessage
from ttsbatch.models import EngineSpec, JobStatus
from ttsbatch.settings import Settings
from ttsbatch.state import JobState, mark_manifest
from ttsbatch.storage import Store, open_store
from worker.celery_app import Tuning
from worker.engines import Engine
from worker.engines.factory import create_engine
from worker.limits import LimitedEngine, ProviderLimiter
from worker.tasks.leases import LeaseKeeper

#: Set when the worker starts a warm shutdown: in-flight chunks go back to the queue.
SHUTTING_DOWN = threading.Event()


def provider_of(spec: EngineSpec, settings: Settings) -> str:
    """Return the provider an engine spec talks to: the limits are shared per provider."""
    if spec.engine == "together":
        return f"together:{settings.together.base_url.rstrip('/')}"
    if spec.engine == "openai":
        return f"openai:{settings.openai.base_url.rstrip('/')}"
    return spec.engine


class WorkerContext:
    """What the tasks of one worker process share: store, Redis state, engines, limiters.

    Everything is created on first use, in the process that uses it (a prefork
    child never inherits its parent's connections, native engine state or threads).
    """

    def __init__(
        self,
        settings: Settings,
        tuning: Tuning,
        *,
        send_finalize: Callable[[FinalizeMessage], None],
        store: Store | None = None,
        state: JobState | None = None,
        engine_factory: Callable[[EngineSpec, Settings], Engine] = create_engine,
        shutting_down: threading.Event = SHUTTING_DOWN,
        renew_leases: bool = True,
    ) -> None:
        self.settings = settings
        self.tuning = tuning
        self.send_finalize = send_finalize
        self.shutting_down = shutting_down
        self.renew_leases = renew_leases
        self._store = store
        self._state = state
        self._keeper: LeaseKeeper | None = None
        self._engine_factory = engine_factory
        self._engines: dict[str, Engine] = {}
        self._local = threading.local()
        # Reentrant: engine() holds it while it reaches for state.
        self._lock = threading.RLock()

    @property
    def store(self) -> Store:
        """The job store (``TTSBATCH_STORE``)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings.store)
            return self._store

    @property
    def state(self) -> JobState:
        """Job state in Redis (``REDIS_URL``)."""
        with self._lock:
            if self._state is None:
                self._state = JobState.from_url(self.settings.redis_url)
            return self._state

    @property
    def keeper(self) -> LeaseKeeper:
        """Renews the chunk leases of this process (``TTSBATCH_WORKER_LEASE_TTL``)."""
        with self._lock:
            if self._keeper is None:
                self._keeper = LeaseKeeper(
                    self.state.leases, self.tuning.lease_ttl, renew=self.renew_leases
                )
            return self._keeper

    def engine(self, spec: EngineSpec) -> Engine:
        """Return this process's engine for ``spec``.

        Local engines (espeak) are not thread-safe: each thread gets its own,
        which espeak itself refuses past the first (use a prefork worker).
        Network engines are shared by the threads and hold a provider lease
        per request.
        """
        key = spec.model_dump_json()
        if spec.engine in LOCAL_ENGINES:
            engines: dict[str, Engine] = self._local.__dict__.setdefault("engines", {})
            if key not in engines:
                engines[key] = self._engine_factory(spec, self.settings)
            return engines[key]
        with self._lock:
            if key not in self._engines:
                limiter = ProviderLimiter(
                    self.state.client,
                    provider_of(spec, self.settings),
                    concurrency=self.settings.provider.concurrency,
                    rps=self.settings.provider.rps,
                    lease_ttl=self.tuning.lease_ttl,
                    namespace=self.state.namespace,
                )
                self._engines[key] = LimitedEngine(
                    self._engine_factory(spec, self.settings),
                    limiter,
                    max_wait=self.tuning.slot_wait,
                )
            return self._engines[key]

    def job_status(self, job_id: str) -> JobStatus | None:
        """The job's status: from Redis, else (state wiped) from the stored manifest."""
        status = self.state.status(job_id)
        if status is not None:
            return status
        manifest = find_manifest(self.store, job_id)
        return None if manifest is None else manifest.status

    def fail_job(self, job_id: str, reason: str) -> None:
        """Fail the job in Redis and in its stored manifest."""
        self.state.fail(job_id, reason)
        mark_manifest(self.store, job_id, JobStatus.FAILED, reason)


class ContextHolder:
    """One :class:`WorkerContext` per process (rebuilt after a fork)."""

    def __init__(self, factory: Callable[[], WorkerContext]) -> None:
        self._factory = factory
        self._context: WorkerContext | None = None
        self._pid = -1

    def get(self) -> WorkerContext:
        """This process's context."""
        if self._context is None or self._pid != os.getpid():
            self._context = self._factory()
            self._pid = os.getpid()
        return self._context
