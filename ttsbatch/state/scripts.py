"""The Lua scripts of the job state, read from the ``.lua`` files beside this module.

Every decision two processes could race on runs as one script. A script that
needs the time starts with the ``clock.lua`` prelude: its ``ARGV[1]`` is the
time of the call, ``''`` for Redis's own clock (``TIME``, shared by every
machine: what production uses) or a number of seconds from a :data:`Clock` the
caller was given, so that tests move time forward instead of sleeping.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources

import redis
from redis.commands.core import Script

#: Seconds since the epoch; given to a state object, it replaces Redis's clock.
Clock = Callable[[], float]


@functools.cache
def source(name: str, *preludes: str) -> str:
    """Return the text of ``<name>.lua`` after the text of each prelude (``clock``, ``statuses``)."""
    folder = resources.files(__package__)
    return "".join(folder.joinpath(f"{part}.lua").read_text() for part in (*preludes, name))


def register(client: redis.Redis, name: str, *preludes: str) -> Script:
    """Register ``<name>.lua`` (after its preludes) with ``client``."""
    return client.register_script(source(name, *preludes))


def now_arg(clock: Clock | None) -> str:
    """The ``ARGV[1]`` of a script with the clock prelude: the clock's time, or Redis's."""
    return "" if clock is None else f"{clock():.6f}"
