"""A document's finished audiobook: its stitched PCM mastered and encoded, whole and by chapter.

Both executors end here with the same inputs: the document's PCM in a local
file, its placements, and the loudness measured as it was stitched. The local
executor points at its assembly file; the workers' finalize at a spool file it
fills from the store. The same bytes come out of both.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ttsbatch.audio.encoding import Mark, encode_file
from ttsbatch.audio.mastering import Gain, Measured, Target, calibrate
from ttsbatch.audio.readalong import Audio, Front, SourceMap, Spoken, build_book
from ttsbatch.audio.sections import sections
from ttsbatch.audio.stitching import Placement, total_samples
from ttsbatch.models import AudioFormat, AudioReport, BookInfo, Cover, DocumentPlan, JobOptions

#: The output kind of the whole document's audio; a chapter's file is its number, ``001``….
AUDIO = "audio"


def book_info(plan: DocumentPlan, options: JobOptions) -> BookInfo:
    """The tags of a document: its source's, with the job's over them, titled at least by name."""
    info = options.info.over(plan.info)
    return info if info.title else info.model_copy(update={"title": plan.name})


def marks(plan: DocumentPlan, placements: Sequence[Placement], title: str) -> list[Mark]:
    """The document's chapters on its audio, as :func:`~ttsbatch.audio.sections.sections`
    has them (a player shows chapters from the start of the file, so audio before the
    first chapter, a preface the source did not list, gets the book's title); none for
    a document without chapters."""
    if not plan.chapters:
        return []
    starts = [place.start for place in placements] + [total_samples(placements)]
    return [
        Mark(section.title, starts[section.first], starts[section.stop])
        for section in sections(plan.chapters, plan.chunks, title=title)
    ]


def finish_document(
    pcm: Path,
    folder: Path,
    *,
    plan: DocumentPlan,
    options: JobOptions,
    placements: Sequence[Placement],
    rate: int,
    measured: Measured | None,
    cover: Cover | None,
    offset: int = 0,
) -> tuple[AudioReport, dict[str, Path]]:
    """Encode the document's audio into ``folder``: the whole, and each chapter if asked.

    Args:
        pcm: The stitched s16 mono PCM (from byte ``offset``).
        folder: Where the files are written (``audio.<ext>``, ``001.<ext>``…).
        plan: The document.
        options: The job's options (format, loudness, bit rate, tags, split).
        placements: The document's chunks on its timeline.
        rate: The sample rate.
        measured: The loudness measured as the PCM was stitched (``None`` when
            mastering is off).
        cover: The cover to attach.
        offset: Bytes before the first sample (a WAV header).

    Returns:
        The whole file's report, and the files by output kind.
    """
    fmt = options.audio_format
    samples = total_samples(placements)
    goal = options.loudness_target()
    gain: Gain | None = None
    if goal is not None and measured is not None:
        target = Target(*goal)
        gain = calibrate(
            pcm, rate, offset=offset, samples=samples, measured=measured, target=target
        )
    info = book_info(plan, options)
    chapters = marks(plan, placements, info.title or plan.name)
    encode = functools.partial(
        encode_file,
        pcm,
        fmt=fmt,
        rate=rate,
        offset=offset,
        gain=gain,
        kbps=options.bitrate_kbps,
        cover=cover,
    )
    whole = folder / f"{AUDIO}.{fmt.value}"
    report = encode(whole, span=(0, samples), marks=chapters, info=info)
    files = {AUDIO: whole}
    if options.split_chapters:
        album = info.album or info.title
        for number, mark in enumerate(chapters, 1):
            part = folder / f"{number:03d}.{fmt.value}"
            encode(
                part,
                span=(mark.start, mark.end),
                info=info.model_copy(update={"title": mark.title, "album": album}),
                track=(number, len(chapters)),
            )
            files[f"{number:03d}"] = part
    return report, files


#: The output kind of a document's read-along book (``<doc>.epub``).
READ_ALONG = "epub"
#: Formats EPUB reading systems play (EPUB 3 core media types audio/mpeg, audio/mp4),
#: and what the book's audio file is called inside it.
_EPUB_AUDIO = {AudioFormat.MP3: ("audio/mpeg", "mp3"), AudioFormat.M4B: ("audio/mp4", "m4a")}


def finish_read_along(
    pcm: Path,
    folder: Path,
    *,
    plan: DocumentPlan,
    options: JobOptions,
    placements: Sequence[Placement],
    rate: int,
    text: str,
    spoken: Spoken,
    modified: str,
    encoded: Path | None = None,
    source: tuple[bytes, SourceMap] | None = None,
    cover: Cover | None = None,
    offset: int = 0,
) -> Path:
    """Write the document's read-along EPUB into ``folder``; return its path.

    Its audio is the job's own file when readers play that format (``encoded``,
    an MP3 or M4B); for WAV, PCM, Opus and FLAC jobs an MP3 is encoded from
    ``pcm`` at the format's defaults, unmastered (a WAV job's samples as they
    are): MP3 is the media type every EPUB 3 reading system plays.

    Args:
        pcm: The stitched s16 mono PCM (from byte ``offset``).
        folder: Where the files are written (``readalong.mp3``, ``readalong.epub``).
        plan: The document.
        options: The job's options.
        placements: The document's chunks on its timeline.
        rate: The sample rate.
        text: The document's text.
        spoken: Its units and words, collected as its timeline was written.
        modified: When the book was made (``CCYY-MM-DDThh:mm:ssZ``).
        encoded: The job's whole encoded file, if any.
        source: An EPUB input's bytes and its map (planning kept them).
        cover: The document's cover.
        offset: Bytes before the first sample (a WAV header).
    """
    fmt = options.audio_format
    info = book_info(plan, options)
    if encoded is not None and fmt in _EPUB_AUDIO:
        media_type, suffix = _EPUB_AUDIO[fmt]
        audio = Audio(encoded, media_type, suffix)
    else:
        path = folder / "readalong.mp3"
        encode_file(
            pcm,
            path,
            fmt=AudioFormat.MP3,
            rate=rate,
            span=(0, total_samples(placements)),
            offset=offset,
            gain=None,
            marks=marks(plan, placements, info.title or plan.name),
            info=info,
        )
        audio = Audio(path, *_EPUB_AUDIO[AudioFormat.MP3])
    front = Front(
        title=info.title or plan.name,
        language=info.language or options.engine.language or "und",  # und: not known (BCP 47)
        identifier=f"urn:sha256:{plan.source_sha256}",
        modified=modified,
        author=info.author,
        narrator=info.narrator,
    )
    out = folder / "readalong.epub"
    build_book(
        out,
        text=text,
        chapters=plan.chapters,
        spoken=spoken,
        front=front,
        audio=audio,
        cover=cover,
        source=source,
    )
    return out


def epub_time(created_at: str) -> str:
    """Return an ISO 8601 time as EPUB's ``dcterms:modified`` wants it (UTC, ``Z``, seconds)."""
    moment = datetime.fromisoformat(created_at).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
