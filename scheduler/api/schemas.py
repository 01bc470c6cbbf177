"""Request and response bodies of the REST API, with the examples OpenAPI shows."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ttsbatch.models import AudioFormat, JobOptions, JobStatus, Pauses

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256)]
MAX_TAGS: Final = 20


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused, so typos are not ignored."""

    model_config = ConfigDict(extra="forbid")


class JobSpec(Body):
    """How to speak: engine, voice and layout options, tags and a webhook."""

    name: Name | None = Field(default=None, description="Name of the job and of inline text.")
    engine: str | None = Field(
        default=None,
        description="espeak, together or openai; left out: the deployment's"
        " (TTSBATCH_DEFAULT_ENGINE, espeak unless set).",
    )
    model: str | None = Field(
        default=None,
        max_length=200,
        description="The provider's model (together, openai: required unless the deployment"
        " sets TTSBATCH_DEFAULT_MODEL for that engine); espeak takes none.",
    )
    voice: str | None = Field(
        default=None,
        max_length=200,
        description="The engine's voice (together, openai: required unless the deployment"
        " sets TTSBATCH_DEFAULT_VOICE for that engine).",
    )
    language: str | None = Field(default=None, max_length=35)
    max_chars: int | None = Field(default=None, ge=20, le=100_000)
    pauses: Pauses | None = None
    audio_format: AudioFormat = AudioFormat.WAV
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_TAGS)
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://",
        description="Called (HMAC-SHA256 signed) when the job succeeds or fails.",
    )


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


class RunProgress(BaseModel):
    """Aggregate progress of a run's jobs."""

    jobs_total: int
    jobs_by_status: dict[str, int]
    chunks_total: int
    chunks_done: int
    chunks_failed: int
    audio_seconds: float


RUN_EXAMPLE: Final[dict[str, Any]] = {
    "id": "r-5d41402abc4b2a76",
    "name": "articles",
    "status": "running",
    "source": "s3://corpus/articles/",
    "schedule_id": None,
    "jobs": ["3f9c0a1b2c3d4e5f6a7b"],
    "documents": {"articles/a.txt": "3f9c0a1b2c3d4e5f6a7b"},
    "skipped": [],
    "progress": {
        "jobs_total": 1,
        "jobs_by_status": {"running": 1},
        "chunks_total": 4,
        "chunks_done": 1,
        "chunks_failed": 0,
        "audio_seconds": 24.5,
    },
    "created_at": "2026-01-01T12:00:00Z",
}


class Run(BaseModel):
    """A corpus run: its jobs, by document, and their aggregate progress."""

    model_config = ConfigDict(json_schema_extra={"examples": [RUN_EXAMPLE]})

    id: str
    name: str | None
    status: JobStatus
    source: str | None
    schedule_id: str | None
    jobs: list[str]
    documents: dict[str, str]
    skipped: list[str] = Field(description="Documents left out: unchanged since the last run.")
    progress: RunProgress
    created_at: str | None


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


SCHEDULE_EXAMPLE: Final[dict[str, Any]] = {
    "id": "s-1a2b3c4d5e6f7a8b",
    "cron": "0 2 * * *",
    "source": "s3://corpus/articles/",
    "spec": {"engine": "espeak"},
    "created_at": "2026-01-01T12:00:00Z",
    "runs": ["r-5d41402abc4b2a76"],
}


class Schedule(BaseModel):
    """A schedule and the ids of its runs, newest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [SCHEDULE_EXAMPLE]})

    id: str
    cron: str
    source: str
    spec: dict[str, Any]
    created_at: str | None
    runs: list[str]


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
