"""Mastering: a whole document brought to a loudness target, never chunk by chunk.

Two passes over the document's stitched s16 mono PCM. The first measures the
integrated loudness (ITU-R BS.1770 gating, EBU R128 loudness range) with
FFmpeg's ``ebur128`` filter, through PyAV's filter graphs; it is fed as chunks
arrive, so it costs the local executor nothing at the end. The second applies
one gain to the whole document, catches the peaks the gain raises with
FFmpeg's look-ahead limiter (``alimiter``), and measures what comes out: the
integrated loudness and range again, the 4x-oversampled true peak, the RMS and
the noise floor, and whether they meet ACX's numbers.

A limiter lowers the loudness it leaves behind (espeak-ng's voice peaks about
21 dB over its loudness; the audiobook preset allows 15). The gain is therefore
calibrated on an even sample of the document (up to ten minutes) so that the
limited result lands on the target.

Every graph is fed fixed frames of :data:`FRAME` samples, so the results do
not depend on how the audio arrived: the two executors master to the same bytes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import numpy as np

from ttsbatch.audio.stitching import SAMPLE_WIDTH
from ttsbatch.models import LoudnessReport, acx_misses

#: Samples per frame fed to a filter graph (fixed: see the module's docstring).
FRAME = 4096
#: The limiter's ceiling sits this far below the true-peak target: the sample-peak
#: limiter lets 0.2-0.4 dB through between samples, and AAC at 64 kb/s adds up to about
#: 0.5 dB more (Frankenstein's M4B measured -3.1 dBTP by ffmpeg's ebur128 with 1.0 here).
HEADROOM_DB = 1.5
#: Calibration reads windows of this length, spread evenly, up to :data:`SAMPLE_SECONDS`.
WINDOW_SECONDS = 10
SAMPLE_SECONDS = 600
#: The noise floor is the RMS of the quietest window of this length (ACX measures room tone).
FLOOR_SECONDS = 0.5
#: What digital silence reports as its level, in dBFS.
SILENCE_DB = -120.0
#: The limiter's look-ahead and release, in milliseconds.
ATTACK_MS, RELEASE_MS = 5, 50


@dataclass(frozen=True, slots=True)
class Measured:
    """Integrated loudness (LUFS) and loudness range (LU) of a stream."""

    lufs: float
    lra: float


@dataclass(frozen=True, slots=True)
class Target:
    """Where mastering brings a document: integrated loudness and true-peak ceiling."""

    lufs: float
    ceiling_dbtp: float

    @property
    def limit(self) -> float:
        """The limiter's sample-peak ceiling, linear."""
        return 10 ** ((self.ceiling_dbtp - HEADROOM_DB) / 20)


def db(value: float) -> float:
    """Return a linear amplitude in dB (digital silence as :data:`SILENCE_DB`)."""
    return 20 * math.log10(value) if value > 10 ** (SILENCE_DB / 20) else SILENCE_DB


class _Graph:
    """A chain of FFmpeg audio filters over s16 mono frames, pushed in fixed sizes."""

    def __init__(self, rate: int, filters: list[tuple[str, str]]) -> None:
        self.rate = rate
        self.graph = av.filter.Graph()
        node = self.graph.add_abuffer(
            format="s16", sample_rate=rate, layout="mono", time_base=Fraction(1, rate)
        )
        for name, args in [*filters, ("aformat", "sample_fmts=s16:channel_layouts=mono")]:
            following = self.graph.add(name, args)
            node.link_to(following)
            node = following
        node.link_to(self.graph.add("abuffersink"))
        self.graph.configure()
        self._pending = bytearray()
        self._pts = 0
        self.last: dict[str, str] = {}

    def feed(self, pcm: bytes | memoryview) -> Iterator[av.AudioFrame]:
        """Push ``pcm`` (whole frames now, the rest later); yield what comes out."""
        self._pending += pcm
        size = FRAME * SAMPLE_WIDTH
        whole = len(self._pending) - len(self._pending) % size
        for at in range(0, whole, size):
            yield from self._push(self._pending[at : at + size])
        del self._pending[:whole]

    def close(self) -> Iterator[av.AudioFrame]:
        """Push what is left and the end of the stream; yield the rest."""
        if self._pending:
            yield from self._push(self._pending)
            self._pending = bytearray()
        self.graph.push(None)
        yield from self._pull()

    def _push(self, pcm: bytes | bytearray) -> Iterator[av.AudioFrame]:
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.rate)
        self._pts += samples.shape[1]
        self.graph.push(frame)
        yield from self._pull()

    def _pull(self) -> Iterator[av.AudioFrame]:
        while True:
            try:
                frame = self.graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            if not isinstance(frame, av.AudioFrame):
                raise TypeError(f"an audio graph gave a {type(frame).__name__}")
            if frame.metadata:
                self.last = dict(frame.metadata)
            yield frame

    def r128(self, name: str) -> float:
        """The last value the ``ebur128`` filter reported (``I``, ``LRA``, ``true_peak``)."""
        return float(self.last.get(f"lavfi.r128.{name}", "-70"))


class Meter:
    """Integrated loudness and loudness range of a document, fed in order as it grows."""

    def __init__(self, rate: int) -> None:
        self._graph = _Graph(rate, [("ebur128", "metadata=1")])

    def feed(self, pcm: bytes | memoryview) -> None:
        """Measure the next part of the document."""
        for _ in self._graph.feed(pcm):
            pass

    def result(self) -> Measured:
        """Close the measurement and return it."""
        for _ in self._graph.close():
            pass
        return Measured(self._graph.r128("I"), self._graph.r128("LRA"))


def measure_file(path: Path, rate: int, *, offset: int = 0) -> Measured:
    """Measure a raw s16 mono file (from byte ``offset``) in one pass."""
    meter = Meter(rate)
    for block in read_blocks(path, offset, None):
        meter.feed(block)
    return meter.result()


def read_blocks(
    path: Path, offset: int, length: int | None, size: int = 1 << 20
) -> Iterator[bytes]:
    """Yield ``length`` bytes of ``path`` from ``offset`` (to its end if ``None``), in blocks."""
    with path.open("rb") as file:
        file.seek(offset)
        left = length
        while left is None or left > 0:
            block = file.read(size if left is None else min(size, left))
            if not block:
                return
            if left is not None:
                left -= len(block)
            yield block


def calibrate(
    path: Path, rate: int, *, offset: int, samples: int, measured: Measured, target: Target
) -> Gain:
    """Return the gain that brings the document, once limited, to ``target.lufs``.

    The gain that would bring the unlimited document there is corrected by
    what the limiter takes away on an even sample of the document.
    """
    base = target.lufs - measured.lufs
    if measured.lufs <= -70:  # silence: nothing to bring anywhere
        return Gain(0.0, target, measured)
    window = WINDOW_SECONDS * rate
    count = max(1, min(SAMPLE_SECONDS // WINDOW_SECONDS, samples // window))
    step = samples // count
    excerpt = b"".join(
        b"".join(read_blocks(path, offset + i * step * SAMPLE_WIDTH, window * SAMPLE_WIDTH))
        for i in range(count)
    )
    gain = base
    for _ in range(2):  # the limiter takes a little more as the gain grows
        volume = [("volume", f"volume={gain:.6f}dB")]
        loss = _loudness(excerpt, rate, volume) - _loudness(excerpt, rate, _limiting(gain, target))
        gain = base + loss
    return Gain(gain, target, measured)


def _loudness(pcm: bytes, rate: int, filters: list[tuple[str, str]]) -> float:
    graph = _Graph(rate, [*filters, ("ebur128", "metadata=1")])
    for _ in (*graph.feed(pcm), *graph.close()):
        pass
    return graph.r128("I")


def _limiting(gain_db: float, target: Target) -> list[tuple[str, str]]:
    return [
        ("volume", f"volume={gain_db:.6f}dB"),
        (
            "alimiter",
            f"limit={target.limit:.6f}:attack={ATTACK_MS}:release={RELEASE_MS}:level=false:latency=1",
        ),
    ]


@dataclass(frozen=True, slots=True)
class Gain:
    """What mastering applies to a document: one gain, then the limiter, toward ``target``."""

    db: float
    target: Target
    measured: Measured


class Master:
    """The second pass: feed it the document's PCM, get the frames to encode.

    With a :class:`Gain`, the gain and the limiter are applied and the result
    measured; without one the samples pass unchanged (only resampled when the
    encoder needs another rate).
    """

    def __init__(self, rate: int, *, gain: Gain | None, out_rate: int) -> None:
        filters: list[tuple[str, str]] = []
        if gain is not None:
            filters = [*_limiting(gain.db, gain.target), ("ebur128", "metadata=1:peak=true")]
        if out_rate != rate:
            filters.append(("aresample", f"{out_rate}"))
        self._graph = _Graph(rate, filters)
        self.gain = gain
        self._levels = Levels(out_rate)

    def feed(self, pcm: bytes | memoryview) -> Iterator[av.AudioFrame]:
        """Master the next part of the document; yield the frames ready for the encoder."""
        for frame in self._graph.feed(pcm):
            self._levels.add(frame)
            yield frame

    def close(self) -> Iterator[av.AudioFrame]:
        """Flush the limiter; yield the last frames."""
        for frame in self._graph.close():
            self._levels.add(frame)
            yield frame

    def report(self) -> LoudnessReport | None:
        """What was measured and applied (after :meth:`close`); ``None`` without a gain."""
        if self.gain is None:
            return None
        rms, floor = self._levels.result()
        peak = db(self._graph.r128("true_peak"))
        return LoudnessReport(
            target_lufs=self.gain.target.lufs,
            ceiling_dbtp=self.gain.target.ceiling_dbtp,
            input_lufs=round(self.gain.measured.lufs, 2),
            input_lra=round(self.gain.measured.lra, 2),
            gain_db=round(self.gain.db, 2),
            output_lufs=round(self._graph.r128("I"), 2),
            output_lra=round(self._graph.r128("LRA"), 2),
            true_peak_dbtp=round(peak, 2),
            rms_dbfs=round(rms, 2),
            noise_floor_dbfs=round(floor, 2),
            acx=not acx_misses(rms, peak, floor),
        )


class Levels:
    """RMS of a whole stream, and of its quietest half second (the noise floor).

    The half seconds slide in steps of 50 ms, so any pause of 0.55 s or more
    is found wherever it falls.
    """

    def __init__(self, rate: int) -> None:
        self.block = max(1, rate // 20)
        self.squares = 0.0
        self.count = 0
        self.quietest = math.inf
        self._blocks: deque[float] = deque(maxlen=round(FLOOR_SECONDS * 20))
        self._block_sum = 0.0
        self._block_fill = 0

    def add(self, frame: av.AudioFrame) -> None:
        """Account for the next frame of the stream."""
        x = frame.to_ndarray().reshape(-1).astype(np.float64) / 32768.0
        squares = x * x
        self.squares += float(squares.sum())
        self.count += x.size
        at = 0
        while at < x.size:
            take = min(self.block - self._block_fill, x.size - at)
            self._block_sum += float(squares[at : at + take].sum())
            self._block_fill += take
            at += take
            if self._block_fill == self.block:
                self._blocks.append(self._block_sum)
                self._block_sum, self._block_fill = 0.0, 0
                if len(self._blocks) == self._blocks.maxlen:
                    window = sum(self._blocks) / (self.block * len(self._blocks))
                    self.quietest = min(self.quietest, window)

    def result(self) -> tuple[float, float]:
        """Return the RMS and the noise floor, in dBFS (a stream shorter than the window:
        its RMS is its floor)."""
        rms = math.sqrt(self.squares / self.count) if self.count else 0.0
        floor = self.quietest if self.quietest != math.inf else rms * rms
        return db(rms), db(math.sqrt(floor))
