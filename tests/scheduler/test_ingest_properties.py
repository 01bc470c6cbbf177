"""Property tests: whatever the paragraphs, the normalised text contract holds."""

from __future__ import annotations

import html
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.ingest import ingest_bytes, ingest_text
from ttsbatch.models import Document


def assert_contract(document: Document, *, titles_from_text: bool = True) -> None:
    """Assert the ``Document`` text and chapter contract (models.Document).

    ``titles_from_text=False`` is for EPUBs, whose chapter titles come from the
    table of contents and need not be the words the chapter starts with.
    """
    text = document.text
    assert text == text.strip()
    assert "\n" not in text.replace("\n\n", "")
    assert "\n\n\n" not in text
    assert "  " not in text
    assert not any(ch.isspace() and ch not in " \n" for ch in text)
    assert unicodedata.is_normalized("NFC", text)
    for paragraph in text.split("\n\n"):
        assert paragraph
        assert paragraph == paragraph.strip()
    previous_end = None
    for number, chapter in enumerate(document.chapters):
        assert chapter.index == number
        assert 0 <= chapter.char_start < chapter.char_end <= len(text)
        assert chapter.title
        if titles_from_text:
            assert text[chapter.char_start : chapter.char_end].startswith(chapter.title)
        assert (
            chapter.char_start == 0 or text[chapter.char_start - 2 : chapter.char_start] == "\n\n"
        )
        assert (
            chapter.char_end == len(text) or text[chapter.char_end : chapter.char_end + 2] == "\n\n"
        )
        if previous_end is not None:
            assert chapter.char_start == previous_end + 2
        previous_end = chapter.char_end
    if document.chapters:
        assert document.chapters[-1].char_end == len(text)


# Words always hold a letter, so every paragraph is speakable. A combining
# acute accent tests NFC; roman numerals and "Chapter" make headings appear.
_LETTERS = "abcxyzABCXYZIVéßжλ中"
_word = st.one_of(
    st.text(alphabet=_LETTERS + "0123456789.,;:!?'’“”—-", min_size=0, max_size=6).map(
        lambda rest: "e\u0301" + rest
    ),
    st.text(alphabet=_LETTERS, min_size=1, max_size=8),
    st.sampled_from(["Chapter", "CHAPTER", "I", "II.", "XIV", "Letter", "1", "12."]),
)
_line = st.lists(_word, min_size=1, max_size=8)
_paragraph = st.lists(_line, min_size=1, max_size=4)
_space = st.sampled_from([" ", "  ", "\t", " \u00a0 "])
_newline = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def _plain_text(draw: st.DrawFn) -> tuple[str, list[str]]:
    paragraphs = draw(st.lists(_paragraph, min_size=1, max_size=8))
    newline = draw(_newline)
    pieces: list[str] = []
    for paragraph in paragraphs:
        lines = [
            draw(_space).join(words) + draw(st.sampled_from(["", " ", "\t"])) for words in paragraph
        ]
        pieces.append(newline.join(draw(st.sampled_from(["", " "])) + line for line in lines))
    separator = newline + draw(st.sampled_from(["", " ", "\t"])) + newline
    text = (
        draw(st.sampled_from(["", newline, " "]))
        + separator.join(pieces)
        + draw(st.sampled_from(["", newline]))
    )
    words = [word for paragraph in paragraphs for line in paragraph for word in line]
    return text, words


@given(_plain_text())
@settings(max_examples=300, deadline=None)
def test_any_plain_text_meets_the_normalised_text_contract(case: tuple[str, list[str]]) -> None:
    text, words = case
    document = ingest_text(text)
    assert_contract(document)
    assert document.text.split() == [unicodedata.normalize("NFC", word) for word in words]


@given(_plain_text(), st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
@settings(max_examples=100, deadline=None)
def test_any_encoded_text_file_meets_the_contract(
    case: tuple[str, list[str]], encoding: str
) -> None:
    text, words = case
    document = ingest_bytes(text.encode(encoding), "random.txt")
    assert_contract(document)
    assert document.text.split() == [unicodedata.normalize("NFC", word) for word in words]


@given(st.lists(st.lists(_word, min_size=1, max_size=6), min_size=1, max_size=6))
@settings(max_examples=100, deadline=None)
def test_any_html_paragraphs_come_out_as_paragraphs(paragraphs: list[list[str]]) -> None:
    body = "".join(
        "<p>" + " ".join(f"<em>{html.escape(word)}</em>" for word in words) + "\n</p>\n"
        for words in paragraphs
    )
    document = ingest_bytes(f"<html><body>{body}</body></html>".encode(), "random.html")
    assert_contract(document)
    assert document.text.split("\n\n") == [
        unicodedata.normalize("NFC", " ".join(words)) for words in paragraphs
    ]
