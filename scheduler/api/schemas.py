"""Request and response bodies of the REST API, with the examples OpenAPI shows.

A job's spec, runs and schedules are the domain's models (:mod:`scheduler.models`),
re-exported here with the bodies that only the API has.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduler.models import RUN_EXAMPLE, SCHEDULE_EXAMPLE, Body, JobSpec, Name, Run, Schedule
from ttsbatch.models import AudioReport, JobOptions, JobStatus, Usage

# JobSpec, Run and Schedule are the domain's; the routes and OpenAPI take them from here too.
__all__ = [
    "ChapterRef",
    "ChapterView",
    "ChunkError",
    "DocumentIn",
    "DocumentList",
    "DocumentView",
    "Health",
    "Job",
    "JobList",
    "JobProgress",
    "JobRequest",
    "JobResult",
    "JobSpec",
    "Problem",
    "ResultFile",
    "Run",
    "RunList",
    "RunRequest",
    "Schedule",
    "ScheduleList",
    "ScheduleRequest",
]


class DocumentIn(Body):
    """An inline document."""

    name: Name
    text: str = Field(min_length=1)


JOB_REQUEST_EXAMPLE: Final[dict[str, Any]] = {
    "input": "It was a bright cold day in April. The clocks were striking thirteen.",
    "name": "opening",
    "engine": "espeak",
    "voice": "en-us",
    "tags": {"project": "demo"},
}


class JobRequest(JobSpec):
    """A job: exactly one of ``input``, ``documents`` or ``source``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [JOB_REQUEST_EXAMPLE]})

    input: str | None = Field(default=None, min_length=1, description="Inline plain text.")
    documents: list[DocumentIn] | None = Field(default=None, min_length=1)
    source: str | None = Field(
        default=None,
        pattern=r"^s3://",
        description="s3://bucket/key of a document in a bucket the service may read.",
    )
    dry_run: bool = Field(
        default=False,
        description="Create no job and send nothing: answer 200 with what the job would cost"
        " (characters, chunks the tenant's cache holds, billed characters, audio length, time,"
        " money).",
    )


class ChunkError(BaseModel):
    """The last error of a chunk."""

    chunk: str
    error: str
    final: bool = Field(description="True when the chunk failed for good.")


class JobProgress(BaseModel):
    """Counts of a job's progress."""

    chunks_total: int
    chunks_done: int
    chunks_failed: int
    characters_total: int
    characters_done: int
    audio_seconds: float
    eta_seconds: float | None


JOB_EXAMPLE: Final[dict[str, Any]] = {
    "id": "3f9c0a1b2c3d4e5f6a7b",
    "name": "opening",
    "status": "running",
    "progress": {
        "chunks_total": 4,
        "chunks_done": 1,
        "chunks_failed": 0,
        "characters_total": 1530,
        "characters_done": 380,
        "audio_seconds": 24.5,
        "eta_seconds": 3.2,
    },
    "error": None,
    "warning": None,
    "errors": [],
    "documents": ["opening"],
    "tags": {"project": "demo"},
    "options": JobOptions().model_dump(mode="json"),
    "run_id": None,
    "webhook_url": None,
    "created_at": "2026-01-01T12:00:00Z",
    "started_at": "2026-01-01T12:00:00Z",
    "finished_at": None,
}


class Job(BaseModel):
    """A job as the API shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str
    name: str
    status: JobStatus
    progress: JobProgress
    error: str | None
    warning: str | None = Field(
        default=None,
        description="Why an active job cannot progress now, e.g. no running worker serves"
        " its engine; null otherwise.",
    )
    errors: list[ChunkError]
    documents: list[str]
    tags: dict[str, str]
    options: JobOptions
    run_id: str | None
    webhook_url: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    audio: dict[str, AudioReport] = Field(
        default_factory=dict,
        description="Per document, once the job succeeded: the audio written (format, codec,"
        " duration) and its mastering (loudness before and after, true peak, RMS, noise floor,"
        " whether it meets ACX's levels).",
    )
    usage: Usage | None = Field(
        default=None,
        description="Once the job succeeded: characters sent to the engine (retries apart),"
        " taken from the cache, and their cost.",
    )


class JobList(BaseModel):
    """A page of jobs, newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [JOB_EXAMPLE], "next_offset": None}]}
    )

    items: list[Job]
    next_offset: int | None = Field(
        description="Pass as ?offset= for the next page; null at the end."
    )


class ResultFile(BaseModel):
    """One output of a job."""

    name: str
    url: str
    size: int
    sha256: str


class JobResult(BaseModel):
    """Every output of a succeeded job, with URLs to download them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f9c0a1b2c3d4e5f6a7b",
                    "expires_in": 3600,
                    "files": [
                        {
                            "name": "opening.wav",
                            "url": "https://s3.example.com/bucket/jobs/3f9c/out/opening.wav?X-Amz-Signature=…",
                            "size": 112044,
                            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                        }
                    ],
                }
            ]
        }
    )

    id: str
    expires_in: int | None = Field(description="Seconds the URLs stay valid (null: API URLs).")
    files: list[ResultFile]


class ChapterRef(BaseModel):
    """A chapter in a document's list: whether it can be played yet, and where it is."""

    index: int
    title: str
    ready: bool = Field(description="Every chunk of the chapter is stored: it can be played.")
    url: str = Field(description="The chapter's resource (text, words, audio).")


class DocumentView(BaseModel):
    """A document of a job as a player shows it."""

    name: str = Field(description="The document's name in output keys and file names.")
    title: str | None
    status: Literal["pending", "running", "succeeded", "failed"]
    duration: float | None = Field(description="Seconds of the finished audio; null until then.")
    audio: str | None = Field(description="The finished audio (same origin); null until stitched.")
    chapters: list[ChapterRef] = Field(
        description="In order; a document without chapters is one, titled by the document."
    )


class DocumentList(BaseModel):
    """A job's documents, in order (none until the job is planned)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "documents": [
                        {
                            "name": "book",
                            "title": "Moby-Dick",
                            "status": "running",
                            "duration": None,
                            "audio": None,
                            "chapters": [
                                {
                                    "index": 0,
                                    "title": "Loomings",
                                    "ready": True,
                                    "url": "/v1/jobs/3f9c/documents/book/chapters/0",
                                }
                            ],
                        }
                    ]
                }
            ]
        }
    )

    documents: list[DocumentView]


class ChapterView(BaseModel):
    """A chapter's text and word times on the audio it plays in."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "index": 0,
                    "title": "Loomings",
                    "final": False,
                    "audio": "/v1/jobs/3f9c/documents/book/chapters/0/audio",
                    "start": 0.0,
                    "end": 3.52,
                    "text": "Call me Ishmael.",
                    "words": [[0.0, 0.31, 0, 4], [0.31, 0.52, 5, 7], [0.52, 1.2, 8, 15]],
                }
            ]
        }
    )

    index: int
    title: str
    final: bool = Field(
        description="The document is finished: `audio` is its finished audio, times absolute on it."
    )
    audio: str = Field(description="What to play: the finished audio, or the chapter's preview.")
    start: float = Field(description="Where the chapter starts in `audio` (s).")
    end: float = Field(description="Where it ends in `audio` (s).")
    text: str = Field(description="The chapter's text as spoken.")
    words: list[tuple[float, float, int, int]] = Field(
        description="[start, end, char_start, char_end]: seconds on `audio`, offsets in `text`."
    )


class Problem(BaseModel):
    """An error: what was wrong and what to change."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "too_many_jobs",
                    "detail": "tenant has 20 jobs running (the limit): wait for one to end or cancel one",
                }
            ]
        }
    )

    error: str
    detail: str


class RunRequest(JobSpec):
    """A corpus run: one job per document of ``source`` (an s3:// prefix) or of ``documents``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "s3://corpus/articles/",
                    "engine": "espeak",
                    "tags": {"batch": "nightly"},
                }
            ]
        },
    )

    source: str | None = Field(default=None, pattern=r"^s3://")
    documents: list[DocumentIn] | None = Field(default=None, min_length=1)


class RunList(BaseModel):
    """A page of runs, newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [RUN_EXAMPLE], "next_offset": None}]}
    )

    items: list[Run]
    next_offset: int | None


class ScheduleRequest(JobSpec):
    """A schedule: a cron expression, an s3:// prefix and the options of its jobs."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"cron": "0 2 * * *", "source": "s3://corpus/articles/", "engine": "espeak"}
            ]
        },
    )

    cron: str = Field(
        max_length=200, description="minute hour day-of-month month day-of-week (UTC)"
    )
    source: str = Field(pattern=r"^s3://", max_length=1200)


class ScheduleList(BaseModel):
    """A page of schedules, newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [SCHEDULE_EXAMPLE], "next_offset": None}]}
    )

    items: list[Schedule]
    next_offset: int | None


class Health(BaseModel):
    """Liveness or readiness, with a check per dependency."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "checks": {"redis": "ok", "store": "ok"}}]}
    )

    status: str
    checks: dict[str, str] = Field(default_factory=dict)
