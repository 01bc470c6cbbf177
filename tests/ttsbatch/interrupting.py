"""Running `ttsbatch synth` in its own process group and interrupting it mid-job, as a terminal does."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def chunks_journaled(out: Path) -> int:
    """Chunks assembled so far in ``out``: the lines of the documents' journals."""
    journals = (out / ".ttsbatch").glob("jobs/*/assembly/*/records.jsonl")
    return sum(path.read_bytes().count(b"\n") for path in journals)


def interrupt_after(
    argv: Sequence[str],
    out: Path,
    chunks: int,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    sig: int = signal.SIGINT,
) -> tuple[int, str]:
    """Start ``argv``, send ``sig`` to its group once ``chunks`` are journaled in ``out``.

    Returns:
        The exit status and what it wrote on stderr.
    """
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while chunks_journaled(out) < chunks and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, sig)  # what a terminal sends the foreground group
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr
