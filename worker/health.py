"""Worker health without ``celery inspect ping``: a heartbeat file and its probe.

A consumer bootstep (:func:`install`) touches a file every :data:`INTERVAL`
seconds from the worker's own event-loop timer, which runs in the main worker
process whatever the pool. The file is fresh only while the consumer is
started (it is connected to the broker and consuming) and its loop turns: a
hung loop or a consumer that lost Redis stops refreshing it, and a dead process
stops everything. The probe (``python -m worker.health``) only compares the
file's age with a bound: no broker round trip, no Celery import, a few
milliseconds.

Kubernetes uses it as the worker's startup, readiness and liveness probes
(``helm/ttsbatch``); the image's ``HEALTHCHECK`` uses it for ``worker``
containers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from celery import Celery

#: Where the heartbeat is written unless told otherwise (the image keeps /tmp writable).
DEFAULT_PATH = Path(tempfile.gettempdir()) / "ttsbatch-worker.heartbeat"
#: Seconds between two touches of the heartbeat file.
INTERVAL = 10.0
#: Default age (s) past which the probe calls the worker unhealthy: six missed beats.
DEFAULT_MAX_AGE = 6 * INTERVAL


def beat(path: Path = DEFAULT_PATH) -> None:
    """Touch ``path`` now (creating it and its folder if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def problem(path: Path = DEFAULT_PATH, max_age: float = DEFAULT_MAX_AGE) -> str | None:
    """Return why the worker is unhealthy, or ``None`` if its heartbeat is fresh."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat at {path}: the worker's consumer has not started"
    age = time.time() - modified
    if age > max_age:
        return f"heartbeat {path} is {age:.0f} s old (limit {max_age:g} s)"
    return None


def install(app: Celery, path: Path = DEFAULT_PATH, interval: float = INTERVAL) -> None:
    """Add the heartbeat bootstep to ``app``'s consumer: call before the worker starts."""
    from celery import bootsteps  # noqa: PLC0415 - the probe must not pay for Celery

    class Heartbeat(bootsteps.StartStopStep):
        """Touch the heartbeat file from the consumer's timer while it consumes."""

        # Start after the task consumer, i.e. once the worker is really consuming.
        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.tref: Any = None

        def start(self, parent: Any) -> None:
            beat(path)
            self.tref = parent.timer.call_repeatedly(interval, beat, (path,))

        def stop(self, parent: Any) -> None:
            # The file is left to age: the probe sees a stalled or stopped consumer.
            if self.tref is not None:
                self.tref.cancel()
                self.tref = None

        shutdown = stop

    app.steps["consumer"].add(Heartbeat)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 if the heartbeat is fresh, else print why and exit 1."""
    parser = argparse.ArgumentParser(
        prog="python -m worker.health", description="Probe a ttsbatch worker's heartbeat file."
    )
    parser.add_argument("--file", type=Path, default=DEFAULT_PATH, help="heartbeat file")
    parser.add_argument(
        "--max-age", type=float, default=DEFAULT_MAX_AGE, help="oldest healthy heartbeat (s)"
    )
    args = parser.parse_args(argv)
    why = problem(args.file, args.max_age)
    if why is None:
        return 0
    print(f"unhealthy: {why}")  # noqa: T201 - the probe's answer goes to its output
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
