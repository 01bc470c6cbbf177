"""Splitting cuts a document's text into sentence-aligned chunks an engine can speak."""

from __future__ import annotations

import bisect
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.splitting import MIN_MAX_CHARS, sentence_spans, split
from ttsbatch.errors import ConfigError
from ttsbatch.models import BreakKind, Chapter, ChunkSpan

NONE, SENTENCE, PARAGRAPH, CHAPTER, END = (
    BreakKind.NONE,
    BreakKind.SENTENCE,
    BreakKind.PARAGRAPH,
    BreakKind.CHAPTER,
    BreakKind.END,
)


def sentences(text: str) -> list[str]:
    return [text[s.char_start : s.char_end] for s in sentence_spans(text)]


def chunks(text: str, max_chars: int, chapters: tuple[Chapter, ...] = ()) -> list[tuple[str, str]]:
    """Return (chunk text, break after) pairs, which read better than offsets."""
    return [
        (text[c.char_start : c.char_end], c.break_after.value)
        for c in split(text, max_chars=max_chars, chapters=chapters)
    ]


def chapters_at(text: str, *titles: str) -> tuple[Chapter, ...]:
    starts = [text.index(title) for title in titles]
    ends = [*starts[1:], len(text)]
    return tuple(
        Chapter(index=i, title=title, char_start=a, char_end=b)
        for i, (title, a, b) in enumerate(zip(titles, starts, ends, strict=True))
    )


# --- sentence segmentation -------------------------------------------------------------


def test_sentence_spans_are_exact_offsets_without_surrounding_spaces() -> None:
    spans = sentence_spans("  It rained. We stayed in.  ")
    assert [(s.char_start, s.char_end) for s in spans] == [(2, 12), (13, 26)]


def test_titles_and_saints_do_not_end_a_sentence() -> None:
    text = "Mr. Smith met Dr. Jones and Mrs. Long at St. Paul's. They talked."
    assert sentences(text) == [
        "Mr. Smith met Dr. Jones and Mrs. Long at St. Paul's.",
        "They talked.",
    ]


def test_initials_do_not_end_a_sentence() -> None:
    text = "J. R. R. Tolkien wrote it. So did J.R.R. Tolkien. The U.S. Navy agreed."
    assert sentences(text) == [
        "J. R. R. Tolkien wrote it.",
        "So did J.R.R. Tolkien.",
        "The U.S. Navy agreed.",
    ]


def test_latin_abbreviations_do_not_end_a_sentence_but_etc_can() -> None:
    text = "Fruit, e.g. Apples, i.e. Pears, etc. and more. We ate etc. Then we slept."
    assert sentences(text) == [
        "Fruit, e.g. Apples, i.e. Pears, etc. and more.",
        "We ate etc.",
        "Then we slept.",
    ]


def test_number_abbreviations_end_a_sentence_only_when_no_number_follows() -> None:
    assert sentences("See No. 5 and p. 12 now. No. That is wrong.") == [
        "See No. 5 and p. 12 now.",
        "No.",
        "That is wrong.",
    ]


def test_decimals_and_addresses_do_not_end_a_sentence() -> None:
    assert sentences("It costs 3.5 dollars at www.example.org today. Pay.") == [
        "It costs 3.5 dollars at www.example.org today.",
        "Pay.",
    ]


def test_an_ellipsis_ends_a_sentence_only_before_a_capital() -> None:
    assert sentences("Wait... what? He paused… Then left. Really?! Yes.") == [
        "Wait... what?",
        "He paused…",
        "Then left.",
        "Really?!",
        "Yes.",
    ]


def test_a_closing_quote_belongs_to_the_sentence_it_closes() -> None:
    assert sentences('"Stop!" she said. He stopped. "Go." He went.') == [
        '"Stop!" she said.',
        "He stopped.",
        '"Go."',
        "He went.",
    ]


def test_curly_quotes_guillemets_and_brackets_close_a_sentence() -> None:
    text = "“Stop!” she said. ‘Fine.’ He left. «Oui.» Ensuite (as usual.) Then home."
    assert sentences(text) == [
        "“Stop!” she said.",
        "‘Fine.’",
        "He left.",
        "«Oui.»",
        "Ensuite (as usual.)",
        "Then home.",
    ]


def test_cjk_terminals_end_a_sentence_without_a_space() -> None:
    assert sentences("今日は晴れ。明日は雨！本当？「はい。」") == [
        "今日は晴れ。",
        "明日は雨！",
        "本当？",
        "「はい。」",
    ]


def test_other_scripts_terminals_end_a_sentence() -> None:
    assert sentences("यह एक वाक्य है। यह दूसरा है।") == ["यह एक वाक्य है।", "यह दूसरा है।"]


def test_a_paragraph_break_ends_a_sentence_even_without_a_terminal() -> None:
    assert sentences("A heading\n\nIts text. More\n\nEnd") == [
        "A heading",
        "Its text.",
        "More",
        "End",
    ]


# --- chunking ------------------------------------------------------------------------


def test_max_chars_below_twenty_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least 20"):
        split("Hello.", max_chars=MIN_MAX_CHARS - 1)
    assert len(split("Hello.", max_chars=MIN_MAX_CHARS)) == 1


def test_a_text_with_nothing_to_say_has_no_chunks() -> None:
    assert split("", max_chars=400) == ()
    assert split(" \n\n  ", max_chars=400) == ()


def test_a_chunk_excludes_leading_and_trailing_spaces() -> None:
    assert split("  Hello there.  ", max_chars=400) == (
        ChunkSpan(
            index=0,
            char_start=2,
            char_end=14,
            break_after=END,
            sentences=(sentence_spans("  Hello there.  ")[0],),
        ),
    )


def test_whole_sentences_are_packed_greedily_up_to_max_chars() -> None:
    text = "One two. Three four. Five six. Seven."
    #       0       8 9        20 21     30 31  37
    result = split(text, max_chars=20)
    assert [(c.char_start, c.char_end, c.break_after) for c in result] == [
        (0, 20, SENTENCE),
        (21, 37, END),
    ]
    assert [(s.char_start, s.char_end) for s in result[0].sentences] == [(0, 8), (9, 20)]
    assert [(s.char_start, s.char_end) for s in result[1].sentences] == [(21, 30), (31, 37)]


def test_a_chunk_never_crosses_a_paragraph_break() -> None:
    assert chunks("First one.\n\nSecond one.", max_chars=400) == [
        ("First one.", PARAGRAPH),
        ("Second one.", END),
    ]


def test_a_chunk_never_crosses_a_chapter_start() -> None:
    text = "Chapter I.\n\nIt is a truth. Very true.\n\nChapter II.\n\nThe end."
    assert chunks(text, 400, chapters_at(text, "Chapter I.", "Chapter II.")) == [
        ("Chapter I.", PARAGRAPH),
        ("It is a truth. Very true.", CHAPTER),
        ("Chapter II.", PARAGRAPH),
        ("The end.", END),
    ]


def test_a_chapter_start_inside_a_paragraph_or_sentence_still_cuts() -> None:
    text = "One sentence. Two sentence and three."
    assert chunks(text, 400, chapters_at(text, "One", "Two", "three")) == [
        ("One sentence.", CHAPTER),
        ("Two sentence and", CHAPTER),
        ("three.", END),
    ]


def test_an_overlong_sentence_splits_at_the_last_clause_break_that_fits() -> None:
    text = "Alpha beta gamma, delta epsilon; zeta eta theta iota kappa lambda mu."
    assert chunks(text, 40) == [
        ("Alpha beta gamma, delta epsilon;", NONE),
        ("zeta eta theta iota kappa lambda mu.", END),
    ]


def test_each_piece_of_a_split_sentence_is_one_sentence_entry() -> None:
    text = "Alpha beta gamma, delta epsilon; zeta eta theta iota kappa lambda mu."
    pieces = [c.sentences for c in split(text, max_chars=40)]
    assert [[(s.char_start, s.char_end) for s in entry] for entry in pieces] == [
        [(0, 32)],
        [(33, 69)],
    ]


def test_dashes_and_an_opening_bracket_are_clause_breaks() -> None:
    assert chunks("Then they came back home — tired out — and slept all day long.", 30) == [
        ("Then they came back home —", NONE),
        ("tired out — and slept all day", NONE),
        ("long.", END),
    ]
    assert chunks("Then she left the house (in haste) and never ever came back.", 30) == [
        ("Then she left the house", NONE),
        ("(in haste) and never ever came", NONE),
        ("back.", END),
    ]


def test_a_clause_break_in_the_first_half_gives_way_to_the_last_space() -> None:
    text = "Ah, then the rest of this long sentence goes on and on."
    assert chunks(text, 30) == [
        ("Ah, then the rest of this long", NONE),
        ("sentence goes on and on.", END),
    ]


def test_an_overlong_sentence_without_punctuation_splits_at_the_last_space() -> None:
    text = "aaaa bbbb cccc dddd eeee ffff gggg hhhh."
    assert chunks(text, 20) == [("aaaa bbbb cccc dddd", NONE), ("eeee ffff gggg hhhh.", END)]


def test_only_a_word_longer_than_max_chars_is_cut_inside_at_max_chars() -> None:
    text = "Go to " + "x" * 45 + " now."
    result = split(text, max_chars=20)
    assert [(c.char_start, c.char_end, c.break_after) for c in result] == [
        (0, 5, NONE),
        (6, 26, NONE),
        (26, 46, NONE),
        (46, 56, END),
    ]


def test_the_tail_of_a_split_sentence_shares_a_chunk_with_what_follows() -> None:
    text = "Alpha beta gamma delta epsilon zeta. Eta."
    assert chunks(text, 30) == [("Alpha beta gamma delta epsilon", NONE), ("zeta. Eta.", END)]


def test_a_split_sentence_before_a_paragraph_break_ends_with_paragraph() -> None:
    text = "Alpha beta gamma delta epsilon zeta\n\nEta."
    assert chunks(text, 30) == [
        ("Alpha beta gamma delta epsilon", NONE),
        ("zeta", PARAGRAPH),
        ("Eta.", END),
    ]


# --- properties ----------------------------------------------------------------------

# A sentence boundary in scripts without spaces: a run of terminals with one of 。！？ in it.
_TERMINALS = ".!?…‽‼⁇⁈⁉。！？｡।॥؟۔"
_UNSPACED_END = re.compile(
    f"[{_TERMINALS}]*[。！？｡][{_TERMINALS}]*[\"'’”»›)\\]}}」』）〕〉》】_*]*\\Z"
)

VOCABULARY = [
    "the", "Cat", "Mr.", "Dr.", "J.", "e.g.", "3.5", "etc.", "end.", "What?", "no!", '"Stop!"',
    "“Go.”", "(aside)", "well,", "—", "semi;", "…", "Wait...", "今日は。明日", "U.S.", "No.", "5",
    "a.m.", "‘Fine,’",
]  # fmt: skip
words = st.one_of(
    st.sampled_from(VOCABULARY),
    st.text(alphabet="abcXYZ.,;:!?\"'()—…。", min_size=1, max_size=12),
    st.text(alphabet="xyz", min_size=20, max_size=70),
)
paragraphs = st.lists(words, min_size=1, max_size=40).map(" ".join)
documents = st.lists(paragraphs, min_size=1, max_size=6).map("\n\n".join)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, int, tuple[Chapter, ...]]:
    text = draw(documents)
    starts = [0] + [m.end() for m in re.finditer("\n\n", text)]
    chapters = _chapters(text, draw(st.sets(st.sampled_from(starts))))
    return text, draw(st.integers(min_value=MIN_MAX_CHARS, max_value=90)), chapters


def _chapters(text: str, starts: set[int]) -> tuple[Chapter, ...]:
    chosen = sorted(starts)
    return tuple(
        Chapter(index=i, title=f"{i}", char_start=a, char_end=b)
        for i, (a, b) in enumerate(
            zip(chosen, [*chosen[1:], len(text)][: len(chosen)], strict=True)
        )
    )


def _token_at(text: str, pos: int) -> str:
    """The maximal run of non-whitespace around the edge ``pos``."""
    start, end = pos, pos
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end]


def check_chunks(text: str, max_chars: int, chapters: tuple[Chapter, ...]) -> list[ChunkSpan]:
    result = list(split(text, max_chars=max_chars, chapters=chapters))
    starts = [c.char_start for c in chapters]
    edges = [0]
    for i, chunk in enumerate(result):
        a, b = chunk.char_start, chunk.char_end
        assert chunk.index == i
        assert 0 <= edges[-1] <= a < b <= len(text)
        assert b - a <= max_chars
        assert not text[a].isspace() and not text[b - 1].isspace()
        assert text[edges[-1] : a].strip() == "", "a speakable character is in no chunk"
        assert "\n" not in text[a:b]
        assert not any(a < c < b for c in starts)
        spans = [(s.char_start, s.char_end) for s in chunk.sentences]
        assert spans[0][0] == a and spans[-1][1] == b
        for (_, e), (s2, _) in itertools.pairwise(spans):
            assert e <= s2 and text[e:s2].strip() == ""
        assert all(not text[s].isspace() and not text[e - 1].isspace() for s, e in spans)
        edges.append(b)
    assert text[edges[-1] :].strip() == ""
    for chunk, after in itertools.pairwise(result):
        gap = range(chunk.char_end, after.char_start + 1)
        if any(c in gap for c in starts):
            assert chunk.break_after == CHAPTER
        elif "\n" in text[chunk.char_end : after.char_start]:
            assert chunk.break_after == PARAGRAPH
        else:
            assert chunk.break_after in (SENTENCE, NONE)
        if chunk.break_after == SENTENCE:
            # Greedy: the next sentence did not fit, or it is over-long and starts afresh.
            next_end = after.sentences[0].char_end
            assert next_end - chunk.char_start > max_chars or after.break_after == NONE
    if result:
        assert result[-1].break_after == END
    return result


@settings(max_examples=300, deadline=None)
@given(cases())
def test_chunks_cover_every_speakable_character_within_limits_and_boundaries(
    case: tuple[str, int, tuple[Chapter, ...]],
) -> None:
    check_chunks(*case)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_no_word_is_cut_unless_longer_than_max_chars(
    case: tuple[str, int, tuple[Chapter, ...]],
) -> None:
    text, max_chars, chapters = case
    for chunk in check_chunks(text, max_chars, chapters):
        for edge in (chunk.char_start, chunk.char_end):
            inside = 0 < edge < len(text) and not (text[edge - 1].isspace() or text[edge].isspace())
            if inside and not _UNSPACED_END.search(text, 0, edge):
                assert len(_token_at(text, edge)) > max_chars


@settings(max_examples=200, deadline=None)
@given(documents, st.integers(min_value=MIN_MAX_CHARS, max_value=90), st.data())
def test_chapter_starts_anywhere_are_never_crossed(
    text: str, max_chars: int, data: st.DataObject
) -> None:
    starts = data.draw(st.sets(st.integers(min_value=0, max_value=len(text)), max_size=5))
    check_chunks(text, max_chars, _chapters(text, starts))


@settings(max_examples=300, deadline=None)
@given(documents)
def test_sentences_are_trimmed_ordered_within_a_paragraph_and_cover_the_text(text: str) -> None:
    end = 0
    for span in sentence_spans(text):
        a, b = span.char_start, span.char_end
        assert end <= a < b <= len(text)
        assert text[end:a].strip() == ""
        assert not text[a].isspace() and not text[b - 1].isspace()
        assert "\n" not in text[a:b]
        end = b
    assert text[end:].strip() == ""


_WORDS = st.sampled_from(
    ["the", "keeper", "climbed", "stair", "at", "dusk", "lamp", "burned", "Mr.", "sea", "light"]
)
_SENTENCE = st.builds(
    lambda words, end: " ".join(words).capitalize() + end,
    st.lists(_WORDS, min_size=1, max_size=30),
    st.sampled_from([".", "!", "?", "…"]),
)
_PARAGRAPH = st.lists(_SENTENCE, min_size=1, max_size=8).map(" ".join)


@given(
    paragraphs=st.lists(_PARAGRAPH, min_size=2, max_size=8),
    where=st.integers(min_value=0),
    replacement=_SENTENCE,
    max_chars=st.sampled_from([40, 80, 200, 400]),
)
def test_an_edit_moves_only_the_chunk_boundaries_of_its_own_paragraph(
    paragraphs: list[str], where: int, replacement: str, max_chars: int
) -> None:
    """Chunks never cross a paragraph break, so every chunk of another paragraph keeps its
    exact text: an edited book misses the chunk cache only in the edited paragraph."""
    edited_at = where % len(paragraphs)
    edited = list(paragraphs)
    edited[edited_at] = replacement + " " + paragraphs[edited_at]

    def texts_by_paragraph(paras: list[str]) -> list[list[str]]:
        text = "\n\n".join(paras)
        starts = [0]
        for para in paras[:-1]:
            starts.append(starts[-1] + len(para) + 2)
        grouped: list[list[str]] = [[] for _ in paras]
        for chunk in split(text, max_chars=max_chars):
            owner = bisect.bisect_right(starts, chunk.char_start) - 1
            grouped[owner].append(text[chunk.char_start : chunk.char_end])
        return grouped

    before, after = texts_by_paragraph(paragraphs), texts_by_paragraph(edited)
    for n, (old, new) in enumerate(zip(before, after, strict=True)):
        if n != edited_at:
            assert old == new
