"""Read-along books: EPUB 3 with Media Overlays, made from a job's text, timeline and audio.

A reading system shows the book's text and plays its audio, highlighting each
sentence (or word) as it is spoken: every unit is a ``<span id>`` in an XHTML
content document, and a SMIL Media Overlay document points each one at its
clip of the audio (EPUB Media Overlays 3.3). Clips come from the job's
timeline, the same seconds as the timestamps JSON (:mod:`.timing`).

Text, Markdown and HTML inputs get XHTML written for them (:mod:`.generated`);
an EPUB input keeps its own files, with spans added where planning found its
text (:mod:`.anchors`, :mod:`.kept`). Pure: data in, an archive written to a
path the caller gives (:mod:`.parts`), no client of any service.
"""

from __future__ import annotations

from pathlib import Path

from ttsbatch.audio.readalong.anchors import SourceMap
from ttsbatch.audio.readalong.generated import OPF, generated_book
from ttsbatch.audio.readalong.kept import kept_book
from ttsbatch.audio.readalong.parts import Audio, Front, write_archive
from ttsbatch.audio.readalong.timing import Spoken
from ttsbatch.models import Chapter, Cover

__all__ = ["Audio", "Front", "SourceMap", "Spoken", "build_book"]


def build_book(
    out: Path,
    *,
    text: str,
    chapters: tuple[Chapter, ...],
    spoken: Spoken,
    front: Front,
    audio: Audio,
    cover: Cover | None,
    source: tuple[bytes, SourceMap] | None,
) -> None:
    """Write the read-along EPUB of one document to ``out``.

    Args:
        out: The file to write (replaced).
        text: The document's text, which every offset indexes.
        chapters: Its chapters (content documents of a generated book).
        spoken: Its units and words on the audio.
        front: Title, language, identifier, dates of a generated book; an EPUB
            input keeps its own but for ``modified`` and the narrator.
        audio: The audio file the clips point into.
        cover: A generated book's cover (an EPUB input keeps its own).
        source: An EPUB input's bytes and where its text lies in them.
    """
    prefix = "w" if spoken.unit == "word" else "s"
    if source is None:
        files = generated_book(
            text, chapters, spoken, front=front, audio=audio, cover=cover, prefix=prefix
        )
        write_archive(out, files, opf_path=OPF)
        return
    data, mapped = source
    opf_path, files = kept_book(
        data, mapped, spoken, front=front, audio=audio, prefix=f"ra-{prefix}"
    )
    write_archive(out, files, opf_path=opf_path)
