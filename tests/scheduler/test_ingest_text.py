"""Plain text: decoding, paragraphs, chapter headings and Gutenberg conventions."""

from __future__ import annotations

import codecs
import random

import pytest

from scheduler.ingest import ingest_bytes, ingest_text
from tests.scheduler.test_ingest_properties import assert_contract
from ttsbatch.errors import InputError


def _titles(text: str) -> list[str]:
    return [chapter.title for chapter in ingest_text(text).chapters]


# --- decoding ---------------------------------------------------------------


def test_cp1252_curly_quotes_and_em_dash_are_decoded_not_mangled() -> None:
    data = b"\x93Well,\x94 said she \x97 \x91quite\x92 so\x85 caf\xe9.\r\n"
    assert ingest_bytes(data, "old.txt").text == "“Well,” said she — ‘quite’ so… café."


def test_utf8_with_and_without_a_byte_order_mark_decode_the_same() -> None:
    text = "“Naïve” café — 中文"
    assert ingest_bytes(text.encode(), "a.txt").text == text
    assert ingest_bytes(codecs.BOM_UTF8 + text.encode(), "a.txt").text == text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_are_decoded(encoding: str) -> None:
    text = "Hello “world”, café.\n\nSecond paragraph."
    data = text.encode(encoding)
    if encoding == "utf-16-le":
        data = codecs.BOM_UTF16_LE + data
    elif encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    assert ingest_bytes(data, "wide.txt").text == text


def test_utf8_with_a_stray_byte_stays_utf8_instead_of_turning_into_mojibake() -> None:
    data = "“Quoted” text — with dashes. ".encode() * 10 + b"\x93" + "“End.”".encode()
    assert ingest_bytes(data, "damaged.txt").text == (
        "“Quoted” text — with dashes. " * 10 + "“End.”"
    )


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1251", "Привет, мир! Это проверка кодировки текста. " * 10),
        ("shift_jis", "これは日本語のテキストです。文字コードの判定を確認します。" * 10),
        ("latin-1", "Ça va très bien, merci. Où êtes-vous? " * 10),
    ],
)
def test_other_legacy_encodings_are_detected(encoding: str, text: str) -> None:
    assert ingest_bytes(text.encode(encoding), "legacy.txt").text == text.strip()


def test_utf16_without_a_byte_order_mark_is_recognised_by_its_nul_bytes() -> None:
    assert ingest_bytes("Plain old text.".encode("utf-16-le"), "wide.txt").text == "Plain old text."


def test_binary_data_with_nul_bytes_is_not_text() -> None:
    data = bytes([0x89, 0x50, 0x4E, 0x47, 0, 0, 0, 13, 1, 2, 0, 255, 0, 7]) * 50
    with pytest.raises(InputError, match=r"^image\.txt: not text"):
        ingest_bytes(data, "image.txt")


def test_random_bytes_are_not_text() -> None:
    data = random.Random(7).randbytes(4096)
    with pytest.raises(InputError, match=r"^noise\.txt: not text"):
        ingest_bytes(data, "noise.txt")


def test_random_bytes_without_nul_are_not_text_either() -> None:
    data = bytes(b for b in random.Random(8).randbytes(8192) if b)
    with pytest.raises(InputError, match=r"^noise\.txt: not text"):
        ingest_bytes(data, "noise.txt")


@pytest.mark.parametrize("data", [b"", b"   \r\n\t\n  ", codecs.BOM_UTF8 + b"\n \n"])
def test_an_empty_or_blank_file_has_nothing_to_speak(data: bytes) -> None:
    with pytest.raises(InputError, match=r"^blank\.txt: .*is empty: nothing to speak"):
        ingest_bytes(data, "blank.txt")


def test_blank_inline_text_has_nothing_to_speak() -> None:
    with pytest.raises(InputError, match="is empty: nothing to speak"):
        ingest_text(" \n\t ")


def test_text_of_only_punctuation_has_nothing_to_speak() -> None:
    with pytest.raises(InputError, match=r"^stars\.txt: no readable text"):
        ingest_bytes(b"* * *\n\n-----\n", "stars.txt")


# --- paragraphs ---------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_hard_wrapped_lines_join_and_blank_lines_separate_paragraphs(newline: str) -> None:
    text = newline.join(
        [
            "  It is a truth   universally",
            "acknowledged,\tthat a single man.",
            "  ",
            "",
            "Second",
            "paragraph.",
            "",
        ]
    )
    assert ingest_text(text).text == (
        "It is a truth universally acknowledged, that a single man.\n\nSecond paragraph."
    )


def test_one_long_line_per_paragraph_without_blank_lines_gives_one_paragraph_each() -> None:
    first, second = "A long line of prose. " * 8, "Another line of prose. " * 8
    document = ingest_text(f"{first}\n{second}\nShort.\n")
    assert document.text.split("\n\n") == [first.strip(), second.strip(), "Short."]


def test_unicode_is_composed_and_invisible_characters_are_removed() -> None:
    document = ingest_text("Cafe\u0301 soft\u00adhy\u200bphen\u00a0and\u2003spaces")
    assert document.text == "Café softhyphen and spaces"


def test_a_twenty_megabyte_single_line_is_read_whole() -> None:
    line = ("word _italic_ [Illustration] x " * 700_000)[:20_000_000]
    document = ingest_bytes(line.encode(), "long.txt")
    assert document.text.startswith("word italic x word italic x")
    assert "\n" not in document.text


# --- chapters -----------------------------------------------------------------


def test_chapter_headings_in_their_many_forms_start_chapters() -> None:
    headings = [
        "CHAPTER I",
        "Chapter 12.",
        "CHAPTER XIV. The Title",
        "BOOK ONE",
        "Letter 1",
        "XIV",
        "Chapter the Second",
        "PART TWENTY-ONE",
        "Chapter 3: Loomings",
        "STAVE III.",
        "IV. The Return of the King",
        "CHAPTER II THE BEGINNING",
        "Prologue",
    ]
    text = "\n\n".join(f"{heading}\n\nBody text of {n}." for n, heading in enumerate(headings))
    assert _titles(text) == headings


@pytest.mark.parametrize(
    "paragraph",
    [
        "chapter one was long.",
        "Book one was the best.",
        "I went home.",
        "M. Krempe had now commenced an eulogy.",
        "CHAPTER I and then the whole of a long sentence that is clearly prose rather than a heading at all, by far",
        "Chapter 12 was where it happened",
    ],
)
def test_sentences_that_merely_start_like_headings_do_not_start_chapters(paragraph: str) -> None:
    assert _titles(f"Front.\n\n{paragraph}\n\nBody.") == []


def test_a_heading_and_its_title_on_the_next_line_are_one_heading() -> None:
    document = ingest_text(
        "CHAPTER I.\nDown the Rabbit-Hole\n\nAlice was beginning to get very tired."
    )
    assert (
        document.text == "CHAPTER I. Down the Rabbit-Hole\n\nAlice was beginning to get very tired."
    )
    assert [c.title for c in document.chapters] == ["CHAPTER I. Down the Rabbit-Hole"]


def test_chapter_spans_cover_heading_to_last_paragraph() -> None:
    document = ingest_text("Front matter.\n\nCHAPTER I.\n\nOne.\n\nTwo.\n\nCHAPTER II.\n\nThree.")
    assert document.text == "Front matter.\n\nCHAPTER I.\n\nOne.\n\nTwo.\n\nCHAPTER II.\n\nThree."
    first, second = document.chapters
    assert (first.index, first.title) == (0, "CHAPTER I.")
    assert document.text[first.char_start : first.char_end] == "CHAPTER I.\n\nOne.\n\nTwo."
    assert document.text[second.char_start : second.char_end] == "CHAPTER II.\n\nThree."
    assert_contract(document)


def test_a_table_of_contents_of_chapter_lines_does_not_become_empty_chapters() -> None:
    contents = "\n\n".join(f"Chapter {n}." for n in ["I", "II", "III"])
    body = "\n\n".join(f"Chapter {n}.\n\nText of chapter {n}." for n in ["I", "II", "III"])
    document = ingest_text(f"CONTENTS\n\n{contents}\n\nPREFACE.\n\nA preface.\n\n{body}")
    assert [c.title for c in document.chapters] == ["Chapter I.", "Chapter II.", "Chapter III."]
    assert document.text[document.chapters[0].char_start :].startswith(
        "Chapter I.\n\nText of chapter I."
    )


def test_a_contents_list_on_consecutive_lines_is_read_as_separate_entries() -> None:
    document = ingest_text(
        " Letter 1\n Chapter 1\n Chapter 2\n\nLetter 1\n\nDear sister.\n\nChapter 1\n\nI am.\n\nChapter 2\n\nEnd."
    )
    assert document.text.startswith(
        "Letter 1\n\nChapter 1\n\nChapter 2\n\nLetter 1\n\nDear sister."
    )
    assert [c.title for c in document.chapters] == ["Letter 1", "Chapter 1", "Chapter 2"]
    assert document.chapters[0].char_start == len("Letter 1\n\nChapter 1\n\nChapter 2\n\n")


def test_a_part_heading_directly_before_a_chapter_heading_does_not_start_a_chapter() -> None:
    document = ingest_text(
        "BOOK ONE\n\nCHAPTER I\n\nText.\n\nCHAPTER II\n\nMore.\n\nBOOK TWO\n\nCHAPTER I\n\nAgain."
    )
    assert [c.title for c in document.chapters] == ["CHAPTER I", "CHAPTER II", "CHAPTER I"]
    assert_contract(document)


def test_a_heading_with_no_body_after_it_is_not_a_chapter() -> None:
    assert _titles("Chapter 1\n\nText.\n\nTHE END\n\nChapter 2") == ["Chapter 1"]


# --- Project Gutenberg ------------------------------------------------------------

_HEADER = (
    "The Project Gutenberg eBook of A Book\r\n\r\nThis ebook is for the use of anyone.\r\n\r\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK A BOOK ***\r\n\r\n"
)
_FOOTER = (
    "\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK A BOOK ***\r\n\r\n"
    "Updated editions will replace the previous one.\r\n"
)


def test_gutenberg_header_and_footer_are_left_out() -> None:
    data = (_HEADER + "Chapter I.\r\n\r\nThe story.\r\n" + _FOOTER).encode("cp1252")
    assert ingest_bytes(data, "book.txt").text == "Chapter I.\n\nThe story."


def test_gutenberg_header_and_footer_are_kept_when_asked() -> None:
    data = (_HEADER + "Chapter I.\r\n\r\nThe story." + _FOOTER).encode("cp1252")
    text = ingest_bytes(data, "book.txt", keep_boilerplate=True).text
    assert text.startswith("The Project Gutenberg eBook of A Book\n\n")
    assert text.endswith("Updated editions will replace the previous one.")


def test_older_gutenberg_markers_are_recognised_too() -> None:
    text = (
        "The Project Gutenberg Etext of Old\n\nLegal stuff.\n\n"
        "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
        "The tale.\n\nEnd of the Project Gutenberg EBook of Old\n\nMore legal stuff."
    )
    assert ingest_text(text).text == "The tale."


def test_illustration_markers_are_not_spoken_even_across_lines_and_nested() -> None:
    text = (
        "Before.\n\n[Illustration]\n\n"
        "[Illustration:\n\n    “He came down”\n\n[_Copyright 1894 by George Allen._]]\n\n"
        "Middle [Illustration: a picture] text.\n\nAfter."
    )
    assert ingest_text(text).text == "Before.\n\nMiddle text.\n\nAfter."


def test_a_chapter_heading_set_inside_an_illustration_is_kept() -> None:
    text = "Preface.\n\n[Illustration: ·THE BOOK·\n\n\n\nChapter I.]\n\nIt is a truth.\n\nCHAPTER II.\n\nMore."
    document = ingest_text(text)
    assert document.text == "Preface.\n\nChapter I.\n\nIt is a truth.\n\nCHAPTER II.\n\nMore."
    assert [c.title for c in document.chapters] == ["Chapter I.", "CHAPTER II."]


def test_an_unclosed_illustration_bracket_does_not_swallow_the_book() -> None:
    assert (
        ingest_text("[Illustration: oops\n\nThe whole book.").text
        == "[Illustration: oops\n\nThe whole book."
    )


def test_underscores_marking_italics_are_dropped_but_snake_case_is_kept() -> None:
    text = "“_You_ want to tell me,” _she_ said, reading __init__ and file_name.\n\n________"
    assert ingest_text(text).text == "“You want to tell me,” she said, reading init and file_name."
