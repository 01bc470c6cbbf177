"""Data that crosses a boundary: documents, chunk plans, chunk records, manifests.

Every model here is frozen. Those written to the store carry a ``schema`` string
with a version, so that a reader can refuse what it does not understand.
Offsets inside the pipeline are integers: characters index into a document's
extracted text, and audio positions are sample counts. Seconds appear only in
the public timestamps file (:mod:`ttsbatch.timeline`).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

CHUNK_SCHEMA: Final = "ttsbatch.chunk/1"
MANIFEST_SCHEMA: Final = "ttsbatch.manifest/1"
TIMESTAMPS_SCHEMA: Final = "ttsbatch.timestamps/1"


class Frozen(BaseModel):
    """Base for immutable models that reject unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(Frozen):
    """A half-open character range ``[char_start, char_end)`` of a document's text."""

    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)


class Chapter(Frozen):
    """A chapter of a document: its title and the character range it covers."""

    index: int = Field(ge=0)
    title: str
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)


class BookInfo(Frozen):
    """What a book says about itself (an EPUB's ``content.opf``), or what a user says over it.

    Every field is optional; the encoded audio carries those that are set as tags.
    """

    title: str | None = Field(default=None, max_length=1000)
    author: str | None = Field(default=None, max_length=1000)
    narrator: str | None = Field(default=None, max_length=1000)
    album: str | None = Field(default=None, max_length=1000)
    year: str | None = Field(default=None, max_length=40)
    language: str | None = Field(default=None, max_length=40)
    description: str | None = Field(default=None, max_length=20_000)
    publisher: str | None = Field(default=None, max_length=1000)

    def over(self, base: BookInfo) -> BookInfo:
        """Return ``base`` with every field set here put over it."""
        return base.model_copy(update=self.model_dump(exclude_none=True))


#: The largest cover image taken, from a book or a user.
MAX_COVER_BYTES: Final = 20 * 1024 * 1024
_IMAGE_MAGIC: Final[tuple[tuple[bytes, Literal["image/jpeg", "image/png"]], ...]] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


class Cover(Frozen):
    """A cover image: its bytes and media type (``image/jpeg`` or ``image/png``)."""

    media_type: Literal["image/jpeg", "image/png"]
    data: bytes = Field(repr=False)

    @classmethod
    def sniff(cls, data: bytes) -> Cover | None:
        """Return ``data`` as a cover if its first bytes say JPEG or PNG, else ``None``."""
        kind = next((kind for magic, kind in _IMAGE_MAGIC if data.startswith(magic)), None)
        return cls(media_type=kind, data=data) if kind else None

    @property
    def suffix(self) -> str:
        """The file suffix of the image (``jpg`` or ``png``)."""
        return "png" if self.media_type == "image/png" else "jpg"


class Document(Frozen):
    """The extracted, normalised text of one input document.

    ``text`` is what is spoken and what every character offset indexes into.
    Paragraphs are separated by a blank line (``"\\n\\n"``); there are no other
    line breaks. Chapters are ordered and do not overlap; they need not cover
    front matter.
    """

    name: str = Field(description="Output base name, e.g. 'book' for 'book.epub'.")
    source_name: str = Field(description="File name of the input as given.")
    source_sha256: str = Field(description="SHA-256 of the input's bytes.")
    text: str
    chapters: tuple[Chapter, ...] = ()
    info: BookInfo = BookInfo()
    cover: Cover | None = None
    epub: bytes | None = Field(
        default=None,
        repr=False,
        description="The input EPUB's bytes, kept for a read-along book (its own XHTML).",
    )


class BreakKind(StrEnum):
    """What follows a chunk, which decides the pause stitched after it."""

    NONE = "none"  # the chunk ends inside an over-long sentence
    SENTENCE = "sentence"
    PARAGRAPH = "paragraph"
    CHAPTER = "chapter"
    END = "end"  # the last chunk of the document


class ChunkSpan(Frozen):
    """One planned request to an engine: a sentence-aligned slice of the text."""

    index: int = Field(ge=0)
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)
    break_after: BreakKind
    sentences: tuple[Span, ...] = Field(
        default=(), description="Sentence spans inside this chunk (absolute offsets)."
    )


class TimingSource(StrEnum):
    """Where a chunk's word timings came from."""

    PROVIDER = "provider"  # the engine reported them
    ESTIMATED = "estimated"  # derived by ttsbatch (e.g. proportional to characters)
    NONE = "none"  # the engine gave none; words carry no times


class WordTiming(Frozen):
    """A spoken word inside one chunk.

    ``char_start``/``char_end`` index into the chunk's text; ``start``/``end``
    are sample offsets from the first sample of the chunk's audio.
    """

    text: str
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class ChunkRecord(Frozen):
    """The JSON stored beside a chunk's raw PCM (``<n>.json``)."""

    schema_: Literal["ttsbatch.chunk/1"] = Field(default=CHUNK_SCHEMA, alias="schema")
    index: int = Field(ge=0)
    sample_rate: int = Field(gt=0)
    samples: int = Field(ge=0, description="Number of s16le mono samples in <n>.pcm.")
    pcm_sha256: str
    timing: TimingSource
    words: tuple[WordTiming, ...] = ()
    engine: str
    cached: bool = Field(default=False, description="Taken from the chunk cache, not synthesised.")
    retries: int = Field(default=0, ge=0, description="Failed attempts before this one.")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class EngineName(StrEnum):
    """The speech engines a job may name: the one list of them.

    Queues, worker pools, the CLI's choices and the API's checks all derive
    theirs from it.
    """

    ESPEAK = "espeak"
    TOGETHER = "together"
    OPENAI = "openai"

    @property
    def in_process(self) -> bool:
        """Whether the engine runs inside the process (espeak-ng: CPU-bound, not thread-safe).

        The others speak through a provider's HTTP API, and need a model and a voice.
        """
        return self is EngineName.ESPEAK


class EngineSpec(Frozen):
    """Which engine speaks a job, and how. Endpoints and keys are worker settings."""

    engine: EngineName = EngineName.ESPEAK
    model: str | None = None
    voice: str | None = None
    language: str | None = None


class Pauses(Frozen):
    """Silence stitched after a chunk, by what follows it, in milliseconds."""

    sentence_ms: int = Field(default=250, ge=0, le=60_000)
    paragraph_ms: int = Field(default=600, ge=0, le=60_000)
    chapter_ms: int = Field(default=1500, ge=0, le=60_000)

    def after(self, kind: BreakKind) -> int:
        """Return the pause in milliseconds after a chunk followed by ``kind``."""
        return {
            BreakKind.NONE: 0,
            BreakKind.SENTENCE: self.sentence_ms,
            BreakKind.PARAGRAPH: self.paragraph_ms,
            BreakKind.CHAPTER: self.chapter_ms,
            BreakKind.END: 0,
        }[kind]


class AudioFormat(StrEnum):
    """Container of the stitched audio: raw (WAV, PCM) or encoded with chapters and tags."""

    WAV = "wav"
    PCM = "pcm"
    M4B = "m4b"
    MP3 = "mp3"
    OPUS = "opus"
    FLAC = "flac"

    @property
    def encoded(self) -> bool:
        """Whether the audio is encoded (with chapters, tags, a cover) rather than raw samples."""
        return self not in {AudioFormat.WAV, AudioFormat.PCM}


#: Loudness presets: integrated loudness (LUFS) and the true-peak ceiling (dBTP).
LOUDNESS_PRESETS: Final = {
    # -18 LUFS / -3 dBTP lands inside ACX's RMS -23..-18 dB and peak <= -3 dB.
    "audiobook": (-18.0, -3.0),
    "podcast": (-16.0, -1.0),
    "ebu": (-23.0, -1.0),
}
LoudnessPreset = Literal["audiobook", "podcast", "ebu", "off"]
#: What a read-along book highlights as it is read: each sentence, or each word.
ReadAlongUnit = Literal["sentence", "word"]


class JobOptions(Frozen):
    """Everything about a job that changes its audio (and so its identity)."""

    engine: EngineSpec = EngineSpec()
    max_chars: int = Field(default=400, ge=20, le=100_000)
    pauses: Pauses = Pauses()
    audio_format: AudioFormat = AudioFormat.WAV
    loudness: LoudnessPreset | float | None = Field(
        default=None,
        description="A preset, a target in LUFS (-40..-5), or 'off'; unset: 'audiobook' for"
        " encoded formats, 'off' for wav and pcm.",
    )
    bitrate_kbps: int | None = Field(default=None, ge=8, le=320)
    split_chapters: bool = False
    info: BookInfo = Field(default=BookInfo(), description="Tags over those of the source.")
    cover_sha256: str | None = Field(
        default=None, description="SHA-256 of the cover the user gave (over the source's)."
    )
    read_along: bool = Field(
        default=False, description="Also write an EPUB 3 whose text highlights as it is read."
    )
    read_along_unit: ReadAlongUnit = Field(
        default="sentence", description="What the read-along book highlights: sentence or word."
    )

    def loudness_target(self) -> tuple[float, float] | None:
        """Return the integrated loudness and true-peak ceiling to master to, or ``None`` (off)."""
        value = self.loudness
        if value is None:
            value = "audiobook" if self.audio_format.encoded else "off"
        if value == "off":
            return None
        if isinstance(value, str):
            return LOUDNESS_PRESETS[value]
        if not -40.0 <= value <= -5.0:
            raise ValueError(f"loudness {value} LUFS is outside -40..-5")
        return (float(value), -3.0 if value <= -18.0 else -1.0)


class JobStatus(StrEnum):
    """Lifecycle of a job (architecture.md)."""

    QUEUED = "queued"
    RUNNING = "running"
    STITCHING = "stitching"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: ACX's levels for audiobooks: RMS within -23..-18 dB, peaks at most -3 dB, and a
#: noise floor at most -60 dB (ACX's audio submission requirements).
ACX_RMS_DB: Final = (-23.0, -18.0)
ACX_PEAK_DB: Final = -3.0
ACX_FLOOR_DB: Final = -60.0


def acx_misses(rms_dbfs: float, peak_dbfs: float, floor_dbfs: float) -> list[str]:
    """Return each of ACX's levels that these miss, said in words (none: it meets them)."""
    low, high = ACX_RMS_DB
    misses = []
    if not low <= rms_dbfs <= high:
        misses.append(f"RMS {rms_dbfs:.1f} dB, not within {low:.0f}..{high:.0f} dB")
    if peak_dbfs > ACX_PEAK_DB:
        misses.append(f"peak {peak_dbfs:.1f} dB, above {ACX_PEAK_DB:.0f} dB")
    if floor_dbfs > ACX_FLOOR_DB:
        misses.append(f"noise floor {floor_dbfs:.0f} dB, above {ACX_FLOOR_DB:.0f} dB")
    return misses


class LoudnessReport(Frozen):
    """What mastering measured (ITU-R BS.1770 / EBU R128) over a whole document, and applied."""

    target_lufs: float
    ceiling_dbtp: float
    input_lufs: float = Field(description="Integrated loudness before mastering.")
    input_lra: float = Field(description="Loudness range before mastering (LU).")
    gain_db: float
    output_lufs: float = Field(description="Integrated loudness of what was encoded.")
    output_lra: float
    true_peak_dbtp: float = Field(description="True peak of what was encoded (4x oversampled).")
    rms_dbfs: float
    noise_floor_dbfs: float = Field(
        description="RMS of the quietest half second; -120 stands for digital silence."
    )
    acx: bool = Field(description="RMS within -23..-18 dB, peak <= -3 dB, noise floor <= -60 dB.")


class AudioReport(Frozen):
    """One document's audio as written: format, length, and its mastering."""

    format: AudioFormat
    codec: str
    sample_rate: int
    bitrate_kbps: int | None = None
    duration: float
    loudness: LoudnessReport | None = None


class Usage(Frozen):
    """What a job's chunks cost: characters sent to the engine, and taken from the cache.

    ``chars_sent`` counts each chunk synthesised once; ``chars_retried`` what
    retries sent again (a provider may bill those too); ``chars_cached`` what
    came from the chunk cache and was not sent at all.
    """

    engine: str
    model: str | None = None
    chunks_sent: int = 0
    chunks_cached: int = 0
    chars_sent: int = 0
    chars_retried: int = 0
    chars_cached: int = 0
    price_per_million: float | None = Field(
        default=None, description="USD per million characters (settings' price table)."
    )

    cost: float | None = Field(
        default=None, description="USD for the characters sent, retries included, if priced."
    )


class Estimate(Frozen):
    """What a job would cost, said before anything is sent (a dry run)."""

    engine: str
    model: str | None = None
    chars: int = Field(description="Characters of every chunk.")
    chunks: int
    cached_chunks: int = Field(description="Chunks the cache holds already: not billed.")
    cached_chars: int
    billed_chars: int = Field(description="Characters that would be sent to the engine.")
    audio_seconds: float = Field(description="Estimated length of the audio.")
    wall_seconds: float = Field(description="Estimated time to synthesise what is not cached.")
    price_per_million: float | None = None
    cost: float | None = Field(description="USD for the billed characters, if the price is known.")


def chars_for(cost: float, price_per_million: float) -> int:
    """The characters ``cost`` USD buys at ``price_per_million`` (a cost cap as characters).

    The one conversion both checks use (before the start, while running); the
    small allowance absorbs float error, so $0.0321 at $15/M buys 2 140, not 2 139.
    """
    return math.floor(cost * 1e6 / price_per_million + 1e-6)


class SpendLimit(Frozen):
    """What a running job may send, checked before every request to a provider.

    A job is refused before it starts when its estimate is over a cap
    (:mod:`scheduler.costing`); this is the guard while it runs, where retries
    and a cache emptied meanwhile can take it further. Each attempt at a chunk
    takes its characters from the allowance first, so a job at its cap stops
    between requests: no chunk is half paid, what was made is kept.
    """

    max_chars: int | None = Field(
        default=None, ge=0, description="Characters the job may send, retries counted."
    )
    account: str | None = Field(
        default=None, description="The tenant's account whose month each attempt is added to."
    )
    monthly_cost_cap: float | None = Field(
        default=None, gt=0, description="USD the account may spend in a month (the deployment's)."
    )
    price_per_million: float | None = Field(
        default=None, description="USD per million characters, to add attempts to the month."
    )

    @classmethod
    def of(
        cls,
        *,
        max_cost: float | None = None,
        max_billed_chars: int | None = None,
        price_per_million: float | None = None,
        account: str | None = None,
        monthly_cost_cap: float | None = None,
    ) -> SpendLimit | None:
        """The limit of a job's caps at its engine's price; ``None`` when nothing limits it.

        A cost cap becomes characters at the price (an unpriced engine is not
        limited by cost: the caps' check before the start refuses that case).
        """
        limits = [max_billed_chars] if max_billed_chars is not None else []
        if max_cost is not None and price_per_million:
            limits.append(chars_for(max_cost, price_per_million))
        limit = cls(
            max_chars=min(limits) if limits else None,
            account=account,
            monthly_cost_cap=monthly_cost_cap or None,
            price_per_million=price_per_million,
        )
        counts_month = account is not None and price_per_million is not None
        return limit if limit.max_chars is not None or counts_month else None


class DocumentPlan(Frozen):
    """A document inside a job: where its text is and how it was cut into chunks."""

    doc: str = Field(description="Key-safe document id, unique within the job.")
    name: str
    source_name: str
    source_sha256: str
    chars: int = Field(ge=0)
    chapters: tuple[Chapter, ...] = ()
    chunks: tuple[ChunkSpan, ...]
    info: BookInfo = BookInfo()
    cover: str | None = Field(
        default=None, description="Output suffix of the document's cover image (``cover.jpg``)."
    )


class Manifest(Frozen):
    """``jobs/<job_id>/manifest.json``: the authoritative record of a job."""

    schema_: Literal["ttsbatch.manifest/1"] = Field(default=MANIFEST_SCHEMA, alias="schema")
    job_id: str
    created_at: str
    options: JobOptions
    documents: tuple[DocumentPlan, ...]
    status: JobStatus = JobStatus.QUEUED
    error: str | None = None
    outputs: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Per document: output kind -> key."
    )
    audio: dict[str, AudioReport] = Field(
        default_factory=dict, description="Per document: the audio written and its loudness."
    )
    usage: Usage | None = Field(default=None, description="Characters billed and cached.")
    expired: bool = Field(
        default=False, description="Its lifetime passed: its outputs and chunks were removed."
    )
    account: str | None = Field(
        default=None, description="The API tenant's account its cost is added to (billing)."
    )
    cache_scope: str | None = Field(
        default=None,
        description="Where the job's chunks are looked up and kept (ttsbatch.cache); None: no cache.",
    )
    limit: SpendLimit | None = Field(
        default=None, description="What it may send while it runs (its caps, its tenant's month)."
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TimedChapter(Frozen):
    """A chapter on the final audio's timeline (seconds)."""

    index: int
    title: str
    start: float
    end: float
    char_start: int
    char_end: int


class TimedChunk(Frozen):
    """A chunk on the final audio's timeline (seconds)."""

    index: int
    start: float
    end: float
    char_start: int
    char_end: int


class TimedWord(Frozen):
    """A word on the final audio's timeline (seconds); offsets into the source text."""

    text: str
    start: float
    end: float
    char_start: int
    char_end: int


class SourceInfo(Frozen):
    """Where a timeline's text came from."""

    name: str
    sha256: str
    text_file: str


class Timestamps(Frozen):
    """The public timestamps file (architecture.md), ``<doc>.timestamps.json``."""

    schema_: Literal["ttsbatch.timestamps/1"] = Field(default=TIMESTAMPS_SCHEMA, alias="schema")
    sample_rate: int
    duration: float
    source: SourceInfo
    timing: TimingSource = TimingSource.PROVIDER
    chapters: tuple[TimedChapter, ...] = ()
    chunks: tuple[TimedChunk, ...] = ()
    words: tuple[TimedWord, ...] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
