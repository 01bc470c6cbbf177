"""Worker heartbeats in Redis (a real server): announce, expire, withdraw."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ttsbatch.messages import FINALIZE_QUEUE, LOCAL_QUEUE, PROVIDER_QUEUE
from ttsbatch.roster import HEARTBEAT_INTERVAL, HEARTBEAT_TTL, Roster


@pytest.fixture
def roster(redis_db_url: str) -> Iterator[Roster]:
    roster = Roster.from_url(redis_db_url)
    yield roster
    roster.client.close()


def test_an_announced_worker_serves_its_queues_and_no_other(roster: Roster) -> None:
    roster.announce("w1@host", [PROVIDER_QUEUE, FINALIZE_QUEUE])
    assert roster.workers(PROVIDER_QUEUE) == ["w1@host"]
    assert roster.workers(LOCAL_QUEUE) == []
    everything = [LOCAL_QUEUE, PROVIDER_QUEUE, FINALIZE_QUEUE]
    assert roster.live_queues(everything) == {PROVIDER_QUEUE, FINALIZE_QUEUE}


def test_an_expired_heartbeat_counts_as_gone(roster: Roster) -> None:
    # A heartbeat whose lifetime ended already: a worker that died without a word.
    roster.announce("dead@host", [LOCAL_QUEUE], ttl=-1)
    roster.announce("alive@host", [PROVIDER_QUEUE])
    assert roster.workers(LOCAL_QUEUE) == []
    assert roster.live_queues([LOCAL_QUEUE, PROVIDER_QUEUE]) == {PROVIDER_QUEUE}


def test_a_withdrawn_worker_is_gone_at_once_and_others_stay(roster: Roster) -> None:
    roster.announce("w1@host", [LOCAL_QUEUE])
    roster.announce("w2@host", [LOCAL_QUEUE])
    roster.withdraw("w1@host", [LOCAL_QUEUE])
    assert roster.workers(LOCAL_QUEUE) == ["w2@host"]


def test_a_heartbeat_outlives_missed_beats_and_its_key_expires_eventually(
    roster: Roster,
) -> None:
    assert HEARTBEAT_TTL > 3 * HEARTBEAT_INTERVAL
    roster.announce("w1@host", [LOCAL_QUEUE])
    ttl = roster.client.ttl(roster.key(LOCAL_QUEUE))
    assert HEARTBEAT_TTL < ttl <= 10 * HEARTBEAT_TTL + 1


def test_namespaces_keep_rosters_apart(roster: Roster) -> None:
    other = Roster(roster.client, namespace="elsewhere")
    other.announce("w1@host", [LOCAL_QUEUE])
    assert roster.workers(LOCAL_QUEUE) == []
    assert other.workers(LOCAL_QUEUE) == ["w1@host"]


def test_the_waiting_reason_names_the_engine_and_the_queue_nobody_reads(roster: Roster) -> None:
    roster.announce("w1@host", [PROVIDER_QUEUE, FINALIZE_QUEUE])
    assert roster.waiting_reason("together") is None
    reason = roster.waiting_reason("espeak")
    assert reason is not None
    assert reason.startswith(
        f"no running worker serves engine espeak now (nobody consumes queue {LOCAL_QUEUE})"
    )
