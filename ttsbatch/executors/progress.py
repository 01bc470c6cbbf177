"""Progress of a job on the terminal: a bar on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from ttsbatch.executors.reporting import ChunkDone, Progress
from ttsbatch.models import JobStatus, Manifest


def clock(seconds: float) -> str:
    """Format seconds as ``H:MM:SS``."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class TerminalProgress(Progress):
    """Renders progress to ``stream``: a live bar if it is a terminal."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.audio_seconds = 0.0
        self.done = 0
        self.total = 0
        self.synthesized = 0
        self.started = time.monotonic()
        self._last_line = 0.0
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    def start(self, manifest: Manifest, done: int, total: int) -> None:
        """Open the bar (or print the first line)."""
        self.done, self.total = done, total
        self.started = time.monotonic()
        resumed = f" ({done} already stored)" if done else ""
        self._say(f"job {manifest.job_id}: {total} chunks{resumed}")
        if self.stream.isatty() and done < total:
            self._bar = RichProgress(
                TextColumn("[bold]synthesising"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("chunks · {task.fields[audio]} audio"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("synth", total=total, completed=done, audio=clock(0))

    def advance(self, chunk: ChunkDone) -> None:
        """Count one finished chunk."""
        self.done += 1
        self.synthesized += chunk.synthesized
        self.audio_seconds += chunk.seconds
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, audio=clock(self.audio_seconds))
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval or self.done == self.total:
            self._last_line = now
            elapsed = now - self.started
            rate = self.synthesized / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            self._say(
                f"progress: {self.done}/{self.total} chunks, {clock(self.audio_seconds)} audio, eta {clock(eta)}"
            )

    def stage(self, status: JobStatus) -> None:
        """Close the bar and name the new stage."""
        self.close()
        self._say(f"{status.value}…")

    def close(self) -> None:
        """Stop the live bar, if any."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
