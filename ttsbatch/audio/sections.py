"""A document's chapters as a listener picks them: which chunks and which text each holds.

Pure functions over the chunk plan. A chapter runs from its first chunk to the
next chapter's first chunk (:func:`ttsbatch.audio.timeline.first_chunks`, the
rule the timeline and the audiobook's chapter marks follow), so a chapter's
audio is a run of whole chunks with the stitch's pauses between them. As in a
finished audiobook's chapter marks (:func:`ttsbatch.audio.finishing.marks`, built from these),
chapters that hold no chunk are left out and what precedes the first chapter
is a section titled by the document; a document without chapters is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ttsbatch.audio.timeline import first_chunks
from ttsbatch.models import Chapter, ChunkSpan


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch of a document a listener can pick: chunks ``first`` to ``stop`` (exclusive).

    ``first`` and ``stop`` are positions in the document's chunk plan; the
    characters are those its chunks speak, from the first one's start to the
    last one's end.
    """

    index: int
    title: str
    first: int
    stop: int
    char_start: int
    char_end: int


def sections(
    chapters: Sequence[Chapter], chunks: Sequence[ChunkSpan], *, title: str
) -> list[Section]:
    """Return the document's sections in order, numbered from 0.

    Args:
        chapters: The document's chapters (may be empty).
        chunks: Its chunk plan, in order.
        title: The document's title: of the whole when it has no chapters, and
            of what precedes its first chapter.
    """
    bounds: list[tuple[str, int, int]] = []
    if chapters:
        firsts = first_chunks(chapters, chunks)
        stops = [*firsts[1:], len(chunks)]
        bounds = [
            (chapter.title, first, stop)
            for chapter, first, stop in zip(chapters, firsts, stops, strict=True)
            if stop > first
        ]
    if not bounds:
        bounds = [(title, 0, len(chunks))]
    elif bounds[0][1] > 0:
        bounds.insert(0, (title, 0, bounds[0][1]))
    return [
        Section(
            index=index,
            title=name,
            first=first,
            stop=stop,
            char_start=chunks[first].char_start if stop > first else 0,
            char_end=chunks[stop - 1].char_end if stop > first else 0,
        )
        for index, (name, first, stop) in enumerate(bounds)
    ]
