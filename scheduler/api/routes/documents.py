"""``/v1/jobs/{id}/documents``: a job's documents and chapters as a player reads them.

Chapters can be played before the job ends: each is ready as soon as its
chunks are stored, and plays as a WAV of its own until its document is
finished (:mod:`scheduler.api.listening`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from scheduler.api import views
from scheduler.api.deps import ServicesDep, TenantDep
from scheduler.api.listening import Listening
from scheduler.api.ranges import RANGED, RangeHeader, ranged_response
from scheduler.api.routes.common import CONFLICT, ERRORS, NOT_FOUND
from scheduler.api.schemas import ChapterView, DocumentList

router = APIRouter(prefix="/v1/jobs", tags=["listening"], responses=ERRORS)


def get_listening(request: Request) -> Listening:
    """Return the player's view the app factory made."""
    listening: Listening = request.app.state.listening
    return listening


ListeningDep = Annotated[Listening, Depends(get_listening)]
DocName = Annotated[str, Path(description="The document's `name` in the documents list.")]
ChapterIndex = Annotated[int, Path(ge=0, le=1_000_000, description="The chapter's `index`.")]


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get(
    "/{job_id}/documents",
    summary="List a job's documents and chapters, and which can be played",
    responses=NOT_FOUND,
)
def list_documents(
    job_id: str,
    *,
    request: Request,
    services: ServicesDep,
    tenant: TenantDep,
    listening: ListeningDep,
) -> DocumentList:
    """Return each document in order: status, finished audio (once stitched), chapters.

    A chapter is `ready` as soon as all its chunks are stored, before the job
    ends; its `url` gives its text, words and audio. A document without
    chapters is one chapter titled by the document; audio before the first
    chapter is a chapter too. Empty until the job is planned.
    """
    return listening.documents(views.owned(services, tenant, job_id), _root(request))


@router.get(
    "/{job_id}/documents/{name}/chapters/{index}",
    summary="A chapter's text and word times",
    responses={**NOT_FOUND, **CONFLICT},
)
def get_chapter(
    job_id: str,
    *,
    name: DocName,
    index: ChapterIndex,
    request: Request,
    services: ServicesDep,
    tenant: TenantDep,
    listening: ListeningDep,
) -> ChapterView:
    """Return the chapter's text and its words' times on the audio at `audio`.

    Finished (`final`): `audio` is the document's finished audio and times are
    absolute on it, `start`..`end` the chapter. While the job runs: `audio` is
    the chapter's own WAV and times start at 0. Word char offsets index
    `text`. 409 until the chapter is ready.
    """
    entry = views.owned(services, tenant, job_id)
    return listening.chapter(entry, name, index, _root(request))


@router.get(
    "/{job_id}/documents/{name}/chapters/{index}/audio",
    summary="A chapter's audio as synthesised so far (WAV, ranges)",
    response_class=Response,
    responses={
        **NOT_FOUND,
        **CONFLICT,
        **RANGED,
        200: {"content": {"audio/wav": {}}, "description": "The chapter's WAV."},
    },
)
def get_chapter_audio(
    job_id: str,
    *,
    name: DocName,
    index: ChapterIndex,
    services: ServicesDep,
    tenant: TenantDep,
    listening: ListeningDep,
    range_header: RangeHeader = None,
) -> Response:
    """Stream the chapter as a WAV: its chunks with the stitch's pauses, not mastered.

    Playable as soon as the chapter is ready, before the job ends; honours
    `Range` (206). Once the document is finished, a WAV or PCM job's chapter
    is cut from the finished file; an encoded one answers 409: play the
    document's audio from the chapter's `start`.
    """
    entry = views.owned(services, tenant, job_id)
    audio = listening.chapter_audio(entry, name, index)
    return ranged_response(
        range_header,
        audio.size,
        audio.read,
        media_type="audio/wav",
        headers={"Cache-Control": "no-cache"},
    )
