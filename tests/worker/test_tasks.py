"""The task logic with a real Redis and a real store, no Celery: outcomes of each case."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from scheduler.ingest import ingest_text
from scheduler.planning import plan_job, write_plan
from ttsbatch import keys
from ttsbatch.billing import Billing
from ttsbatch.errors import (
    AuthenticationError,
    PermanentEngineError,
    RateLimitedError,
    RetryableEngineError,
)
from ttsbatch.keys import RedisKeys
from ttsbatch.messages import ChunkMessage, FinalizeMessage
from ttsbatch.models import (
    Chapter,
    EngineSpec,
    JobOptions,
    JobStatus,
    Manifest,
    SpendLimit,
    TimingSource,
)
from ttsbatch.settings import Settings, WorkerSettings
from ttsbatch.state import JobState, Take
from ttsbatch.storage import Store
from worker.celery_app import tuning_for
from worker.engines import StopCheck, Synthesis
from worker.limits import ProviderBusyError
from worker.tasks import (
    Done,
    Dropped,
    Failed,
    HeldLease,
    LeaseKeeper,
    Requeue,
    Retry,
    WorkerContext,
    process_chunk,
    process_finalize,
)

TEXT = "One sentence here. Another one follows. A third ends it. And a fourth."


class Clock:
    """The test's own time, passed into the Lua scripts instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


class ScriptedEngine:
    """Speaks 300 samples (12.5 ms) per character, or raises what it is told to, in order.

    ``during`` runs in the middle of each synthesis, with its ``should_stop``.
    """

    name = "scripted"
    default_max_chars = 400

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.errors: list[Exception] = []
        self.during: Callable[[StopCheck | None], None] | None = None

    def synthesize(self, text: str, *, should_stop: StopCheck | None = None) -> Synthesis:
        self.calls.append(text)
        if self.during is not None:
            self.during(should_stop)
        if self.errors:
            raise self.errors.pop(0)
        return Synthesis(b"\x01\x00" * 300 * len(text), 24000, (), TimingSource.NONE)

    def close(self) -> None:
        pass


class Harness:
    def __init__(self, store: Store, redis_url: str) -> None:
        self.store = store
        self.clock = Clock()
        self.state = JobState.from_url(
            redis_url, namespace=f"t{uuid.uuid4().hex[:6]}", clock=self.clock
        )
        self.engine = ScriptedEngine()
        self.finalizes: list[FinalizeMessage] = []
        self.shutdown = threading.Event()
        settings = Settings(store=store.url, redis_url=redis_url)
        # "espeak" routes to the local-engine path: no provider lease in these tests.
        self.ctx = WorkerContext(
            settings,
            tuning_for(settings, WorkerSettings(retry_attempts=3, retry_cap=1.0)),
            send_finalize=self.finalizes.append,
            store=store,
            state=self.state,
            engine_factory=lambda spec, settings: self.engine,
            shutting_down=self.shutdown,
            renew_leases=False,  # the tests renew, or play a dead worker
        )
        # One explicit chapter: worker/timeline.py cannot yet time a document without any.
        plain = ingest_text(TEXT, "book")
        document = plain.model_copy(
            update={"chapters": (Chapter(index=0, title="One", char_start=0, char_end=len(TEXT)),)}
        )
        options = JobOptions(engine=EngineSpec(engine="espeak"), max_chars=20)
        self.manifest: Manifest = write_plan(store, plan_job([document], options), [document])
        self.state.init(self.manifest)
        plan = self.manifest.documents[0]
        self.messages = [
            ChunkMessage(
                job_id=self.manifest.job_id,
                doc=plan.doc,
                index=chunk.index,
                text=TEXT[chunk.char_start : chunk.char_end],
                engine=options.engine,
            )
            for chunk in plan.chunks
        ]

    def stored_manifest(self) -> Manifest:
        return Manifest.model_validate_json(
            self.store.read(keys.manifest_key(self.manifest.job_id))
        )


@pytest.fixture
def harness(local_store: Store, redis_db_url: str) -> Iterator[Harness]:
    h = Harness(local_store, redis_db_url)
    yield h
    h.state.client.close()


def test_the_last_chunk_enqueues_finalize_once_and_finalize_runs_once(harness: Harness) -> None:
    assert len(harness.messages) >= 3
    for n, message in enumerate(harness.messages):
        assert process_chunk(harness.ctx, message, f"task-{n}") == Done(synthesized=True)
    # A redelivery of the last message neither synthesises again nor double counts.
    last = len(harness.messages) - 1
    assert process_chunk(harness.ctx, harness.messages[-1], f"task-{last}") == Done(False)
    assert len(harness.engine.calls) == len(harness.messages)
    assert [m.job_id for m in harness.finalizes] == [harness.manifest.job_id] * 2  # same claimant
    assert process_finalize(harness.ctx, harness.finalizes[0]) == Done(synthesized=True)
    assert isinstance(process_finalize(harness.ctx, harness.finalizes[1]), Dropped)
    assert harness.stored_manifest().status is JobStatus.SUCCEEDED
    assert harness.state.status(harness.manifest.job_id) is JobStatus.SUCCEEDED


def test_finalize_is_skipped_while_another_worker_holds_the_lock(harness: Harness) -> None:
    for n, message in enumerate(harness.messages):
        process_chunk(harness.ctx, message, f"task-{n}")
    assert harness.state.lock(harness.manifest.job_id, "someone-else", ttl=30)
    assert isinstance(process_finalize(harness.ctx, harness.finalizes[0]), Dropped)
    assert harness.stored_manifest().status is JobStatus.QUEUED


def test_a_bad_key_fails_the_job_and_its_other_chunks_never_call_the_engine(
    harness: Harness,
) -> None:
    harness.engine.errors.append(AuthenticationError("401: invalid API key", status_code=401))
    outcome = process_chunk(harness.ctx, harness.messages[0], "t0")
    assert isinstance(outcome, Failed) and "invalid API key" in outcome.reason
    for n, message in enumerate(harness.messages[1:]):
        assert isinstance(process_chunk(harness.ctx, message, f"t{n + 1}"), Dropped)
    assert len(harness.engine.calls) == 1
    assert harness.stored_manifest().status is JobStatus.FAILED
    assert "invalid API key" in (harness.stored_manifest().error or "")


def test_a_cancelled_job_drops_its_chunks_without_calling_the_engine(harness: Harness) -> None:
    harness.state.cancel(harness.manifest.job_id)
    assert isinstance(process_chunk(harness.ctx, harness.messages[0], "t0"), Dropped)
    assert harness.engine.calls == []


def test_a_rate_limited_chunk_retries_after_the_servers_delay(harness: Harness) -> None:
    harness.engine.errors.append(RateLimitedError("429", retry_after=0.7, status_code=429))
    outcome = process_chunk(harness.ctx, harness.messages[0], "t0")
    assert isinstance(outcome, Retry)
    assert 0.7 <= outcome.countdown <= 1.1  # the hint, plus at most 10 % of the backoff
    assert outcome.message["attempt"] == 1
    snapshot = harness.state.snapshot(harness.manifest.job_id)
    assert snapshot is not None and "429" in snapshot.errors[harness.messages[0].chunk_id]


def test_waiting_for_a_provider_slot_is_not_counted_as_an_attempt(harness: Harness) -> None:
    harness.engine.errors.append(ProviderBusyError("busy", retry_after=0.5))
    outcome = process_chunk(harness.ctx, harness.messages[0], "t0")
    assert isinstance(outcome, Retry) and outcome.message["attempt"] == 0


def test_a_chunk_that_exhausts_its_retries_fails_the_job_with_the_reason(harness: Harness) -> None:
    message = harness.messages[0].model_copy(update={"attempt": 2})
    harness.engine.errors.append(RateLimitedError("429 again", status_code=429))
    outcome = process_chunk(harness.ctx, message, "t0")
    assert isinstance(outcome, Failed)
    snapshot = harness.state.snapshot(harness.manifest.job_id)
    assert snapshot is not None and snapshot.status is JobStatus.FAILED
    assert "429 again (after 3 attempt(s))" in snapshot.reasons()


def test_a_permanent_error_fails_the_chunk_at_once(harness: Harness) -> None:
    harness.engine.errors.append(PermanentEngineError("400: unknown voice", status_code=400))
    assert isinstance(process_chunk(harness.ctx, harness.messages[0], "t0"), Failed)
    assert harness.state.status(harness.manifest.job_id) is JobStatus.FAILED


def test_a_shutting_down_worker_requeues_instead_of_working(harness: Harness) -> None:
    harness.shutdown.set()
    assert process_chunk(harness.ctx, harness.messages[0], "t0") == Requeue()
    assert harness.engine.calls == []
    # Its message goes to the back of the queue, and so does the chunk's place in the order.
    leases = harness.state.leases
    assert leases.queued(harness.manifest.job_id)[-1] == harness.messages[0].chunk_id
    assert leases.expiries(harness.manifest.job_id) == {}


def test_chunks_of_a_job_wiped_from_redis_are_stored_and_not_finalized(harness: Harness) -> None:
    harness.state.client.flushdb()
    outcomes = [process_chunk(harness.ctx, m, f"t{n}") for n, m in enumerate(harness.messages)]
    assert all(o == Done(True) for o in outcomes)
    assert harness.finalizes == []
    snapshot = harness.state.rebuild_from_store(harness.store, harness.manifest)
    assert snapshot.done == snapshot.total


def test_network_engines_hold_a_shared_provider_lease_per_request(harness: Harness) -> None:
    message = harness.messages[0].model_copy(
        update={"engine": EngineSpec(engine="together", model="m", voice="v")}
    )
    assert process_chunk(harness.ctx, message, "t0") == Done(synthesized=True)
    assert harness.engine.calls == [message.text]
    # The lease was returned: nothing is in flight at the provider any more.
    limiter = harness.ctx.engine(message.engine).limiter  # type: ignore[attr-defined]
    assert limiter.in_flight() == 0


def test_a_chunk_holds_a_lease_while_it_is_synthesised_and_none_once_stored(
    harness: Harness,
) -> None:
    job_id, chunk = harness.manifest.job_id, harness.messages[0].chunk_id
    seen: list[dict[str, float]] = []
    harness.engine.during = lambda _: seen.append(harness.state.leases.expiries(job_id))
    assert process_chunk(harness.ctx, harness.messages[0], "t0") == Done(synthesized=True)
    assert seen == [{chunk: harness.clock.now + harness.ctx.tuning.lease_ttl}]
    assert harness.state.leases.expiries(job_id) == {}
    assert harness.state.leases.claim_expired(job_id) == {}


def test_a_second_message_of_a_chunk_a_live_worker_holds_is_dropped(harness: Harness) -> None:
    job_id, chunk = harness.manifest.job_id, harness.messages[0].chunk_id
    taken = harness.state.leases.take(job_id, chunk, owner="other", task_id="t0", ttl=15)
    assert taken is Take.TAKEN
    outcome = process_chunk(harness.ctx, harness.messages[0], "t0", redelivered=True)
    assert isinstance(outcome, Dropped) and "another worker" in outcome.reason
    assert harness.engine.calls == []


def test_a_retried_chunk_stays_leased_for_its_countdown_and_one_lifetime(
    harness: Harness,
) -> None:
    job_id, chunk = harness.manifest.job_id, harness.messages[0].chunk_id
    harness.engine.errors.append(RateLimitedError("429", retry_after=0.7, status_code=429))
    outcome = process_chunk(harness.ctx, harness.messages[0], "t0")
    assert isinstance(outcome, Retry)
    expiry = harness.clock.now + outcome.countdown + harness.ctx.tuning.lease_ttl
    assert harness.state.leases.expiries(job_id) == {chunk: pytest.approx(expiry)}
    # The retry runs (on any worker), takes the lease and stores the chunk.
    assert process_chunk(harness.ctx, harness.messages[0], "t0") == Done(synthesized=True)


def test_a_worker_whose_chunk_was_sent_again_stops_and_drops_it(harness: Harness) -> None:
    job_id = harness.manifest.job_id

    def frozen_past_its_lease(should_stop: StopCheck | None) -> None:
        harness.clock.now += harness.ctx.tuning.lease_ttl + 1  # no renewal got through
        assert harness.state.leases.claim_expired(job_id)  # a rescuer sent the chunk again
        harness.ctx.keeper.renew_now()  # the renewal that learns it
        assert should_stop is not None and should_stop()
        raise RetryableEngineError("stopped by the caller")

    harness.engine.during = frozen_past_its_lease
    outcome = process_chunk(harness.ctx, harness.messages[0], "t0")
    assert isinstance(outcome, Dropped) and "lease" in outcome.reason
    snapshot = harness.state.snapshot(job_id)
    assert snapshot is not None and snapshot.errors == {}  # not counted as a failed attempt


def test_the_lease_keeper_renews_from_a_thread_while_a_chunk_is_synthesised(
    harness: Harness,
) -> None:
    job_id, chunk = harness.manifest.job_id, harness.messages[0].chunk_id
    keeper = LeaseKeeper(harness.state.leases, ttl=0.3)  # renews every 0.1 s
    held = HeldLease(job_id, chunk, "w1")
    harness.state.leases.take(job_id, chunk, owner="w1", task_id="t0", ttl=0.3)
    with keeper.holding(held):
        harness.clock.now += 60  # long past its lifetime: only a renewal since brings it back
        deadline = time.monotonic() + 10
        while harness.state.leases.expiries(job_id)[chunk] < harness.clock.now:
            assert time.monotonic() < deadline, "the keeper did not renew the lease"
            time.sleep(0.02)
        assert not keeper.lost(held)
    keeper.stop()


def test_a_job_at_its_cap_stops_before_the_request_and_a_retry_with_more_goes_on(
    harness: Harness,
) -> None:
    """Each attempt takes its characters before it is sent; retries count against the cap."""
    first, second, *rest = harness.messages
    cap = len(first.text) * 2 + len(second.text) - 1  # room for the first chunk twice, no more
    capped = [m.model_copy(update={"limit": SpendLimit(max_chars=cap)}) for m in harness.messages]
    harness.engine.errors.append(RetryableEngineError("cut stream"))
    assert isinstance(process_chunk(harness.ctx, capped[0], "t0"), Retry)
    assert process_chunk(harness.ctx, capped[0].model_copy(update={"attempt": 1}), "t0") == Done(
        True
    )
    outcome = process_chunk(harness.ctx, capped[1], "t1")
    assert isinstance(outcome, Failed) and "stopped at its cap" in outcome.reason
    assert harness.engine.calls == [first.text, first.text]  # the second chunk was not sent
    assert harness.stored_manifest().status is JobStatus.FAILED
    assert harness.store.exists(keys.chunk_pcm_key(first.job_id, first.doc, first.index))
    # The cap raised (a retry remakes the messages from the manifest's new limit): it goes on.
    harness.state.init(harness.manifest)
    raised = SpendLimit(max_chars=cap + sum(len(m.text) for m in [second, *rest]))
    for n, message in enumerate([second, *rest], start=1):
        outcome = process_chunk(harness.ctx, message.model_copy(update={"limit": raised}), f"r{n}")
        assert outcome == Done(True)
    assert harness.engine.calls[2:] == [m.text for m in [second, *rest]]


def test_a_tenants_month_is_counted_per_request_and_stops_a_job_at_its_cap(
    harness: Harness,
) -> None:
    account = "a-test"
    price = 1e6  # $1 a character: the arithmetic is the test's
    first, second = harness.messages[:2]
    limit = SpendLimit(
        account=account, monthly_cost_cap=len(first.text) + 0.5, price_per_million=price
    )
    assert process_chunk(harness.ctx, first.model_copy(update={"limit": limit}), "t0") == Done(True)
    billing = Billing(harness.state.client, RedisKeys(harness.state.namespace))
    assert billing.spent(account) == pytest.approx(len(first.text))
    outcome = process_chunk(harness.ctx, second.model_copy(update={"limit": limit}), "t1")
    assert isinstance(outcome, Failed) and "monthly cap" in outcome.reason
    assert billing.spent(account) == pytest.approx(len(first.text))  # nothing taken for it
    assert harness.engine.calls == [first.text]


def test_a_request_that_never_left_is_given_back_to_the_jobs_allowance(harness: Harness) -> None:
    """No provider slot came free: nothing was sent, so nothing is taken from the caps."""
    limit = SpendLimit(
        max_chars=10_000, account="a-busy", monthly_cost_cap=100.0, price_per_million=1e6
    )
    message = harness.messages[0].model_copy(update={"limit": limit})
    harness.engine.errors.append(ProviderBusyError("busy", retry_after=0.5))
    assert isinstance(process_chunk(harness.ctx, message, "t0"), Retry)
    names = RedisKeys(harness.state.namespace)
    assert int(harness.state.client.get(names.spend(message.job_id)) or 0) == 0
    assert Billing.of(harness.state).spent("a-busy") == 0.0
    assert process_chunk(harness.ctx, message, "t0") == Done(True)
    assert int(harness.state.client.get(names.spend(message.job_id)) or 0) == len(message.text)


def test_a_request_in_flight_when_its_job_fails_ends_and_its_chunk_is_kept(
    harness: Harness,
) -> None:
    """Another chunk took the job to its cap meanwhile: this request was paid, so it ends."""
    job_id = harness.manifest.job_id
    asked: list[bool] = []

    def job_fails_meanwhile(should_stop: StopCheck | None) -> None:
        harness.ctx.fail_job(job_id, "book/000001: stopped at its cap")
        assert should_stop is not None
        asked.append(should_stop())

    harness.engine.during = job_fails_meanwhile
    message = harness.messages[0]
    assert process_chunk(harness.ctx, message, "t0") == Done(True)
    assert asked == [False]
    assert harness.store.exists(keys.chunk_pcm_key(job_id, message.doc, message.index))
    assert isinstance(process_chunk(harness.ctx, harness.messages[1], "t1"), Dropped)  # not sent
