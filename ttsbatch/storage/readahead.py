"""Fetching a sequence of objects in order, several requests ahead."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

# Objects fetched ahead of the one being consumed: S3 answers each GET after a
# round trip, so reading one object at a time leaves the consumer waiting.
# Chunks are a few seconds of audio (~1 MB), so the window bounds memory to ~8 MB.
READ_AHEAD = 8

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(fetch: Callable[[T], R], items: Iterable[T], depth: int = READ_AHEAD) -> Iterator[R]:
    """Yield ``fetch(item)`` for each item in order, fetching up to ``depth`` ahead in threads."""
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="read-ahead") as pool:
        window: deque[Future[R]] = deque()
        pending = iter(items)
        for item in itertools.islice(pending, depth):
            window.append(pool.submit(fetch, item))
        while window:
            result = window.popleft().result()
            for item in itertools.islice(pending, 1):
                window.append(pool.submit(fetch, item))
            yield result
