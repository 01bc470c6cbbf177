"""Encoding: a document's mastered PCM into M4B, MP3, Opus or FLAC, with chapters, tags and cover.

PyAV (FFmpeg's libraries, shipped in its wheel) encodes and muxes; FFmpeg's
muxers write the chapters every player reads (MP4: a QuickTime chapter track
and Nero ``chpl``; MP3: ID3v2 ``CHAP`` frames under a ``CTOC``; Ogg and FLAC:
``CHAPTERxxx`` Vorbis comments) and the tags; :mod:`ttsbatch.audio.tagging`
adds the cover. Each muxer also records the encoder's priming and padding
(an MP4 edit list, the LAME header, Opus pre-skip), so a player's first sample
is the timeline's first sample and the timestamps describe the encoded file.

Choices (README, "Output formats"): AAC-LC at 64 kb/s with FFmpeg's ``fast``
coder (the default coder runs at 22x real time, ``fast`` at about 170x, with no
difference a listener hears in speech at this rate); MP3 64 kb/s CBR (LAME);
Opus 32 kb/s, resampled to 24 kHz (Opus takes no 22.05 kHz); FLAC, lossless.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.container

from ttsbatch.audio.mastering import Gain, Master, read_blocks
from ttsbatch.audio.stitching import SAMPLE_WIDTH
from ttsbatch.audio.tagging import add_chapters, add_cover
from ttsbatch.models import AudioFormat, AudioReport, BookInfo, Cover


@dataclass(frozen=True, slots=True)
class Codec:
    """How one format is encoded and muxed."""

    codec: str
    muxer: str
    kbps: int | None
    options: Mapping[str, str] = field(default_factory=dict)
    muxer_options: Mapping[str, str] = field(default_factory=dict)
    rates: tuple[int, ...] = ()  # the sample rates the codec takes; empty: any

    def rate_for(self, rate: int) -> int:
        """The sample rate to encode ``rate`` Hz audio at: the lowest taken rate not below it."""
        if not self.rates or rate in self.rates:
            return rate
        return min((r for r in self.rates if r >= rate), default=max(self.rates))


CODECS: Mapping[AudioFormat, Codec] = {
    # movflags=faststart: the index first, so a player (or a browser) starts at once.
    AudioFormat.M4B: Codec("aac", "ipod", 64, {"aac_coder": "fast"}, {"movflags": "+faststart"}),
    # LAME -q 4 and Opus complexity 6: the fastest settings before the quality drops
    # (LAME -q 7 and Opus 8+ run at 2-4x the cost of these; measured in the README).
    AudioFormat.MP3: Codec("libmp3lame", "mp3", 64, {"compression_level": "4"}),
    AudioFormat.OPUS: Codec(
        "libopus",
        "ogg",
        32,
        {"compression_level": "6"},
        rates=(8000, 12000, 16000, 24000, 48000),
    ),
    AudioFormat.FLAC: Codec("flac", "flac", None),
}


#: Frames (of 4096 samples) queued between the mastering and the encoder thread.
_QUEUED_FRAMES = 32

#: Formats whose chapters are Vorbis comments, written by :mod:`ttsbatch.audio.tagging`.
_VORBIS_CHAPTERS = frozenset({AudioFormat.FLAC, AudioFormat.OPUS})


_NO_INFO = BookInfo()


@dataclass(frozen=True, slots=True)
class Mark:
    """A chapter on the encoded file: its title and sample range at the document's rate."""

    title: str
    start: int
    end: int


def tags_of(info: BookInfo, *, track: tuple[int, int] | None = None) -> dict[str, str]:
    """Return FFmpeg's generic metadata keys for ``info`` (each muxer maps them to its own)."""
    tags = {
        "title": info.title,
        "artist": info.author,
        "album_artist": info.author,
        "album": info.album or info.title,
        "composer": info.narrator,  # where audiobook players look for the narrator
        "date": info.year,
        "language": info.language,
        "comment": info.description,
        "description": info.description,
        "publisher": info.publisher,
        "genre": "Audiobook",
        "track": f"{track[0]}/{track[1]}" if track else None,
    }
    return {key: value for key, value in tags.items() if value}


class _Encoder:
    """Encodes and muxes frames in a thread of its own, while the caller masters the next ones.

    FFmpeg's filter graphs hold the GIL through PyAV, its encoders release it:
    on two cores the mastering and the encoding overlap.
    """

    def __init__(self, container: av.container.OutputContainer, stream: av.AudioStream) -> None:
        self.container, self.stream = container, stream
        self.frames: queue.Queue[av.AudioFrame | None] = queue.Queue(maxsize=_QUEUED_FRAMES)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        self.done = self.pool.submit(self._run)

    def __enter__(self) -> _Encoder:
        return self

    def put(self, frame: av.AudioFrame | None) -> None:
        """Queue a frame (``None``: the end); raise what the encoder raised, if it stopped."""
        while True:
            if self.done.done():
                self.done.result()  # raises the encoder's error
                raise RuntimeError("the encoder stopped before the end of the audio")
            try:
                self.frames.put(frame, timeout=0.1)
            except queue.Full:
                continue
            return

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        try:
            if error is None:
                self.put(None)
                self.done.result()
            else:  # the mastering failed: let the thread reach the end mark and stop
                while not self.done.done():
                    with contextlib.suppress(queue.Full):
                        self.frames.put(None, timeout=0.1)
        finally:
            self.pool.shutdown(wait=True)

    def _run(self) -> None:
        while (frame := self.frames.get()) is not None:
            self.container.mux(self.stream.encode(frame))
        self.container.mux(self.stream.encode(None))


def encode_file(
    path: Path,
    out: Path,
    *,
    fmt: AudioFormat,
    rate: int,
    span: tuple[int, int],
    offset: int = 0,
    gain: Gain | None,
    kbps: int | None = None,
    marks: Sequence[Mark] = (),
    info: BookInfo = _NO_INFO,
    track: tuple[int, int] | None = None,
    cover: Cover | None = None,
) -> AudioReport:
    """Encode samples ``span`` of the raw s16 mono file ``path`` (from byte ``offset``) to ``out``.

    Args:
        path: The document's stitched PCM.
        out: The file to write (replaced).
        fmt: An encoded format.
        rate: The PCM's sample rate.
        span: The first sample and the sample after the last.
        offset: Bytes before the first sample of the file (a WAV header).
        gain: The document's mastering, or ``None`` to keep the samples as they are.
        kbps: Bit rate, or ``None`` for the format's default.
        marks: Chapters, at ``rate`` and relative to the file's start.
        info: Tags.
        track: This file's number and the count, for a book split in files.
        cover: The image to attach.

    Returns:
        What was written, and its loudness.
    """
    codec = CODECS[fmt]
    out_rate = codec.rate_for(rate)
    kbps = kbps or codec.kbps
    start, end = span
    # bitexact: no random Ogg serial numbers, no library versions: the same job
    # writes the same bytes on a laptop and on a worker.
    container = av.open(
        str(out),
        "w",
        format=codec.muxer,
        container_options={"fflags": "+bitexact", **codec.muxer_options},
    )
    try:
        stream = cast("av.AudioStream", container.add_stream(codec.codec, rate=out_rate))
        stream.codec_context.layout = "mono"
        if kbps:
            stream.bit_rate = kbps * 1000
        stream.codec_context.options = dict(codec.options)
        container.metadata.update(tags_of(info, track=track))
        container.set_chapters(
            []
            if fmt in _VORBIS_CHAPTERS
            else [
                {
                    "id": number + 1,
                    "start": mark.start,
                    "end": mark.end,
                    "time_base": Fraction(1, rate),
                    "metadata": {"title": mark.title},
                }
                for number, mark in enumerate(marks)
            ]
        )
        master = Master(rate, gain=gain, out_rate=out_rate)
        blocks = read_blocks(path, offset + start * SAMPLE_WIDTH, (end - start) * SAMPLE_WIDTH)
        with _Encoder(container, stream) as encoder:
            for block in blocks:
                for frame in master.feed(block):
                    encoder.put(frame)
            for frame in master.close():
                encoder.put(frame)
    finally:
        container.close()
    if marks and fmt in _VORBIS_CHAPTERS:
        add_chapters(out, fmt, [(mark.title, mark.start / rate) for mark in marks])
    if cover is not None:
        add_cover(out, fmt, cover)
    return AudioReport(
        format=fmt,
        codec=codec.codec,
        sample_rate=out_rate,
        bitrate_kbps=kbps,
        duration=round((end - start) / rate, 6),
        loudness=master.report(),
    )
