"""`ttsbatch synth --read-along` end to end, spoken by the embedded espeak-ng.

Each book passes Debian's epubcheck with no error (warnings are printed), every
SMIL clip is the timeline's: it begins at its sentence's (or word's) first
word in the timestamps JSON and runs to the next clip, the last one ending
with its last word; and an EPUB input's XHTML reads exactly as it did. The
shared Gutenberg EPUB (``../shared/corpus/``) is used when the folder is
there; epubcheck checks skip without it, and fail under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from posixpath import dirname, join, normpath
from urllib.parse import unquote

import pytest
from lxml import etree

from scheduler.splitting import split
from tests.ttsbatch.test_synth_formats import choose
from ttsbatch.models import Chapter, JobOptions

BIN = Path(sys.executable).parent / "ttsbatch"
EPUBCHECK = Path("/usr/bin/epubcheck")
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
SMALLEST_EPUB = CORPUS / "sherlock-holmes.epub"
OPF = "{http://www.idpf.org/2007/opf}"
SMIL = "{http://www.w3.org/ns/SMIL}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_ID = re.compile(r"(?:ra-)?[sw](\d+)(?:-(\d+))?")

BOOK = """CHAPTER 1

The tide came in at dawn. The keeper counted the waves, one by one.
"Seven," he said. "Always seven."

CHAPTER 2

Nobody knew why the seventh was the largest. The gulls did not care.
"""


def test_read_along_options_reach_the_job_and_the_api_request() -> None:
    chosen, result = choose("--read-along", "--read-along-unit", "word")
    assert result.exit_code == 0 and chosen is not None
    assert chosen.job_options()["read_along"] is True
    assert chosen.job_options()["read_along_unit"] == "word"
    assert chosen.request_fields()["read_along"] is True
    plain, _ = choose()
    assert plain is not None and plain.request_fields()["read_along"] is None  # not sent
    _, refused = choose("--read-along-unit", "word")
    assert refused.exit_code == 2 and "--read-along-unit needs --read-along" in refused.output


def synth(tmp_path: Path, *argv: str) -> Path:
    """Run ``ttsbatch synth`` with ``argv`` into ``tmp_path/out``; return that folder."""
    out = tmp_path / "out"
    result = subprocess.run(
        [str(BIN), "synth", *argv, "-o", str(out), "--jobs", "1", "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "TTSBATCH_DEBUG": "1"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


def epubcheck(book: Path) -> list[str]:
    """Validate ``book`` with epubcheck: fail on any error or fatal; return its warnings."""
    if not EPUBCHECK.exists() or shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("epubcheck (Debian's package) is needed under CI=true: .ci/run installs it")
        pytest.skip("Debian's epubcheck is not installed")
    # /usr/bin/epubcheck is the jar itself: run by java (no binfmt handler is assumed).
    result = subprocess.run(
        # C1 only and the serial collector: half the start-up time of a short validation.
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", str(EPUBCHECK), str(book)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = (result.stdout + result.stderr).splitlines()
    problems = [line for line in lines if line.startswith(("ERROR", "FATAL"))]
    assert result.returncode == 0 and not problems, "\n".join(problems or lines[-5:])
    return [line for line in lines if line.startswith("WARNING")]


def micros(clock: str) -> int:
    hours, minutes, seconds = clock.split(":")
    whole, _, fraction = seconds.partition(".")
    return ((int(hours) * 60 + int(minutes)) * 60 + int(whole)) * 1_000_000 + int(
        fraction.ljust(6, "0")
    )


class Book:
    """A read-along EPUB, opened: its package, content documents and overlays in spine order."""

    def __init__(self, path: Path) -> None:
        self.archive = zipfile.ZipFile(path)
        container = etree.fromstring(self.archive.read("META-INF/container.xml"), _PARSER)
        self.opf_path = str(container.find(".//{*}rootfile").get("full-path"))  # type: ignore[union-attr]
        self.package = etree.fromstring(self.archive.read(self.opf_path), _PARSER)
        base = dirname(self.opf_path)
        self.items = {
            item.get("id"): (normpath(join(base, unquote(item.get("href") or ""))), item)
            for item in self.package.iter(f"{OPF}item")
        }

    def spine(self) -> list[tuple[str, etree._Element]]:
        return [self.items[ref.get("idref")] for ref in self.package.iter(f"{OPF}itemref")]

    def pars(self) -> list[tuple[str, str, int, int]]:
        """Every ``<par>``: its content document, target id, clip begin and end (µs)."""
        found = []
        for document, item in self.spine():
            overlay = item.get("media-overlay")
            if not overlay:
                continue
            smil_path = self.items[overlay][0]
            smil = etree.fromstring(self.archive.read(smil_path), _PARSER)
            for par in smil.iter(f"{SMIL}par"):
                text, audio = par.find(f"{SMIL}text"), par.find(f"{SMIL}audio")
                assert text is not None and audio is not None
                href, _, target = str(text.get("src")).partition("#")
                assert normpath(join(dirname(smil_path), unquote(href))) == document
                found.append(
                    (
                        document,
                        target,
                        micros(str(audio.get("clipBegin"))),
                        micros(str(audio.get("clipEnd"))),
                    )
                )
        return found

    def durations(self) -> tuple[int, int]:
        """The book's ``media:duration`` and the sum of its overlays' (µs)."""
        book, overlays = 0, 0
        for meta in self.package.iter(f"{OPF}meta"):
            if meta.get("property") == "media:duration":
                if meta.get("refines"):
                    overlays += micros(str(meta.text))
                else:
                    book = micros(str(meta.text))
        return book, overlays


def check_clips(book: Book, out: Path, name: str, unit: str = "sentence") -> int:
    """Every clip against the timestamps JSON; return the number of clips."""
    timeline = json.loads((out / f"{name}.timestamps.json").read_text())
    text = (out / f"{name}.source.txt").read_text()
    words = [
        (w["char_start"], micros_of(w["start"]), micros_of(w["end"])) for w in timeline["words"]
    ]
    if unit == "word":
        units = [(w["char_start"], w["char_end"]) for w in timeline["words"]]
    else:
        chapters = [
            Chapter(**{k: c[k] for k in ("index", "title", "char_start", "char_end")})
            for c in timeline["chapters"]
        ]
        chunks = split(text, max_chars=JobOptions().max_chars, chapters=chapters)
        units = [(s.char_start, s.char_end) for chunk in chunks for s in chunk.sentences]
    pars = book.pars()
    assert pars
    for number, (_, target, begin, end) in enumerate(pars):
        match = _ID.fullmatch(target)
        assert match, target
        start, stop = units[int(match.group(1)) - 1]
        inside = [w for w in words if start <= w[0] < stop]
        assert inside, target
        if match.group(2) is None:  # the whole unit: it starts with its first word
            assert begin == inside[0][1], target
            assert end >= max(w[2] for w in inside) or number + 1 < len(pars), target
        else:  # a piece of a unit (inline elements): it starts with one of the unit's words
            assert begin in {w[1] for w in inside}, target
        following = pars[number + 1][2] if number + 1 < len(pars) else max(w[2] for w in inside)
        assert end == following, target  # contiguous: the pause after it is played under it
    first = pars[0][2]
    assert book.durations() == (pars[-1][3] - first, pars[-1][3] - first)
    return len(pars)


def micros_of(seconds: float) -> int:
    return round(seconds * 1_000_000)


def test_a_text_file_becomes_a_read_along_epub_that_epubcheck_passes(tmp_path: Path) -> None:
    source = tmp_path / "keeper.txt"
    source.write_text(BOOK, encoding="utf-8")
    out = synth(tmp_path, str(source), "--read-along")
    path = out / "keeper.epub"
    assert epubcheck(path) == []
    book = Book(path)
    assert book.archive.namelist()[0] == "mimetype"
    assert check_clips(book, out, "keeper") == 8  # every sentence of the text has its clip
    assert [doc for doc, _ in book.spine()] == ["EPUB/text/c001.xhtml", "EPUB/text/c002.xhtml"]
    audio = [item for _, item in book.items.values() if item.get("media-type") == "audio/mpeg"]
    assert len(audio) == 1  # a WAV job's EPUB carries an MP3 of it
    words = synth(tmp_path, str(source), "--read-along", "--read-along-unit", "word")
    assert epubcheck(words / "keeper.epub") == []
    timeline = json.loads((words / "keeper.timestamps.json").read_text())
    assert check_clips(Book(words / "keeper.epub"), words, "keeper", "word") == len(
        timeline["words"]
    )


def _body_text(data: bytes) -> str:
    return "".join(str(part) for part in etree.fromstring(data, _PARSER).itertext())


def _tags(data: bytes) -> list[str]:
    """The document's elements but those a read-along book adds (its spans and stylesheet link)."""
    return [
        etree.QName(element).localname
        for element in etree.fromstring(data, _PARSER).iter()
        if isinstance(element.tag, str)
        and not (element.get("id") or "").startswith("ra-")
        and "readalong" not in (element.get("href") or "")
    ]


def test_a_gutenberg_epub_keeps_its_xhtml_and_passes_epubcheck(tmp_path: Path) -> None:
    if not SMALLEST_EPUB.exists():
        pytest.skip(f"{SMALLEST_EPUB} is not here (the shared corpus sits beside CI's clone only)")
    out = synth(tmp_path, str(SMALLEST_EPUB), "--read-along", "--format", "mp3", "--preview", "40")
    path = out / "sherlock-holmes.epub"
    warnings = epubcheck(path)
    # Only Gutenberg's own file names (.html, not .xhtml) draw warnings.
    assert warnings and all("HTM-014a" in warning for warning in warnings)
    book = Book(path)
    with zipfile.ZipFile(SMALLEST_EPUB) as original:
        kept = [
            name
            for name in original.namelist()
            if name.endswith(".html") and name in book.archive.namelist()
        ]
        assert len(kept) == 15
        for name in kept:
            before, after = original.read(name), book.archive.read(name)
            assert _body_text(after) == _body_text(before), name
            assert _tags(after) == _tags(before), name
        assert set(original.namelist()) <= set(book.archive.namelist())
    clips = check_clips(book, out, "sherlock-holmes")
    assert clips > 10
    audio = [path for path, item in book.items.values() if item.get("media-type") == "audio/mpeg"]
    # The job's own MP3 is the book's audio.
    assert book.archive.read(audio[0]) == (out / "sherlock-holmes.mp3").read_bytes()
