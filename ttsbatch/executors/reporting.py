"""Progress reporting shared by the local and the distributed executor, and a run's summary.

Neutral ground: neither executor's machinery is imported here, so a client of
the distributed executor (or the API) does not load the worker package.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ttsbatch.models import JobStatus, LoudnessReport, Manifest, acx_misses


@dataclass(frozen=True, slots=True)
class ChunkDone:
    """What an executor reports for one finished chunk."""

    doc: str
    index: int
    chars: int
    seconds: float
    synthesized: bool


class Progress:
    """Receives progress of a job; the CLI renders it. The base class ignores it."""

    def start(self, manifest: Manifest, done: int, total: int) -> None:
        """Called once, with the chunks already stored (``done``) of ``total``."""

    def advance(self, chunk: ChunkDone) -> None:
        """Called for each chunk finished by this run."""

    def stage(self, status: JobStatus) -> None:
        """Called when the job enters a new stage (e.g. stitching)."""


def summary(manifest: Manifest, outdir: Path) -> Iterator[str]:
    """Yield the lines a finished run prints per document: what was made, and its loudness."""
    for plan in manifest.documents:
        audio_file = outdir / f"{plan.name}.{manifest.options.audio_format.value}"
        yield (
            f"{plan.source_name}: {len(plan.chunks)} chunks, {len(plan.chapters)} chapters"
            f" → {audio_file}"
        )
        report = manifest.audio.get(plan.doc)
        if report is not None and report.loudness is not None:
            yield loudness_line(audio_file.name, report.loudness)


def loudness_line(name: str, report: LoudnessReport) -> str:
    """Return one line of what mastering did to a file and whether it meets ACX's levels.

    For example ``book.m4b: -21.2 LUFS → -18.0 LUFS (gain +4.7 dB), LRA 1.6 LU,
    true peak -3.5 dBTP, RMS -18.6 dB, noise floor -120 dB: meets ACX's levels``;
    a file that does not meet them says which level it misses.
    """
    levels = (
        f"{name}: {report.input_lufs:.1f} LUFS → {report.output_lufs:.1f} LUFS"
        f" (gain {report.gain_db:+.1f} dB), LRA {report.output_lra:.1f} LU,"
        f" true peak {report.true_peak_dbtp:.1f} dBTP, RMS {report.rms_dbfs:.1f} dB,"
        f" noise floor {report.noise_floor_dbfs:.0f} dB"
    )
    if report.acx:
        return f"{levels}: meets ACX's levels"
    misses = acx_misses(report.rms_dbfs, report.true_peak_dbtp, report.noise_floor_dbfs)
    return f"{levels}: does not meet ACX's levels" + (f" ({'; '.join(misses)})" if misses else "")
