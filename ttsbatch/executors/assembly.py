"""The local executor's stitching: each document grows in plan order as its chunks arrive.

The distributed system stores every chunk and stitches when the last one lands
(:mod:`worker.finalize`). On one machine that writes the whole audio twice; here
the executor hands each chunk's PCM to its document's :class:`Assembly` as soon
as every chunk before it is in, and the audio, the words and the subtitles grow
in place. A journal of chunk records (one JSON line each, appended after the
chunk's audio) is what a rerun resumes from: the audio is cut back to what the
journal accounts for, and the words and subtitles are replayed from it. The
same layout, timeline and subtitle functions as finalize's write the outputs,
so they are byte-identical to the distributed system's.

For an encoded format the audio stays raw PCM while it grows, and its loudness
is measured as each chunk is appended (while the engines work); at the end it
is mastered and encoded by :func:`ttsbatch.audio.finishing.finish_document`,
as finalize does on the workers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

from ttsbatch import keys
from ttsbatch.audio import stitching
from ttsbatch.audio.finishing import AUDIO as FINISHED
from ttsbatch.audio.finishing import READ_ALONG, epub_time, finish_document, finish_read_along
from ttsbatch.audio.mastering import Meter, read_blocks
from ttsbatch.audio.readalong import Spoken
from ttsbatch.audio.stitching import SAMPLE_WIDTH, Placement
from ttsbatch.audio.texts import ChunkTexts, document_head
from ttsbatch.audio.timeline import JSON_END, json_start
from ttsbatch.audio.wav import HEADER_SIZE, wav_header
from ttsbatch.errors import JobError
from ttsbatch.manifests import read_cover
from ttsbatch.models import (
    AudioFormat,
    AudioReport,
    ChunkRecord,
    DocumentPlan,
    Manifest,
    TimingSource,
)
from ttsbatch.storage import ObjectPart
from ttsbatch.storage.files import FILE_MODE, write_all
from ttsbatch.storage.local import LocalStore
from ttsbatch.usage import UsageCounter
from worker.finalize import read_along_source

AUDIO, JOURNAL, WORDS, SRT, VTT = (
    "audio.part",
    "records.jsonl",
    "words.part",
    "srt.part",
    "vtt.part",
)


class Assembly:
    """One document's outputs in the making; open it, :meth:`add` chunks in order, :meth:`finish`.

    Opening resumes from the journal left by an interrupted run.
    """

    def __init__(
        self, store: LocalStore, manifest: Manifest, plan: DocumentPlan, text: str
    ) -> None:
        self.store = store
        self.plan = plan
        self.job_id = manifest.job_id
        self.options = manifest.options
        self.format = manifest.options.audio_format
        self.pauses = manifest.options.pauses
        self.header = HEADER_SIZE if self.format is AudioFormat.WAV else 0
        self.mastered = self.format.encoded and manifest.options.loudness_target() is not None
        self.created_at = manifest.created_at
        self.text = text
        self.spoken = Spoken(self.options.read_along_unit) if self.options.read_along else None
        self._meter: Meter | None = None
        self.report: AudioReport | None = None
        self.usage = UsageCounter()  # of every chunk placed, those of earlier runs too
        self.placements: list[Placement] = []
        self.kinds: set[TimingSource] = set()
        self.rate = 0
        self._end = 0  # samples placed so far, pauses included
        folder = self._path("")
        folder.mkdir(parents=True, exist_ok=True)
        records = self._read_journal()
        self._audio = self._journal = -1
        self._sinks: list[BinaryIO] = []
        try:
            self._audio = os.open(self._path(AUDIO), os.O_RDWR | os.O_CREAT, FILE_MODE)
            self._journal = os.open(
                self._path(JOURNAL), os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE
            )
            # Fresh files, not truncated ones: after finish() they are hard links
            # of published outputs, which a rerun must not empty.
            for name in (WORDS, SRT, VTT):
                self._path(name).unlink(missing_ok=True)
                self._sinks.append(self._path(name).open("wb"))
            words, srt, vtt = self._sinks
            self._texts = ChunkTexts(text, 0, words=words, srt=srt, vtt=vtt, spoken=self.spoken)
            self._resume(records)
        except BaseException:
            self.close()
            raise

    @property
    def done(self) -> int:
        """How many of the document's chunks (a prefix of its plan) are in."""
        return len(self.placements)

    def add(self, record: ChunkRecord, pcm: bytes | memoryview) -> None:
        """Append the next chunk in plan order: its audio and pause, words, cues, then journal line.

        Raises:
            JobError: if the PCM does not match the record, or the sample rate changed.
        """
        if len(pcm) != record.samples * SAMPLE_WIDTH:
            raise JobError(
                f"{self.plan.name}: chunk {record.index} has {len(pcm)} bytes of audio,"
                f" its record says {record.samples * SAMPLE_WIDTH}",
                job_id=self.job_id,
            )
        place = self._place(record)
        write_all(self._audio, pcm)
        write_all(self._audio, stitching.silence(place.gap))
        write_all(self._journal, record.model_dump_json(by_alias=True).encode() + b"\n")
        if self.mastered:
            meter = self._meter = self._meter or Meter(self.rate)
            meter.feed(pcm)
            meter.feed(stitching.silence(place.gap))

    def finish(self) -> dict[str, str]:
        """Complete the outputs and publish them under their keys; return ``{kind: key}``.

        The assembly's files stay until :func:`discard`, so a run killed in
        between still resumes.
        """
        if self.done != len(self.plan.chunks):
            raise JobError(
                f"{self.plan.name}: {len(self.plan.chunks) - self.done} chunks missing; cannot stitch",
                job_id=self.job_id,
            )
        if self.format is AudioFormat.WAV:
            os.pwrite(self._audio, wav_header(self._end, self.rate), 0)
        self.close()
        outputs = keys.document_outputs(
            self.job_id, self.plan.doc, self.format.value, cover=self.plan.cover
        )
        head = document_head(self.plan, self.placements, self.rate, self.kinds)
        words = self._key(WORDS)
        self.store.compose(
            outputs["timestamps"],
            [json_start(head), ObjectPart(words, self.store.size(words)), JSON_END],
        )
        for name, kind in ((SRT, "srt"), (VTT, "vtt")):
            # A hard link: the assembly's files stay until discard() for a rerun.
            self.store.download(self._key(name), self.store.path(outputs[kind]))
        if self.format.encoded:
            outputs.update(self._encode())
        else:
            self.store.download(self._key(AUDIO), self.store.path(outputs["audio"]))
        if self.spoken is not None:
            outputs[READ_ALONG] = self._read_along(self.spoken)
        return outputs

    def _read_along(self, spoken: Spoken) -> str:
        """Make the read-along EPUB beside the audio (as finalize does); publish it; return its key."""
        whole = self._path(f"{FINISHED}.{self.format.value}")
        book = finish_read_along(
            self._path(AUDIO),
            self._path(""),
            plan=self.plan,
            options=self.options,
            placements=self.placements,
            rate=self.rate,
            text=self.text,
            spoken=spoken,
            modified=epub_time(self.created_at),
            encoded=whole if self.format.encoded else None,
            source=read_along_source(self.store, self.job_id, self.plan),
            cover=read_cover(self.store, self.job_id, self.plan),
            offset=self.header,
        )
        key = keys.output_key(self.job_id, self.plan.doc, READ_ALONG)
        self.store.download(self._key(book.name), self.store.path(key))
        return key

    def _encode(self) -> dict[str, str]:
        """Master and encode the finished PCM beside it; publish the files; return their keys."""
        self.report, files = finish_document(
            self._path(AUDIO),
            self._path(""),
            plan=self.plan,
            options=self.options,
            placements=self.placements,
            rate=self.rate,
            measured=self._meter.result() if self._meter is not None else None,
            cover=read_cover(self.store, self.job_id, self.plan),
        )
        published: dict[str, str] = {}
        for kind, path in files.items():
            published[kind] = keys.audio_key(self.job_id, self.plan.doc, kind, self.format.value)
            self.store.download(self._key(path.name), self.store.path(published[kind]))
        return published

    def close(self) -> None:
        """Close the assembly's files (what was added stays; :meth:`finish` closes too)."""
        for sink in self._sinks:
            sink.close()
        for fd in (self._audio, self._journal):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._sinks = []
        self._audio = self._journal = -1

    def _key(self, name: str) -> str:
        return keys.assembly_key(self.job_id, self.plan.doc, name)

    def _path(self, name: str) -> Path:
        return self.store.path(self._key(name))

    def _place(self, record: ChunkRecord) -> Placement:
        """Place the next chunk on the timeline and write its words and cues."""
        chunk = self.plan.chunks[self.done]
        if record.index != chunk.index:
            raise ValueError(f"chunk {record.index} added where chunk {chunk.index} is next")
        if not self.rate:
            self.rate = self._texts.rate = record.sample_rate
        stitching.common_sample_rate([self.rate, record.sample_rate], job_id=self.job_id)
        place = stitching.place(
            chunk, record.samples, start=self._end, sample_rate=self.rate, pauses=self.pauses
        )
        self._end = place.end + place.gap
        self.placements.append(place)
        self.kinds.add(record.timing)
        self.usage.add(chunk.char_end - chunk.char_start, record)
        self._texts.add(chunk, place, record)
        return place

    def _read_journal(self) -> list[ChunkRecord]:
        """Return the journal's records that follow the plan, cutting off anything after them."""
        path = self._path(JOURNAL)
        records, size = read_journal(path, self.plan)
        if path.exists():
            os.truncate(path, size)
        return records

    def _resume(self, records: list[ChunkRecord]) -> None:
        """Replay the journal's chunks, then cut the audio back to what they account for."""
        for record in records:
            self._place(record)
        size = self.header + self._end * SAMPLE_WIDTH
        if records and os.fstat(self._audio).st_size < size:
            # The audio lost what the journal says it holds (it was replaced or
            # cut by hand): start this document over rather than trust either.
            os.ftruncate(self._journal, 0)
            raise _StartOver
        if records:
            os.ftruncate(self._audio, size)
            os.lseek(self._audio, size, os.SEEK_SET)
            if self.mastered:  # measure again what the earlier run appended
                self._meter = Meter(self.rate)
                for block in read_blocks(self._path(AUDIO), self.header, size - self.header):
                    self._meter.feed(block)
        else:
            os.ftruncate(self._audio, 0)
            write_all(self._audio, bytes(self.header))  # patched by finish()


class _StartOver(Exception):  # noqa: N818 - a signal inside this module, never raised out of it
    """The assembly's files disagree; the document starts from nothing."""


def read_journal(path: Path, plan: DocumentPlan) -> tuple[list[ChunkRecord], int]:
    """Return the records of a journal that follow ``plan`` in order, and their size in bytes.

    A line cut short, unreadable or out of order ends the journal there.
    """
    if not path.exists():
        return [], 0
    records: list[ChunkRecord] = []
    size = 0
    for line in path.read_bytes().splitlines(keepends=True):
        if not line.endswith(b"\n") or len(records) == len(plan.chunks):
            break
        try:
            record = ChunkRecord.model_validate_json(line)
        except ValueError:
            break
        if record.index != plan.chunks[len(records)].index:
            break
        records.append(record)
        size += len(line)
    return records, size


def journaled(store: LocalStore, manifest: Manifest, plan: DocumentPlan) -> int:
    """Return how many of ``plan``'s chunks an earlier run assembled (without opening it)."""
    path = store.path(keys.assembly_key(manifest.job_id, plan.doc, JOURNAL))
    return len(read_journal(path, plan)[0])


def discard(store: LocalStore, job_id: str, plan: DocumentPlan, *, keep_journal: bool) -> None:
    """Remove a finished document's assembly files (optionally keeping its journal)."""
    folder = keys.assembly_key(job_id, plan.doc, "")
    store.delete(
        key for key in list(store.list(folder)) if not (keep_journal and key.endswith(JOURNAL))
    )


def open_assembly(store: LocalStore, manifest: Manifest, plan: DocumentPlan, text: str) -> Assembly:
    """Open (or resume) the assembly of one document of a job."""
    try:
        return Assembly(store, manifest, plan, text)
    except _StartOver:
        return Assembly(store, manifest, plan, text)
