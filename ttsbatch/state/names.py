"""Names of a job's Redis keys, under a namespace (``ttsbatch`` unless told).

::

    <ns>:active              set    ids of jobs set up and not yet seen ended
    <ns>:job:<id>            hash   status, total, counts, timings, error, finalize_by,
                                    seq (the job's queue order), resent, stalls
    <ns>:job:<id>:done       set    ids of stored chunks (``doc/000042``): a
                                    redelivered chunk is not counted twice
    <ns>:job:<id>:events     list   one entry per newly stored chunk, for followers
    <ns>:job:<id>:errors     hash   chunk id -> its last error (cleared when stored)
    <ns>:job:<id>:failed     hash   chunk id -> why it failed for good
    <ns>:job:<id>:lock       string the finalize lock (``SET NX`` with expiry)
    <ns>:job:<id>:leases     zset   chunk id -> when its lease runs out (s)
    <ns>:job:<id>:owners     hash   chunk id -> the worker's token holding its lease
    <ns>:job:<id>:queued     zset   chunk id -> its place in the job's queue order
    <ns>:job:<id>:senders    hash   chunk id -> the task id of the message that
                                    holds that place ('' or absent: any)
"""

from __future__ import annotations

from dataclasses import dataclass

from ttsbatch.keys import RedisKeys

#: Every key of a job but its lock.
PARTS = ("", "done", "events", "errors", "failed", "leases", "owners", "queued", "senders")


@dataclass(frozen=True, slots=True)
class JobKeys(RedisKeys):
    """The key names of jobs under ``namespace`` (:class:`ttsbatch.keys.RedisKeys`), by part."""

    def parts(self, job_id: str, *parts: str) -> list[str]:
        """The keys of several parts of a job, in order."""
        return [self.job(job_id, part) for part in parts]

    def all(self, job_id: str) -> list[str]:
        """Every key of a job but its lock."""
        return self.parts(job_id, *PARTS)
