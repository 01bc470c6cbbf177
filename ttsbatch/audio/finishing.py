"""A document's finished audiobook: its stitched PCM mastered and encoded, whole and by chapter.

Both executors end here with the same inputs: the document's PCM in a local
file, its placements, and the loudness measured as it was stitched. The local
executor points at its assembly file; the workers' finalize at a spool file it
fills from the store. The same bytes come out of both.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from ttsbatch.audio.encoding import Mark, encode_file
from ttsbatch.audio.mastering import Gain, Measured, Target, calibrate
from ttsbatch.audio.stitching import Placement, total_samples
from ttsbatch.audio.timeline import chapter_spans
from ttsbatch.models import AudioReport, BookInfo, Cover, DocumentPlan, JobOptions

#: The output kind of the whole document's audio; a chapter's file is its number, ``001``….
AUDIO = "audio"


def book_info(plan: DocumentPlan, options: JobOptions) -> BookInfo:
    """The tags of a document: its source's, with the job's over them, titled at least by name."""
    info = options.info.over(plan.info)
    return info if info.title else info.model_copy(update={"title": plan.name})


def marks(plan: DocumentPlan, placements: Sequence[Placement], title: str) -> list[Mark]:
    """The document's chapters on its audio; what precedes the first one is a chapter too.

    A player shows chapters from the start of the file, so audio before the
    first chapter (a preface the source did not list) gets the book's title.
    """
    spans = chapter_spans(plan.chapters, plan.chunks, placements)
    found = [
        Mark(chapter.title, start, end)
        for chapter, (start, end) in zip(plan.chapters, spans, strict=True)
        if end > start
    ]
    if found and found[0].start > 0:
        found.insert(0, Mark(title, 0, found[0].start))
    return found


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
