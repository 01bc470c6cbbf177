"""`ttsbatch synth` and `submit` ask for a finished audiobook: format, loudness, tags, cover.

The options are checked before anything runs, with a usage error that names
the allowed values or the file; the summary after a run says, per document,
what mastering did and whether the file meets ACX's levels. The end-to-end
run (last) writes an M4B with the tags and the cover given.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.images import png
from ttsbatch.cli.client import AudioChoice, audio_options, submit
from ttsbatch.cli.main import main, synth
from ttsbatch.executors.reporting import loudness_line, summary
from ttsbatch.models import (
    AudioFormat,
    AudioReport,
    BookInfo,
    BreakKind,
    ChunkSpan,
    DocumentPlan,
    JobOptions,
    LoudnessReport,
    Manifest,
)

BIN = Path(sys.executable).parent / "ttsbatch"


def choose(*argv: str) -> tuple[AudioChoice | None, click.testing.Result]:
    """Parse ``argv`` as the audio options of a command; return what it received."""
    received: list[AudioChoice] = []

    @click.command()
    @audio_options()
    def probe(audio: AudioChoice) -> None:
        received.append(audio)

    result = CliRunner().invoke(probe, list(argv))
    return (received[0] if received else None), result


def book(folder: Path) -> Path:
    path = folder / "book.txt"
    path.write_text(
        "CHAPTER 1\n\nThe tide came in. The keeper counted the waves.\n\n\n"
        "CHAPTER 2\n\nThe seventh was the largest. Nobody knew why.",
        encoding="utf-8",
    )
    return path


# -- the options -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [synth, submit], ids=["synth", "submit"])
def test_format_offers_every_audio_format(command: click.Command) -> None:
    (option,) = [p for p in command.params if p.name == "audio_format"]
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == tuple(f.value for f in AudioFormat)


def test_the_audio_options_become_the_jobs_options(tmp_path: Path) -> None:
    cover = png()
    argv = ["--format", "m4b", "--loudness", "podcast", "--bitrate", "96", "--split-chapters"]
    argv += ["--title", "Nineteen", "--author", "G. Orwell", "--narrator", "espeak"]
    argv += ["--album", "Novels", "--year", "1949"]
    (tmp_path / "cover.png").write_bytes(cover)
    audio, result = choose(*argv, "--cover", str(tmp_path / "cover.png"))
    assert result.exit_code == 0, result.output
    assert audio is not None and audio.cover is not None
    assert audio.cover.media_type == "image/png" and audio.cover.data == cover
    options = JobOptions.model_validate(audio.job_options())
    assert options.audio_format is AudioFormat.M4B and options.loudness == "podcast"
    assert options.bitrate_kbps == 96 and options.split_chapters
    assert options.info == BookInfo(
        title="Nineteen", author="G. Orwell", narrator="espeak", album="Novels", year="1949"
    )
    assert options.cover_sha256 == hashlib.sha256(cover).hexdigest()


def test_without_audio_options_the_job_is_a_wav_with_the_models_defaults() -> None:
    audio, result = choose()
    assert result.exit_code == 0 and audio == AudioChoice()
    assert JobOptions.model_validate(audio.job_options()) == JobOptions()


@pytest.mark.parametrize("value", ["-20", "-20.5", "-40", "-5"])
def test_a_loudness_target_in_lufs_is_taken(value: str) -> None:
    audio, result = choose("--format", "mp3", "--loudness", value)
    assert result.exit_code == 0, result.output
    assert audio is not None and audio.loudness == float(value)


@pytest.mark.parametrize(
    ("value", "says"),
    [("loud", "'loud' is not a loudness"), ("-50", "outside -40..-5"), ("0", "outside -40..-5")],
)
def test_a_bad_loudness_is_a_usage_error_naming_the_allowed_values(value: str, says: str) -> None:
    result = CliRunner().invoke(main, ["synth", "book.txt", "-o", "out", "--loudness", value])
    assert result.exit_code == 2
    assert "Invalid value for '--loudness'" in result.output and says in result.output
    assert "audiobook, podcast, ebu, off, or a target in LUFS from -40 to -5" in result.output


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("cover.gif", b"GIF89a" + b"\0" * 16, "cover.gif: not a JPEG or PNG image"),
        ("cover.png", b"<svg/>", "cover.png: not a JPEG or PNG image"),
        ("missing.jpg", None, "missing.jpg: cannot read it (No such file or directory)"),
    ],
    ids=["gif", "png by name only", "missing"],
)
def test_a_cover_that_is_unreadable_or_no_jpeg_or_png_is_a_usage_error_naming_it(
    tmp_path: Path, name: str, data: bytes | None, says: str
) -> None:
    if data is not None:
        (tmp_path / name).write_bytes(data)
    argv = ["synth", str(book(tmp_path)), "-o", str(tmp_path / "out"), "--format", "m4b"]
    result = CliRunner().invoke(main, [*argv, "--cover", str(tmp_path / name)])
    assert result.exit_code == 2
    assert "Invalid value for '--cover'" in result.output and says in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--bitrate", "64"], "--bitrate needs an encoded format"),
        (["--format", "pcm", "--split-chapters"], "--split-chapters needs an encoded format"),
        (["--bitrate", "64", "--split-chapters"], "--bitrate and --split-chapters need"),
        (["--format", "flac", "--bitrate", "64"], "--bitrate does not apply to flac"),
    ],
)
def test_options_that_would_do_nothing_for_the_format_are_refused(
    argv: list[str], says: str
) -> None:
    audio, result = choose(*argv)
    assert audio is None and result.exit_code == 2
    assert says in result.output


# -- the summary -------------------------------------------------------------------------------

LEVELS = LoudnessReport(
    target_lufs=-18.0,
    ceiling_dbtp=-3.0,
    input_lufs=-21.2,
    input_lra=1.7,
    gain_db=4.74,
    output_lufs=-18.01,
    output_lra=1.6,
    true_peak_dbtp=-3.5,
    rms_dbfs=-18.6,
    noise_floor_dbfs=-120.0,
    acx=True,
)


def test_the_loudness_line_says_what_mastering_did_and_that_acx_is_met() -> None:
    assert loudness_line("book.m4b", LEVELS) == (
        "book.m4b: -21.2 LUFS → -18.0 LUFS (gain +4.7 dB), LRA 1.6 LU, true peak -3.5 dBTP,"
        " RMS -18.6 dB, noise floor -120 dB: meets ACX's levels"
    )


def test_the_loudness_line_names_each_acx_level_missed() -> None:
    missed = LEVELS.model_copy(
        update={"rms_dbfs": -24.2, "true_peak_dbtp": -1.0, "noise_floor_dbfs": -52.0, "acx": False}
    )
    line = loudness_line("book.mp3", missed)
    assert line.endswith(
        ": does not meet ACX's levels (RMS -24.2 dB, not within -23..-18 dB;"
        " peak -1.0 dB, above -3 dB; noise floor -52 dB, above -60 dB)"
    )
    only_floor = LEVELS.model_copy(update={"noise_floor_dbfs": -40.0, "acx": False})
    assert loudness_line("b.m4b", only_floor).endswith(
        "does not meet ACX's levels (noise floor -40 dB, above -60 dB)"
    )


def test_the_summary_gives_a_loudness_line_for_each_mastered_document() -> None:
    chunk = ChunkSpan(index=0, char_start=0, char_end=5, break_after=BreakKind.END)
    plans = tuple(
        DocumentPlan(
            doc=name,
            name=name,
            source_name=f"{name}.txt",
            source_sha256="0" * 64,
            chars=5,
            chunks=(chunk,),
        )
        for name in ("one", "two")
    )
    report = AudioReport(
        format=AudioFormat.M4B, codec="aac", sample_rate=22050, duration=1.0, loudness=LEVELS
    )
    manifest = Manifest(
        job_id="j",
        created_at="2026-01-01T00:00:00+00:00",
        options=JobOptions(audio_format=AudioFormat.M4B),
        documents=plans,
        audio={"one": report, "two": report.model_copy(update={"loudness": None})},
    )
    lines = list(summary(manifest, Path("out")))
    assert lines == [
        "one.txt: 1 chunks, 0 chapters → out/one.m4b",
        loudness_line("one.m4b", LEVELS),
        "two.txt: 1 chunks, 0 chapters → out/two.m4b",
    ]


# -- end to end (last: it needs the executors to encode) ----------------------------------------


def test_synth_writes_an_m4b_with_the_tags_and_cover_given_and_reports_its_loudness(
    tmp_path: Path,
) -> None:
    from mutagen.mp4 import MP4  # noqa: PLC0415 - only this test reads an MP4

    cover = tmp_path / "cover.png"
    cover.write_bytes(png())
    argv = [str(book(tmp_path)), "-o", str(tmp_path / "out"), "--format", "m4b", "--jobs", "1"]
    argv += ["--title", "The Keeper", "--author", "A. Writer", "--cover", str(cover)]
    result = subprocess.run(
        [str(BIN), "synth", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "TTSBATCH_DEBUG": ""},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    audio = tmp_path / "out" / "book.m4b"
    tags = MP4(audio).tags  # type: ignore[no-untyped-call] # mutagen: no annotations
    assert tags is not None
    assert tags["\xa9nam"] == ["The Keeper"] and tags["\xa9ART"] == ["A. Writer"]
    assert bytes(tags["covr"][0]) == png()
    lines = result.stdout.splitlines()
    assert lines[0].endswith(f"→ {audio}")
    assert re.fullmatch(
        r"book\.m4b: -?\d+\.\d LUFS → -1[78]\.\d LUFS \(gain [+-]\d+\.\d dB\),"
        r" LRA \d+\.\d LU, true peak -\d+\.\d dBTP, RMS -\d+\.\d dB, noise floor -\d+ dB:"
        r" (meets ACX's levels|does not meet ACX's levels \(.+\))",
        lines[1],
    ), lines[1]
