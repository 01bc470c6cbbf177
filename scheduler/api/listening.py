"""Listening to a job, finished or not: its documents, chapters, their text, words and audio.

A document's chapters are :func:`ttsbatch.audio.sections.sections` of its
chunk plan (the manifest's): runs of whole chunks. A chapter is *ready* as soon
as every one of its chunks is stored, which the job state in Redis knows
(:meth:`ttsbatch.state.JobState.stored`, one ``SMISMEMBER``; the store is
listed only for a job Redis has forgotten). While the job runs, a ready
chapter plays as its own WAV (:class:`ttsbatch.audio.excerpts.Excerpt`: its
chunks with the stitch's pauses, unmastered, read from the chunk objects as a
range asks) with word times from its chunk records placed by the stitch's own
functions, so they equal the finished timeline's minus the chapter's start.
Once the document is stitched, chapters point into its finished audio with the
times of its timestamps file.

What does not change once made is kept per process (:class:`Memo`): the plan
of a job (its manifest, until the job ends), each document's source text, a
finished document's timeline (:class:`FinishedTimeline`), a ready chapter's
layout and words.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from scheduler.api.errors import ConflictError, GoneError, NotFoundError
from scheduler.api.memo import Memo
from scheduler.api.ranges import BLOCK, Reader
from scheduler.api.registry import JobEntry
from scheduler.api.results import output_keys
from scheduler.api.schemas import ChapterRef, ChapterView, DocumentList, DocumentView
from scheduler.api.services import Services
from scheduler.api.timelines import HEAD_BYTES, FinishedTimeline, WordTimes, head_duration
from ttsbatch import keys
from ttsbatch.audio import stitching
from ttsbatch.audio.excerpts import ChunkBytes, Excerpt, Silence
from ttsbatch.audio.finishing import book_info
from ttsbatch.audio.sections import Section, sections
from ttsbatch.audio.stitching import Placement
from ttsbatch.audio.timeline import seconds, timed_words
from ttsbatch.audio.wav import HEADER_SIZE
from ttsbatch.manifests import find_manifest
from ttsbatch.messages import chunk_id
from ttsbatch.models import AudioFormat, ChunkRecord, DocumentPlan, JobStatus, Manifest
from ttsbatch.storage import Store
from ttsbatch.storage.readahead import read_ahead

#: Manifests of jobs under way kept per process (a book's plan is a few MB of objects).
MANIFESTS: Final = 8
#: Source texts kept (a book's is about 1 MB).
TEXTS: Final = 8
#: Finished timelines kept (about 5 MB for Moby-Dick).
TIMELINES: Final = 4
#: Ready chapters' layouts and words kept (about 50 kB a chapter: all of Moby-Dick's, 7 MB).
PREVIEWS: Final = 256

#: Sections of documents kept (a book's: a few hundred small objects).
SECTIONS: Final = 16
#: Finished documents' durations kept (a float each: a large job's documents all fit).
DURATIONS: Final = 4096

#: Statuses in which a job's manifest does not change (but for its status, read from Redis).
#: While stitching it changes once, when the job succeeds: see :meth:`Listening._manifest`.
_STEADY = frozenset(
    {
        JobStatus.QUEUED,
        JobStatus.RUNNING,
        JobStatus.STITCHING,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }
)
#: Formats whose finished file holds the stitched PCM as it is: a chapter of it is a range.
_PLAIN = {AudioFormat.WAV: HEADER_SIZE, AudioFormat.PCM: 0}

DocumentStatus = Literal["pending", "running", "succeeded", "failed"]


@dataclass(frozen=True, slots=True)
class Preview:
    """A ready chapter of a document under way: its WAV, and its words (times from 0)."""

    excerpt: Excerpt
    duration: float
    words: WordTimes


@dataclass(frozen=True, slots=True)
class ChapterAudio:
    """A chapter's WAV as a range request reads it: its size and a reader of its bytes."""

    size: int
    read: Reader


@dataclass(frozen=True, slots=True)
class _Document:
    """A document of a job, with what a request about it needs."""

    manifest: Manifest
    plan: DocumentPlan
    sections: list[Section]
    status: JobStatus

    @property
    def final(self) -> bool:
        return (
            self.manifest.status is JobStatus.SUCCEEDED and self.plan.doc in self.manifest.outputs
        )

    def section(self, index: int) -> Section:
        if not 0 <= index < len(self.sections):
            raise NotFoundError(
                f"document {self.plan.doc} has chapters 0 to {len(self.sections) - 1}, not {index}"
            )
        return self.sections[index]


class Listening:
    """The player's view of a tenant's jobs, on an API process's services."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._manifests: Memo[str, Manifest] = Memo(MANIFESTS)
        self._texts: Memo[tuple[str, str], str] = Memo(TEXTS)
        self._timelines: Memo[tuple[str, str], FinishedTimeline] = Memo(TIMELINES)
        self._previews: Memo[tuple[str, str, int], Preview] = Memo(PREVIEWS)
        self._sections: Memo[tuple[str, str], list[Section]] = Memo(SECTIONS)
        self._durations: Memo[tuple[str, str], float] = Memo(DURATIONS)

    @property
    def store(self) -> Store:
        """The job store."""
        return self.services.store

    # -- the resources ---------------------------------------------------------

    def documents(self, entry: JobEntry, root: str) -> DocumentList:
        """Return the job's documents in order with their chapters (none until it is planned)."""
        found = self._manifest(entry.job_id)
        if found is None:
            return DocumentList(documents=[])
        manifest, status = found
        views = []
        for plan in manifest.documents:
            document = self._document(manifest, plan, status)
            ready = self._ready(document, document.sections)
            base = _url(root, entry.job_id, "documents", plan.doc, "chapters")
            views.append(
                DocumentView(
                    name=plan.doc,
                    title=book_info(plan, manifest.options).title,
                    status=_document_status(document),
                    duration=self._duration(document) if document.final else None,
                    audio=self._audio_url(document, root) if document.final else None,
                    chapters=[
                        ChapterRef(index=s.index, title=s.title, ready=r, url=f"{base}/{s.index}")
                        for s, r in zip(document.sections, ready, strict=True)
                    ],
                )
            )
        return DocumentList(documents=views)

    def chapter(self, entry: JobEntry, doc: str, index: int, root: str) -> ChapterView:
        """Return a chapter's text and words, on the finished audio or on its preview.

        Raises:
            NotFoundError: no such document or chapter.
            ConflictError: the chapter is not ready.
        """
        document = self._find(entry.job_id, doc)
        section = document.section(index)
        text = self._text(document.manifest.job_id, doc)[section.char_start : section.char_end]
        if document.final:
            timeline = self._timeline(document)
            start, end = timeline.span(section.first, section.stop)
            words = timeline.words.between(section.char_start, section.char_end)
            if document.manifest.options.audio_format is AudioFormat.PCM:
                # No browser plays raw PCM: the chapter's WAV, cut from it, and times on that.
                return ChapterView(
                    index=index,
                    title=section.title,
                    final=True,
                    audio=_url(
                        root, entry.job_id, "documents", doc, "chapters", str(index), "audio"
                    ),
                    start=0.0,
                    end=round(end - start, 6),
                    text=text,
                    words=[
                        (round(a - start, 6), round(b - start, 6), c, d) for a, b, c, d in words
                    ],
                )
            return ChapterView(
                index=index,
                title=section.title,
                final=True,
                audio=self._audio_url(document, root),
                start=start,
                end=end,
                text=text,
                words=words,
            )
        preview = self._preview(document, section)
        return ChapterView(
            index=index,
            title=section.title,
            final=False,
            audio=_url(root, entry.job_id, "documents", doc, "chapters", str(index), "audio"),
            start=0.0,
            end=preview.duration,
            text=text,
            words=preview.words.between(section.char_start, section.char_end),
        )

    def chapter_audio(self, entry: JobEntry, doc: str, index: int) -> ChapterAudio:
        """Return the chapter's WAV as synthesised so far: chunks, pauses, no mastering.

        Once the document is finished its chunks are gone: a chapter of a WAV
        or PCM document is then read from the finished file (the same bytes).

        Raises:
            NotFoundError: no such document or chapter.
            ConflictError: the chapter is not ready, or it is finished in an
                encoded format (play the document's audio instead).
        """
        document = self._find(entry.job_id, doc)
        section = document.section(index)
        job_id = entry.job_id
        if not document.final:
            excerpt = self._preview(document, section).excerpt
            return ChapterAudio(
                excerpt.size,
                lambda start, end: self._read(
                    excerpt, start, end, lambda i: keys.chunk_pcm_key(job_id, doc, i), 0
                ),
            )
        fmt = document.manifest.options.audio_format
        if fmt not in _PLAIN:
            raise ConflictError(
                f"document {doc} is finished as {fmt.value}: play its audio"
                f" (GET /v1/jobs/{job_id}/documents/{doc}/chapters/{index} says where)"
            )
        timeline = self._timeline(document)
        rate = timeline.sample_rate
        start, end = (round(t * rate) for t in timeline.span(section.first, section.stop))
        whole = Excerpt.of([Placement(0, 0, end - start, 0)], rate)
        key = document.manifest.outputs[doc]["audio"]
        offset = _PLAIN[fmt] + start * stitching.SAMPLE_WIDTH
        return ChapterAudio(whole.size, lambda a, b: self._read(whole, a, b, lambda _: key, offset))

    # -- what the resources are made of -------------------------------------------

    def _manifest(self, job_id: str, *, fresh: bool = False) -> tuple[Manifest, JobStatus] | None:
        """Return the job's manifest and status (Redis's, else the manifest's); None if unplanned.

        A kept manifest serves while Redis says the job is under way or ended
        without success: only its status changes then, and that is read from
        Redis. Otherwise (succeeded, or unknown to Redis) the manifest is read
        again until it says succeeded. (While stitching, the stitch rewrites
        it as succeeded and removes the chunks before Redis hears of it:
        ``fresh`` reads it again, as :meth:`_find` does when a document's
        first chunk is gone.)
        """
        status = self.services.state.status(job_id)
        kept = None if fresh else self._manifests.get(job_id)
        if kept is None or not (kept.status is JobStatus.SUCCEEDED or status in _STEADY):
            kept = find_manifest(self.store, job_id)
            if kept is None:
                return None
            self._manifests.put(job_id, kept)
        if kept.expired:
            raise GoneError(
                f"job {job_id}: its lifetime passed and its files were removed;"
                " submit it again to make them again"
            )
        return kept, status or kept.status

    def _document(self, manifest: Manifest, plan: DocumentPlan, status: JobStatus) -> _Document:
        def make() -> list[Section]:
            title = book_info(plan, manifest.options).title or plan.name
            return sections(plan.chapters, plan.chunks, title=title)

        found = self._sections.get_or_make((manifest.job_id, plan.doc), make)
        return _Document(manifest, plan, found, status)

    def _find(self, job_id: str, doc: str) -> _Document:
        """Return a document of the job, its manifest read again if its stitch just ended.

        While the job is stitching, the stitch may have rewritten the manifest
        and removed the document's chunks: if its first chunk's record is gone,
        the manifest is read again (one existence check per request, only then).
        """
        found = self._manifest(job_id)
        if found is None:
            raise NotFoundError(f"job {job_id} has no documents yet: it is not planned")
        manifest, status = found
        for plan in manifest.documents:
            if plan.doc != doc:
                continue
            document = self._document(manifest, plan, status)
            if (
                status is JobStatus.STITCHING
                and not document.final
                and plan.chunks
                and not self.store.exists(keys.chunk_json_key(job_id, doc, plan.chunks[0].index))
            ):
                return self._find_again(job_id, doc)
            return document
        names = ", ".join(plan.doc for plan in manifest.documents)
        raise NotFoundError(f"job {job_id} has no document {doc!r} (it has {names})")

    def _find_again(self, job_id: str, doc: str) -> _Document:
        found = self._manifest(job_id, fresh=True)
        if found is None:
            raise NotFoundError(f"no job {job_id} in the store (it was purged)")
        manifest, status = found
        plan = next(plan for plan in manifest.documents if plan.doc == doc)
        return self._document(manifest, plan, status)

    def _ready(self, document: _Document, wanted: Sequence[Section]) -> list[bool]:
        """Whether each of ``wanted`` has every chunk stored."""
        if document.final:
            return [True] * len(wanted)
        plan, job_id = document.plan, document.manifest.job_id
        positions = [i for section in wanted for i in range(section.first, section.stop)]
        ids = [chunk_id(plan.doc, plan.chunks[i].index) for i in positions]
        if self.services.state.status(job_id) is not None:
            flags = dict(zip(positions, self.services.state.stored(job_id, ids), strict=True))
        else:  # Redis forgot the job (lost, or long ended): the store knows
            stored = set(self.store.list(keys.chunk_prefix(job_id, plan.doc)))
            flags = {
                i: keys.chunk_json_key(job_id, plan.doc, plan.chunks[i].index) in stored
                for i in positions
            }
        return [
            section.stop > section.first
            and all(flags[i] for i in range(section.first, section.stop))
            for section in wanted
        ]

    def _preview(self, document: _Document, section: Section) -> Preview:
        """Return a ready chapter's layout and words.

        Raises:
            ConflictError: the chapter is not ready.
        """
        job_id, doc = document.manifest.job_id, document.plan.doc
        key = (job_id, doc, section.index)
        kept = self._previews.get(key)
        if kept is not None:
            return kept
        if not self._ready(document, [section])[0]:
            raise ConflictError(
                f"chapter {section.index} of {doc} is not ready: some of its chunks are still"
                f" being synthesised (job {job_id} is {document.status}); GET"
                f" /v1/jobs/{job_id}/documents says when it is"
            )
        return self._previews.put(key, self._make_preview(document, section))

    def _make_preview(self, document: _Document, section: Section) -> Preview:
        job_id, plan = document.manifest.job_id, document.plan
        chunks = plan.chunks[section.first : section.stop]

        def load(index: int) -> ChunkRecord:
            data = self.store.read(keys.chunk_json_key(job_id, plan.doc, index))
            return ChunkRecord.model_validate_json(data)

        records = list(read_ahead(load, [chunk.index for chunk in chunks]))
        rate = stitching.common_sample_rate((r.sample_rate for r in records), job_id=job_id)
        placements = stitching.layout(
            chunks,
            [r.samples for r in records],
            sample_rate=rate,
            pauses=document.manifest.options.pauses,
        )
        words = WordTimes.of(
            word
            for chunk, record, place in zip(chunks, records, placements, strict=True)
            for word in timed_words(chunk, record, place, rate)
        )
        duration = seconds(stitching.total_samples(placements), rate)
        return Preview(Excerpt.of(placements, rate), duration, words)

    def _text(self, job_id: str, doc: str) -> str:
        return self._texts.get_or_make(
            (job_id, doc),
            lambda: self.store.read(keys.output_key(job_id, doc, "source.txt")).decode(),
        )

    def _timeline(self, document: _Document) -> FinishedTimeline:
        job_id, doc = document.manifest.job_id, document.plan.doc
        key = document.manifest.outputs[doc]["timestamps"]
        return self._timelines.get_or_make(
            (job_id, doc),
            lambda: FinishedTimeline.parse(self.store.read(key), name=f"{doc}.timestamps.json"),
        )

    def _duration(self, document: _Document) -> float:
        """The finished audio's length: from its report, else its timestamps file's first bytes
        (read once per process: listing a job of many documents reads none again)."""
        job_id, doc = document.manifest.job_id, document.plan.doc
        report = document.manifest.audio.get(doc)
        if report is not None:
            return report.duration
        return self._durations.get_or_make((job_id, doc), lambda: self._stored_duration(document))

    def _stored_duration(self, document: _Document) -> float:
        job_id, doc = document.manifest.job_id, document.plan.doc
        timeline = self._timelines.get((job_id, doc))
        if timeline is None:
            head = self.store.read_range(
                document.manifest.outputs[doc]["timestamps"], 0, HEAD_BYTES
            )
            duration = head_duration(head)
            if duration is not None:
                return duration
            timeline = self._timeline(document)  # not as the stitch writes it: parse it all
        return timeline.duration

    def _audio_url(self, document: _Document, root: str) -> str:
        key = document.manifest.outputs[document.plan.doc]["audio"]
        name = next(n for n, k in output_keys(document.manifest).items() if k == key)
        return _url(root, document.manifest.job_id, "files", name)

    def _read(
        self, excerpt: Excerpt, start: int, end: int, key_of: Callable[[int], str], offset: int
    ) -> Iterator[bytes]:
        """Yield bytes ``start`` to ``end`` of ``excerpt`` in blocks of at most BLOCK.

        A chunk's bytes are read from the object ``key_of(chunk index)``,
        ``offset`` bytes in.
        """
        for piece in excerpt.pieces(start, end):
            if isinstance(piece, bytes):
                yield piece
            elif isinstance(piece, Silence):
                for at in range(0, piece.size, BLOCK):
                    yield bytes(min(BLOCK, piece.size - at))
            else:
                yield from self._chunk_bytes(key_of(piece.index), piece, offset)

    def _chunk_bytes(self, key: str, piece: ChunkBytes, offset: int) -> Iterator[bytes]:
        with self.store.open_range(key, offset + piece.start, offset + piece.end) as stream:
            left = piece.size
            while left and (block := stream.read(min(BLOCK, left))):
                left -= len(block)
                yield block
        if left:
            raise ConflictError(f"{key} ended {left} bytes early: it was removed or cut short")


def _document_status(document: _Document) -> DocumentStatus:
    """Succeeded once stitched; failed with its job (cancelled too); else its job's progress."""
    if document.final:
        return "succeeded"
    if document.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        return "failed"
    return "pending" if document.status is JobStatus.QUEUED else "running"


def _url(root: str, job_id: str, *parts: str) -> str:
    """Return the path of a resource of the job, under the app's root path."""
    quoted = "/".join(urllib.parse.quote(part, safe="") for part in (job_id, *parts))
    return f"{root}/v1/jobs/{quoted}"
