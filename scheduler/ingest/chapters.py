"""Chapter headings: recognising them in plain text, and choosing chapter starts.

A plain-text heading is a short paragraph standing alone that looks like
``CHAPTER I``, ``Chapter 12.``, ``CHAPTER XIV. The Title``, ``BOOK ONE``,
``Letter 1``, ``STAVE III`` or a roman numeral on its own line. Headings are
spoken, so they stay in the text as their own paragraph.

Not every heading starts a chapter (:func:`chapter_starts`): a chapter needs
body text, so of headings that follow one another only the last one starts a
chapter (``BOOK ONE`` then ``CHAPTER I``), and a table of contents — three or
more headings in a row whose last title recurs later — starts none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from .normalise import Block, clean

_KEYWORDS = (
    "chapter",
    "book",
    "part",
    "letter",
    "volume",
    "vol.",
    "canto",
    "stave",
    "act",
    "scene",
    "section",
    "episode",
)
_UNITS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    "fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
)
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_ORDINALS = (
    "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|last|final"
)
_ROMAN = r"(?=[IVXLCDM])M{0,4}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
_NUMBER = (
    rf"(?:\d{{1,4}}|{_ROMAN}|(?i:{_ROMAN})"
    rf"|(?i:(?:{_TENS})(?:[- ](?:{_UNITS}))?|{_UNITS}|(?:the )?(?:{_ORDINALS})))"
)
# The keyword in title case or capitals ("Chapter", "CHAPTER"), never in lower
# case: "chapter one was long" is a sentence. What follows the number must be
# set off by punctuation, or be in capitals, to be a title.
_KEYWORD = "|".join(re.escape(form) for word in _KEYWORDS for form in (word.title(), word.upper()))
_NUMBERED = re.compile(
    rf"(?:{_KEYWORD}) {_NUMBER}\.?(?:(?: ?[.:—–-]| -) ?\S.*|[^a-z]*)",
)
_STANDALONE = re.compile(
    rf"(?:{_ROMAN})\.?|(?:PROLOGUE|Prologue|EPILOGUE|Epilogue)\.?(?: ?[.:—–-] ?\S.*)?"
)
# A roman numeral with a title after its full stop ("XIV. The Return"). Single
# letters with a full stop are also initials ("M. Krempe had now commenced…"),
# so the title must be capitalised as titles are.
_ROMAN_TITLED = re.compile(rf"(?:{_ROMAN})\. (\S.*)")
# Short words may stay lower case in a title ("The Man who Knew Too Much").
_SMALL_WORD = 3
_MAX_HEADING_CHARS = 100
_MAX_SUBTITLE_LINES = 2
_MAX_SUBTITLE_CHARS = 60
# Three headings in a row are a list, most likely a table of contents.
_TOC_RUN = 3


def heading_title(lines: Sequence[str]) -> str | None:
    """Return the heading a plain-text paragraph is, or ``None`` if it is body text.

    Args:
        lines: The paragraph's non-blank lines, each stripped.

    A heading may carry its title on up to two short lines of its own
    (``CHAPTER I.`` / ``Down the Rabbit-Hole``); the title is then one line.
    """
    if not lines or len(lines) > 1 + _MAX_SUBTITLE_LINES:
        return None
    first = clean(lines[0])
    if not is_heading(first):
        return None
    rest = [clean(line) for line in lines[1:]]
    # A run of heading lines is a table of contents, not a heading.
    if any(len(line) > _MAX_SUBTITLE_CHARS or is_heading(line) for line in rest):
        return None
    title = " ".join([first, *rest])
    return title if len(title) <= _MAX_HEADING_CHARS else None


def is_heading(line: str) -> bool:
    """Return whether one normalised line, on its own, reads as a chapter heading."""
    if len(line) > _MAX_HEADING_CHARS:
        return False
    if _NUMBERED.fullmatch(line) or _STANDALONE.fullmatch(line):
        return True
    titled = _ROMAN_TITLED.fullmatch(line)
    return titled is not None and all(
        len(word) <= _SMALL_WORD or not word[0].islower() for word in titled.group(1).split()
    )


def chapter_starts(blocks: Sequence[Block], max_level: int) -> list[tuple[int, str]]:
    """Choose which headings start chapters.

    Args:
        blocks: The document's paragraphs; headings have ``1 <= level``.
        max_level: Deepest heading level that may start a chapter.

    Returns:
        ``(block index, title)`` for each chapter, in order.
    """

    def is_heading(paragraph: Block) -> bool:
        return 1 <= paragraph.level <= max_level

    remaining = Counter(_key(b.text) for b in blocks if is_heading(b))
    starts: list[tuple[int, str]] = []
    index = 0
    while index < len(blocks):
        if not is_heading(blocks[index]):
            index += 1
            continue
        run_start = index
        while index < len(blocks) and is_heading(blocks[index]):
            remaining[_key(blocks[index].text)] -= 1
            index += 1
        if index == len(blocks):
            break  # headings at the very end have no body
        last = blocks[index - 1]
        is_contents = index - run_start >= _TOC_RUN and remaining[_key(last.text)] > 0
        if not is_contents:
            starts.append((index - 1, last.text))
    return starts


def _key(title: str) -> str:
    return title.casefold().rstrip(".:;,")
