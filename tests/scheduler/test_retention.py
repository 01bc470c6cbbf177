"""Retention: an ended job's outputs go when its lifetime has passed; a running job's never."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scheduler import retention
from scheduler.costing import over_budget
from scheduler.ingest import ingest_text
from scheduler.planning import plan_job, write_plan
from ttsbatch import keys
from ttsbatch.billing import Billing, account_of
from ttsbatch.errors import BudgetError
from ttsbatch.manifests import read_manifest
from ttsbatch.models import Estimate, JobOptions, JobStatus, Manifest, SpendLimit, chars_for
from ttsbatch.state import JobState, mark_manifest
from ttsbatch.storage.local import LocalStore


def job(store: LocalStore, name: str, status: JobStatus) -> Manifest:
    document = ingest_text("The keeper climbed the stair. He lit the lamp.", name)
    manifest = write_plan(store, plan_job([document], JobOptions()), [document])
    plan = manifest.documents[0]
    store.write(keys.output_key(manifest.job_id, plan.doc, "wav"), b"RIFF")
    store.write(keys.chunk_pcm_key(manifest.job_id, plan.doc, 0), b"\0\0")
    mark_manifest(store, manifest.job_id, status, None)
    return manifest


def test_an_ended_job_loses_its_files_when_due_and_a_running_one_keeps_them(
    tmp_path: Path, redis_db_url: str
) -> None:
    store = LocalStore(tmp_path / "store")
    state = JobState.from_url(redis_db_url)
    now = time.time()
    done, running, later = (
        job(store, "done", JobStatus.SUCCEEDED),
        job(store, "running", JobStatus.RUNNING),
        job(store, "later", JobStatus.SUCCEEDED),
    )
    retention.mark(store, done.job_id, 1, now=now - 7200)
    retention.mark(store, running.job_id, 1, now=now - 7200)
    retention.mark(store, later.job_id, 1, now=now)
    retention.mark(store, "no-lifetime", None)

    assert retention.sweep(store, state, now=now) == 1
    gone = read_manifest(store, done.job_id)
    assert gone.expired and gone.outputs == {}
    assert list(store.list(keys.job_prefix(done.job_id) + "out/")) == []
    assert list(store.list(keys.job_prefix(done.job_id) + "chunks/")) == []
    for kept in (running, later):
        assert list(store.list(keys.job_prefix(kept.job_id) + "out/"))
        assert not read_manifest(store, kept.job_id).expired
    assert len(list(store.list("expiry/"))) == 2  # the running job's waits for the next sweep

    mark_manifest(store, running.job_id, JobStatus.CANCELLED, "cancelled by the user")
    assert retention.sweep(store, state, now=now) == 1
    assert read_manifest(store, running.job_id).expired
    assert retention.sweep(store, state, now=now + 3601) == 1  # the later one, when due
    assert list(store.list("expiry/")) == []


def test_a_tenants_month_is_tallied_and_the_cap_is_per_month(redis_db_url: str) -> None:
    billing = Billing(JobState.from_url(redis_db_url).client)
    account = account_of("key-a")
    assert account != account_of("key-b") and "key-a" not in account
    june = time.mktime((2026, 6, 15, 12, 0, 0, 0, 0, 0))
    limit = SpendLimit(account=account, monthly_cost_cap=2.0, price_per_million=1e6)
    billing.take("job-1", limit, 1, now=june)  # $1 a character
    billing.take("job-2", limit, 1, now=june)
    assert billing.spent(account, now=june) == 2.0
    with pytest.raises(BudgetError, match="monthly cap"):
        billing.take("job-2", limit, 1, now=june)
    billing.take("job-2", limit, 1, now=june + 31 * 86400)
    assert billing.spent(account, now=june + 31 * 86400) == 1.0  # July starts from nothing
    assert billing.spent(account_of("key-b"), now=june) == 0.0


@pytest.mark.parametrize(
    ("cost", "price", "chars"), [(0.0321, 15.0, 2140), (0.00003, 15.0, 2), (1.0, 4.0, 250_000)]
)
def test_a_cost_cap_buys_the_same_characters_before_the_start_and_while_running(
    cost: float, price: float, chars: int
) -> None:
    """One conversion (float error once made a cap accepted at its estimate stop at its end)."""
    assert chars_for(cost, price) == chars
    limit = SpendLimit.of(max_cost=cost, price_per_million=price)
    assert limit is not None and limit.max_chars == chars
    at_cap = Estimate(
        engine="together", chars=chars, chunks=1, cached_chunks=0, cached_chars=0,
        billed_chars=chars, audio_seconds=1.0, wall_seconds=1.0, price_per_million=price,
        cost=round(chars * price / 1e6, 6),
    )  # fmt: skip
    assert over_budget(at_cap, max_cost=cost, max_billed_chars=None) is None
    over = at_cap.model_copy(update={"billed_chars": chars + 1})
    assert over_budget(over, max_cost=cost, max_billed_chars=None) is not None
