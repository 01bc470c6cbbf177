"""The API process's memo: bounded, least recently used out, one make per key at a time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from scheduler.api.memo import Memo


def test_threads_missing_one_key_at_once_wait_for_a_single_make() -> None:
    memo: Memo[str, int] = Memo(2)
    made: list[str] = []
    lock = threading.Lock()

    def make() -> int:
        with lock:
            made.append("timeline")
        time.sleep(0.2)  # a slow parse: the others arrive meanwhile
        return 42

    with ThreadPoolExecutor(4) as pool:
        values = list(pool.map(lambda _: memo.get_or_make("book", make), range(4)))
    assert values == [42] * 4 and made == ["timeline"]
    assert memo.get_or_make("other", lambda: 7) == 7
    memo.get_or_make("third", lambda: 8)
    assert memo.get("book") is None  # least recently used out
