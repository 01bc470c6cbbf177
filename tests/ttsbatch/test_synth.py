"""`ttsbatch synth` end to end on one machine: real processes, the embedded engine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from tests.ttsbatch.interrupting import chunks_journaled, interrupt_after

BIN = Path(sys.executable).parent / "ttsbatch"

CHAPTER = (
    "The tide came in at {n} o'clock, and the keeper counted the waves. "
    "Some were tall; some were small, and one, the seventh, was always the largest. "
    "\u201cWhy the seventh?\u201d asked the boy. Nobody knew.\n\n"
    "Mr. Penrose wrote it down in the log, as he did every night, in ink that smelled of pitch."
)


def _book(path: Path, chapters: int) -> Path:
    parts = [f"CHAPTER {n}\n\n{CHAPTER.format(n=n)}" for n in range(1, chapters + 1)]
    path.write_text("\n\n\n".join(parts), encoding="utf-8")
    return path


def _synth(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TTSBATCH_DEBUG": ""}
    return subprocess.run(
        [str(BIN), "synth", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_synth_writes_five_outputs_whose_timeline_matches_the_audio(tmp_path: Path) -> None:
    book = _book(tmp_path / "book.txt", chapters=3)
    result = _synth(book, "-o", tmp_path / "out", "--max-chars", "80", "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "book.source.txt",
        "book.srt",
        "book.timestamps.json",
        "book.vtt",
        "book.wav",
    ]
    stamps = json.loads((out / "book.timestamps.json").read_text())
    text = (out / "book.source.txt").read_text(encoding="utf-8")
    with wave.open(str(out / "book.wav")) as audio:
        frames, rate = audio.getnframes(), audio.getframerate()
    assert stamps["schema"] == "ttsbatch.timestamps/1"
    assert rate == stamps["sample_rate"] == 22050
    assert round(stamps["duration"] * rate) == frames  # to the sample
    assert [c["title"] for c in stamps["chapters"]] == ["CHAPTER 1", "CHAPTER 2", "CHAPTER 3"]
    assert len(stamps["chunks"]) > 9
    words = stamps["words"]
    assert len(words) == 3 * len(CHAPTER.split()) + 3 * 2  # every word, headings included
    for word in words:
        assert text[word["char_start"] : word["char_end"]] == word["text"]
        assert 0 <= word["start"] <= word["end"] <= stamps["duration"]
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert (out / "book.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert "CHAPTER 2" in (out / "book.srt").read_text()
    # Work in progress is gone once the outputs are out: no manifest, no second copy.
    assert not (out / ".ttsbatch").exists()


def test_keep_chunks_keeps_the_job_folder_with_its_journal(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("One short sentence to keep.", encoding="utf-8")
    result = _synth(book, "-o", tmp_path / "out", "--keep-chunks", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert chunks_journaled(tmp_path / "out") == 1


def test_a_fifo_given_as_input_is_refused_at_once_naming_it(tmp_path: Path) -> None:
    fifo = tmp_path / "book.txt"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = _synth(fifo, "-o", tmp_path / "out", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert f"{fifo}: is a named pipe (FIFO), not a regular file" in result.stderr
    assert elapsed < 60  # a hang would be killed by the timeout; the figure is in the note


@pytest.mark.skipif(
    not (shutil.which("sox") and shutil.which("ffprobe")), reason="needs sox and ffprobe"
)
def test_sox_and_ffprobe_read_the_wav(tmp_path: Path) -> None:
    book = _book(tmp_path / "tiny.txt", chapters=1)
    assert _synth(book, "-o", tmp_path, cwd=tmp_path).returncode == 0
    stamps = json.loads((tmp_path / "tiny.timestamps.json").read_text())
    samples = subprocess.run(
        ["soxi", "-s", str(tmp_path / "tiny.wav")], capture_output=True, text=True, check=True
    ).stdout
    assert int(samples) == round(stamps["duration"] * 22050)
    probe = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-show_entries", "stream=sample_rate,channels,duration_ts"),
            *("-of", "json", str(tmp_path / "tiny.wav")),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stream = json.loads(probe)["streams"][0]
    assert (stream["sample_rate"], stream["channels"], stream["duration_ts"]) == (
        "22050",
        1,
        int(samples),
    )


def test_a_rerun_after_kill_9_finishes_only_the_missing_chunks_with_identical_output(
    tmp_path: Path,
) -> None:
    book = _book(tmp_path / "book.txt", chapters=40)
    args = ("--max-chars", "60", "--jobs", "2")
    whole = _synth(book, "-o", tmp_path / "whole", *args, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    argv = [str(BIN), "synth", str(book), "-o", str(out), *args]
    # The executor and its pool, mid-job.
    interrupt_after(argv, out, 50, cwd=tmp_path, sig=signal.SIGKILL)
    stored = chunks_journaled(out)
    assert stored >= 50, "the job should have been killed half way"

    rerun = _synth(book, "-o", out, *args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    total = len(json.loads((tmp_path / "whole" / "book.timestamps.json").read_text())["chunks"])
    assert f"{total} chunks ({stored} already stored)" in rerun.stderr
    for name in ("book.wav", "book.timestamps.json", "book.srt", "book.vtt", "book.source.txt"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_ctrl_c_stops_with_a_resume_hint_and_the_rerun_finishes(tmp_path: Path) -> None:
    book = _book(tmp_path / "book.txt", chapters=40)
    out = tmp_path / "out"
    args = [str(book), "-o", str(out), "--max-chars", "60", "--jobs", "2"]
    returncode, stderr = interrupt_after([str(BIN), "synth", *args], out, 20, cwd=tmp_path)
    assert returncode == 130
    assert (
        stderr.strip().splitlines()[-1]
        == "ttsbatch: interrupted: run the same command again to resume"
    )
    assert "Traceback" not in stderr
    rerun = _synth(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "already stored)" in rerun.stderr
