"""Bad input to `ttsbatch synth` ends with one line naming the problem, never a traceback."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from scheduler.ingest import ingest_file
from scheduler.splitting import split
from tests.scheduler.test_ingest_epub import EXTERNAL, XHTML_TYPE, epub, opf, xhtml
from ttsbatch.cli.main import main


def _valid_members() -> dict[str, str | bytes]:
    items = [("a", "a.xhtml", XHTML_TYPE, "")]
    return {"OEBPS/content.opf": opf(items, [("a", True)]), "OEBPS/a.xhtml": xhtml("<p>Hello.</p>")}


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


BAD_INPUTS = {
    "empty file": (_write("empty.txt", b""), r"empty\.txt: .*empty"),
    "whitespace only": (_write("blank.txt", b" \r\n\t\n  \n"), r"blank\.txt: .*nothing to speak"),
    "binary file": (_write("image.txt", bytes(range(256)) * 64), r"image\.txt: not text"),
    "undecodable bytes": (
        _write("noise.txt", random.Random(7).randbytes(4096)),
        r"noise\.txt: (not text|.*decod)",
    ),
    "epub zip bomb": (
        _write("bomb.epub", epub({**_valid_members(), "OEBPS/b.xhtml": b"\0" * (20 << 20)})),
        r"bomb\.epub: refused: .*expands",
    ),
    "epub external entity": (
        _write(
            "xxe.epub",
            epub({**_valid_members(), "OEBPS/a.xhtml": EXTERNAL + "<html><body>&e;</body></html>"}),
        ),
        r"xxe\.epub: .*(entit|refused)",
    ),
    "zip with ../ entries": (
        _write("escape.epub", epub({**_valid_members(), "../evil.sh": "rm -rf /"})),
        r"escape\.epub: refused: it holds a file outside the book",
    ),
    "missing file": (lambda folder: folder / "nowhere.txt", r"nowhere\.txt: no such file"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_fails_with_one_line_naming_the_file(case: str, tmp_path: Path) -> None:
    make, pattern = BAD_INPUTS[case]
    result = CliRunner().invoke(main, ["synth", str(make(tmp_path)), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("ttsbatch: error: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_unwritable_output_folder_is_named(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("One sentence.", encoding="utf-8")
    # Nobody, root included, can create a folder in /proc.
    result = CliRunner().invoke(main, ["synth", str(book), "-o", "/proc/ttsbatch-out"])
    assert result.exit_code == 1
    assert result.output.startswith("ttsbatch: error: /proc/ttsbatch-out: cannot write output here")


def test_an_output_path_that_is_a_file_is_named(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("One sentence.", encoding="utf-8")
    (tmp_path / "taken").write_text("a file, not a folder")
    result = CliRunner().invoke(main, ["synth", str(book), "-o", str(tmp_path / "taken")])
    assert result.exit_code == 1
    assert result.output.startswith("ttsbatch: error: ")
    assert "taken: cannot write output here" in result.output


def test_a_20_megabyte_line_without_punctuation_is_planned_into_bounded_chunks(
    tmp_path: Path,
) -> None:
    words = random.Random(3).choices(
        ["lamp", "rock", "sea", "keeper", "light", "tide"], k=4_000_000
    )
    line = tmp_path / "line.txt"
    line.write_text(" ".join(words), encoding="utf-8")
    assert line.stat().st_size > 20_000_000
    document = ingest_file(line)
    chunks = split(document.text, max_chars=400)
    assert all(c.char_end - c.char_start <= 400 for c in chunks)
    assert chunks[-1].char_end == len(document.text)
    vocabulary = {"lamp", "rock", "sea", "keeper", "light", "tide"}
    for chunk in chunks[:: max(1, len(chunks) // 1000)]:
        assert (
            set(document.text[chunk.char_start : chunk.char_end].split()) <= vocabulary
        )  # no word cut


def test_a_base_url_with_distributed_is_refused_as_a_worker_setting(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("One sentence.", encoding="utf-8")
    argv = [
        "synth",
        str(book),
        "-o",
        str(tmp_path / "out"),
        "--distributed",
        "--base-url",
        "http://x",
    ]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1
    assert "endpoints are worker settings" in result.output
