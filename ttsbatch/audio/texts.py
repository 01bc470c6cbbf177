"""What both executors write beside the audio: the timestamps head, words and subtitles.

The workers' finalize writes them over stored chunk records; the local
executor writes them as each chunk arrives. Either way they are written chunk
by chunk in order, to writers the caller opened, so that memory does not grow
with the book.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from ttsbatch.audio import subtitles
from ttsbatch.audio.readalong.timing import Spoken
from ttsbatch.audio.stitching import Placement
from ttsbatch.audio.timeline import (
    document_timing,
    timed_chunk,
    timed_words,
    timeline_head,
    word_line,
)
from ttsbatch.models import (
    ChunkRecord,
    ChunkSpan,
    DocumentPlan,
    SourceInfo,
    Timestamps,
    TimingSource,
)


class Sink(Protocol):
    """Where the texts go: a store's object writer, an open file, a buffer."""

    def write(self, data: bytes, /) -> int:
        """Append ``data``; return the number of bytes taken."""
        ...


def document_head(
    plan: DocumentPlan, placements: Sequence[Placement], rate: int, kinds: Iterable[TimingSource]
) -> Timestamps:
    """Return the document's timestamps file without its words (chapters, chunks, totals)."""
    return timeline_head(
        chunks=plan.chunks,
        placements=placements,
        chapters=plan.chapters,
        sample_rate=rate,
        source=SourceInfo(
            name=plan.source_name, sha256=plan.source_sha256, text_file=f"{plan.name}.source.txt"
        ),
        timing=document_timing(kinds),
    )


class ChunkTexts:
    """Writes a document's words (the timestamps' array), SRT and WebVTT, chunk by chunk in order.

    Both executors use it: finalize over stored records, and the local
    executor as each chunk arrives.
    """

    def __init__(
        self,
        text: str,
        rate: int,
        *,
        words: Sink,
        srt: Sink,
        vtt: Sink,
        spoken: Spoken | None = None,
    ) -> None:
        self.text = text
        self.rate = rate
        self.spoken = spoken  # a read-along book's units and words, collected as they pass
        self.words, self.srt, self.vtt = words, srt, vtt
        self.cues = 0
        self.first_word = True
        vtt.write(subtitles.VTT_HEADER.encode())

    def add(self, chunk: ChunkSpan, place: Placement, record: ChunkRecord) -> None:
        """Write the words and subtitle cues of the next chunk."""
        words = timed_words(chunk, record, place, self.rate)
        timed = timed_chunk(chunk, place, self.rate)
        if self.spoken is not None:
            self.spoken.add(chunk, timed, words)
        srt: list[str] = []
        vtt: list[str] = []
        for cue in subtitles.chunk_cues(chunk, timed, words, self.text):
            separator = "\n" if self.cues else ""
            self.cues += 1
            srt.append(separator + subtitles.srt_block(self.cues, cue))
            vtt.append(separator + subtitles.vtt_block(cue))
        self.srt.write("".join(srt).encode())
        self.vtt.write("".join(vtt).encode())
        if words:
            lines = [word_line(word, first=False) for word in words]
            if self.first_word:
                lines[0] = word_line(words[0], first=True)
                self.first_word = False
            self.words.write(b"".join(lines))
