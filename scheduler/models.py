"""What the scheduler domain takes and shows: a job's spec, a corpus run, a schedule.

These models cross from the domain to its callers (the REST API shows them as
they are, with the examples its OpenAPI document carries), so they live here
rather than in :mod:`scheduler.api.schemas`, which the domain never imports.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ttsbatch.models import (
    AudioFormat,
    BookInfo,
    JobOptions,
    JobStatus,
    LoudnessPreset,
    Pauses,
    ReadAlongUnit,
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256)]
MAX_TAGS: Final = 20


def iso(timestamp: float | None) -> str | None:
    """Return a POSIX time as ISO 8601 UTC, or None."""
    if not timestamp:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused, so typos are not ignored."""

    model_config = ConfigDict(extra="forbid")


class Caps(Body):
    """What a job may cost: checked against its estimate before it starts, and while it runs."""

    max_cost: float | None = Field(
        default=None,
        ge=0,
        description="USD: the job fails before anything is sent if its estimate is higher,"
        " and stops between requests if it reaches the cap while it runs (retries count);"
        " what it made is kept, and a retry with a higher cap finishes it.",
    )
    max_billed_chars: int | None = Field(
        default=None,
        ge=0,
        description="Characters sent to the provider, retries counted: as max_cost.",
    )


class JobSpec(Caps):
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
    audio_format: AudioFormat = Field(
        default=AudioFormat.WAV,
        description="wav or pcm (raw), or m4b, mp3, opus, flac (encoded, with chapters, tags"
        " and cover).",
    )
    loudness: LoudnessPreset | float | None = Field(
        default=None,
        description="audiobook (-18 LUFS), podcast (-16), ebu (-23), off, or a target in LUFS"
        " (-40..-5); left out: audiobook for encoded formats, off for wav and pcm.",
    )
    bitrate_kbps: int | None = Field(
        default=None, ge=8, le=320, description="Bit rate of m4b, mp3 or opus; left out: theirs."
    )
    split_chapters: bool = Field(
        default=False, description="Also write each chapter as a file of its own (encoded formats)."
    )
    read_along: bool = Field(
        default=False,
        description="Also write <name>.epub: an EPUB 3 with Media Overlays whose text"
        " highlights as its audio plays (an EPUB input keeps its own XHTML).",
    )
    read_along_unit: ReadAlongUnit = Field(
        default="sentence", description="What the read-along book highlights: sentence or word."
    )
    info: BookInfo | None = Field(
        default=None,
        description="The book's tags (title, author, narrator, album, year, language,"
        " description, publisher), put over those its source gives; a JSON object in a"
        " multipart form.",
    )
    preview_seconds: float | None = Field(
        default=None,
        ge=1,
        le=86_400,
        description="Speak only the first part of each document, about this much audio; the"
        " full job later takes those chunks from the cache.",
    )
    time_to_live_hours: float | None = Field(
        default=None,
        gt=0,
        le=24 * 365 * 10,
        description="Hours after which the job's outputs and chunks are removed (a running"
        " job's never are); left out: the deployment's TTSBATCH_API_JOB_TTL_HOURS.",
    )
    cache: bool = Field(
        default=True,
        description="Take chunks already spoken from the tenant's chunk cache (false:"
        " synthesise every chunk again, and pay for it).",
    )
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_TAGS)
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://",
        description="Called when the job succeeds or fails, signed as Standard Webhooks"
        " (webhook-id, webhook-timestamp, webhook-signature) and delivered at least once.",
    )

    @field_validator("loudness")
    @classmethod
    def _loudness_in_range(
        cls, value: LoudnessPreset | float | None
    ) -> LoudnessPreset | float | None:
        # The job options hold the range (JobOptions.loudness_target); refused here, it is a 422.
        JobOptions(loudness=value).loudness_target()
        return value

    @field_validator("info", mode="before")
    @classmethod
    def _info_from_form(cls, value: object) -> object:
        # A multipart form's fields are strings; its JSON fields (tags, pauses) are parsed
        # by the route, and this one here, so that both bodies take the same object.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError('a JSON object, e.g. {"title": "Emma"}') from None
        return value


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
