"""Words of a text, and mapping an engine's reported words onto them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ttsbatch.audio.words import align, word_spans


def test_words_keep_inner_apostrophes_hyphens_and_decimals() -> None:
    text = "Don’t co-op at 3.5, “Mr. Darcy”!"
    assert [text[a:b] for a, b in word_spans(text)] == [
        "Don’t",
        "co-op",
        "at",
        "3.5",
        "Mr",
        "Darcy",
    ]


def test_reported_words_map_to_their_spans_ignoring_case_and_punctuation() -> None:
    text = "Hello, world! It’s fine."
    assert align(text, ["hello", "WORLD", "its", "fine"]) == [(0, 5), (7, 12), (14, 18), (19, 23)]


def test_a_word_the_text_lacks_maps_to_nothing_without_derailing_the_rest() -> None:
    text = "Pay 3 pounds now."
    assert align(text, ["pay", "three", "pounds", "now"]) == [(0, 3), None, (6, 12), (13, 16)]


def test_a_reported_word_joining_two_text_words_takes_both() -> None:
    text = "New York is big"
    assert align(text, ["NewYork", "is", "big"]) == [(0, 8), (9, 11), (12, 15)]


@given(st.lists(st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True), min_size=1, max_size=30))
def test_reporting_the_texts_own_words_maps_each_to_itself(words: list[str]) -> None:
    text = " ".join(words)
    assert align(text, words) == word_spans(text)
