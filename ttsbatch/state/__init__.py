"""Job state in Redis, shared by the scheduler side and the workers.

Redis is a progress index, never the truth: the store is (architecture.md).

* :mod:`~ttsbatch.state.jobs` — :class:`JobState`: counts, statuses, errors,
  events, who finalizes, stalled jobs, the finalize lock;
* :mod:`~ttsbatch.state.leases` — chunk leases: which chunks live workers hold,
  which to send again (``JobState.leases``);
* :mod:`~ttsbatch.state.snapshots` — what the state answers;
* :mod:`~ttsbatch.state.names` — the Redis keys;
* :mod:`~ttsbatch.state.scripts` — the Lua scripts (``*.lua`` beside them) and the clock;
* :mod:`~ttsbatch.state.manifests` — the status recorded in the stored manifest.
"""

from ttsbatch.state.jobs import CANCELLED_BY_USER, FINISHED_TTL_SECONDS, JobState
from ttsbatch.state.leases import ChunkLeases, Take
from ttsbatch.state.manifests import mark_manifest
from ttsbatch.state.names import JobKeys
from ttsbatch.state.scripts import Clock
from ttsbatch.state.snapshots import TERMINAL, DoneEvent, DoneResult, JobSnapshot, Rescue

__all__ = [
    "CANCELLED_BY_USER",
    "FINISHED_TTL_SECONDS",
    "TERMINAL",
    "ChunkLeases",
    "Clock",
    "DoneEvent",
    "DoneResult",
    "JobKeys",
    "JobSnapshot",
    "JobState",
    "Rescue",
    "Take",
    "mark_manifest",
]
