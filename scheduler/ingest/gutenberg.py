"""Project Gutenberg conventions: licence boilerplate, illustration markers, italics.

Gutenberg's plain-text books wrap the work in a licence header and footer
delimited by ``*** START OF THE PROJECT GUTENBERG EBOOK … ***`` and ``*** END
OF … ***`` (older files: ``*END*THE SMALL PRINT!`` and ``End of the Project
Gutenberg EBook of …``). Inside, ``[Illustration: caption]`` marks a picture
and ``_word_`` marks italics; neither is meant to be read aloud. Books made
from markup carry the same markers in paragraphs of their own
(:func:`licence_bounds`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .chapters import heading_title

_START_MARK = r"\*{3}[ \t]*START OF (?:THE|THIS) PROJECT GUTENBERG\b|\*END\*?[ \t]*THE SMALL PRINT!"
_END_MARK = (
    r"\*{3}[ \t]*END OF (?:THE|THIS) PROJECT GUTENBERG\b|End of (?:the |this )?Project Gutenberg\b"
)
_START = re.compile(rf"^[ \t]*(?:{_START_MARK})[^\n]*$", re.IGNORECASE | re.MULTILINE)
_END = re.compile(rf"^[ \t]*(?:{_END_MARK})[^\n]*$", re.IGNORECASE | re.MULTILINE)
# Gutenberg's pointers to its other editions, set before the book's title page.
_EDITIONS_NOTE = re.compile(
    r"there (?:is|are) (?:an? |several |other )?[\w ]{0,40}\beditions? of this (?:e-?book|title)\b",
    re.IGNORECASE,
)
# In a paragraph (one line), the start marker may close a header set in one
# <pre>; the end marker opens the footer's first paragraph.
_START_IN_PARAGRAPH = re.compile(_START_MARK, re.IGNORECASE)
_END_OF_PARAGRAPHS = re.compile(rf"\s*(?:{_END_MARK})", re.IGNORECASE)
_ILLUSTRATION = "[Illustration"
_MARKER = re.compile(re.escape(_ILLUSTRATION) + r"\b", re.IGNORECASE)
_BRACKET = re.compile(r"[\[\]]")
# A caption longer than this has lost its closing bracket; leaving it alone is
# better than dropping a chapter of the book.
_MAX_MARKER_CHARS = 10_000
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_UNDERSCORES = re.compile("_+")


def strip_boilerplate(text: str) -> str:
    """Return ``text`` without the Gutenberg licence header and footer, if it has them."""
    start = _START.search(text)
    begin = start.end() if start else 0
    end = _END.search(text, begin)
    return text[begin : end.start() if end else len(text)]


def licence_bounds(paragraphs: Sequence[str]) -> tuple[int, int]:
    """Return the range of ``paragraphs`` between the licence header and footer.

    For books whose paragraphs were extracted from markup (EPUB, HTML) that
    did not mark the licence as such: the header ends with the paragraph
    holding the start marker, the footer begins with the paragraph that opens
    with an end marker. Without markers, the whole range.
    """
    begin = next(
        (n + 1 for n, text in enumerate(paragraphs) if _START_IN_PARAGRAPH.search(text)), 0
    )
    end = next(
        (n for n in range(begin, len(paragraphs)) if _END_OF_PARAGRAPHS.match(paragraphs[n])),
        len(paragraphs),
    )
    return begin, end


def is_editions_note(paragraph: str) -> bool:
    """Tell whether ``paragraph`` is Gutenberg's note that other editions of the book exist."""
    return bool(_EDITIONS_NOTE.match(paragraph))


def drop_illustrations(text: str) -> str:
    """Remove ``[Illustration…]`` markers, keeping chapter headings drawn inside them.

    Illustrated editions sometimes set a chapter's heading in its picture
    (``[Illustration: …\\n\\nChapter I.]``); that heading is still the
    chapter's, so it stays as a paragraph of its own.
    """
    starts = [match.start() for match in _MARKER.finditer(text)]
    pieces: list[str] = []
    position = 0
    for number, start in enumerate(starts):
        following = starts[number + 1] if number + 1 < len(starts) else len(text)
        end = _closing_bracket(text, start + 1, min(following, start + _MAX_MARKER_CHARS))
        if end is None:
            continue
        pieces.append(text[position:start])
        pieces.append(_headings_in(text[start + len(_ILLUSTRATION) : end]))
        position = end + 1
    pieces.append(text[position:])
    return "".join(pieces)


def drop_italics_marks(text: str) -> str:
    """Remove the underscores that mark ``_italics_``; ``snake_case`` keeps its own."""
    return _UNDERSCORES.sub(_unless_inside_word, text) if "_" in text else text


def _unless_inside_word(match: re.Match[str]) -> str:
    # A run with a letter or digit on both sides joins words; any other run
    # opens or closes italics.
    start, end, text = match.start(), match.end(), match.string
    inside = start > 0 and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()
    return match.group() if inside else ""


def _closing_bracket(text: str, begin: int, limit: int) -> int | None:
    depth = 1
    for match in _BRACKET.finditer(text, begin, limit):
        depth += 1 if match.group() == "[" else -1
        if depth == 0:
            return match.start()
    return None


def _headings_in(caption: str) -> str:
    titles = []
    for paragraph in _BLANK_LINE.split(caption.lstrip(":")):
        lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
        title = heading_title(lines)
        if title:
            titles.append(title)
    return "\n\n" + "\n\n".join(titles) + "\n\n" if titles else ""
