"""Redis clients whose outages arrive as :class:`~ttsbatch.errors.BrokerError`.

Redis is the broker, the job-state index and the home of shared limits; when
it cannot be reached, every caller should hear one thing, naming
``REDIS_URL``, not a ``redis.exceptions.ConnectionError`` that the CLI calls
an internal error and the API a bare 500. The translation happens here, on the
client, where the library is called: every command goes through
``execute_command`` and every pipeline through ``execute``.

Only failures to reach or hear Redis are translated. A command Redis refused
(``ResponseError``: a bug, or ``NOSCRIPT``, which redis-py's script helper
handles itself) and ``WatchError`` (optimistic locking, expected) stay as
they are.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.client import Pipeline

from ttsbatch.errors import BrokerError

_OUTAGES = (redis.ConnectionError, redis.TimeoutError)


def connect(url: str, **options: Any) -> redis.Redis:
    """Return a client of the Redis at ``url`` (it connects on first use)."""
    client: redis.Redis = _Client.from_url(url, **options)
    return client


def outage(exc: Exception, url: str) -> BrokerError:
    """Return the BrokerError for a failure to reach the Redis at ``url``."""
    return BrokerError(
        f"Redis at {url} cannot be reached ({exc}): check REDIS_URL and that the server is running"
    )


def _where(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


class _Client(redis.Redis):
    def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call] # redis-py leaves it untyped
        except _OUTAGES as exc:
            raise outage(exc, _where(self)) from exc

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class _Pipeline(Pipeline):
    def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call] # redis-py leaves it untyped
        except _OUTAGES as exc:
            raise outage(exc, _where(self)) from exc

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return super().execute(raise_on_error)
        except _OUTAGES as exc:
            raise outage(exc, _where(self)) from exc
