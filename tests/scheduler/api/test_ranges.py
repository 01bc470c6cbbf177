"""Parsing ``Range`` (RFC 9110 section 14): single ranges are served, the rest gets the whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.api.media import media_type
from scheduler.api.ranges import UnsatisfiableRangeError, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=-100", (900, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=990-5000", (990, 1000)),
        ("bytes=999-999", (999, 1000)),
        ("BYTES = 5-9", (5, 10)),
        (None, None),
        ("bytes=0-1,5-6", None),  # several ranges: the whole, as RFC 9110 allows
        ("items=0-5", None),  # another unit
        ("bytes=5-2", None),  # last before first: invalid, ignored
        ("bytes=-", None),
        ("bytes=" + "9" * 5000 + "-", None),  # no byte position: all is sent (not a 500)
        ("bytes=a-b", None),
        ("bytes 0-5", None),
    ],
)
def test_a_range_header_is_read_as_one_range_or_none(
    header: str | None, expected: tuple[int, int] | None
) -> None:
    assert parse_range(header, 1000) == expected


def test_a_suffix_of_an_empty_file_is_satisfiable_and_sent_whole() -> None:
    assert parse_range("bytes=-5", 0) is None  # RFC 9110 14.1.1


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", 1000),
        ("bytes=1000-2000", 1000),
        ("bytes=-0", 1000),
        ("bytes=0-", 0),
    ],
)
def test_a_range_past_the_end_is_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(UnsatisfiableRangeError):
        parse_range(header, size)


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 10_000))
def test_a_served_range_lies_within_the_representation(first: int, last: int, size: int) -> None:
    try:
        found = parse_range(f"bytes={first}-{last}", size)
    except UnsatisfiableRangeError:
        assert first >= size
        return
    if last < first:
        assert found is None
    else:
        assert found == (first, min(last + 1, size))


def test_files_are_served_with_the_media_type_of_their_kind() -> None:
    assert media_type("book.m4b") == "audio/mp4"
    assert media_type("book.001.mp3") == "audio/mpeg"
    assert media_type("book.opus") == "audio/ogg"
    assert media_type("book.flac") == "audio/flac"
    assert media_type("book.epub") == "application/epub+zip"
    assert media_type("book.cover.JPG") == "image/jpeg"
    assert media_type("book.pcm") == "application/octet-stream"
    assert media_type("manifest") == "application/octet-stream"
