"""Plain text: paragraphs, chapter headings and Gutenberg conventions.

Paragraphs are separated by blank lines and hard-wrapped inside; their lines
are joined with spaces. Files that put each paragraph on one long line and no
blank line between them are read line by line instead.
"""

from __future__ import annotations

import re

from .chapters import chapter_starts, heading_title, is_heading
from .gutenberg import drop_illustrations, drop_italics_marks, strip_boilerplate
from .normalise import Block, block, clean

_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
# Hard-wrapped text keeps lines under 80 characters or so; when most lines are
# longer than this, each line is a paragraph of its own.
_LONG_LINE = 100


def read_text(
    text: str, *, keep_boilerplate: bool = False
) -> tuple[list[Block], list[tuple[int, str]]]:
    """Split plain text into paragraphs and find its chapters.

    Args:
        text: The decoded file.
        keep_boilerplate: Keep the Project Gutenberg licence header and footer.

    Returns:
        The paragraphs, and ``(paragraph index, title)`` for each chapter.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not keep_boilerplate:
        text = strip_boilerplate(text)
    text = drop_italics_marks(drop_illustrations(text))
    paragraphs = [
        [line.strip() for line in paragraph.split("\n") if line and not line.isspace()]
        for paragraph in _BLANK_LINE.split(text)
    ]
    if _one_paragraph_per_line(paragraphs):
        paragraphs = [[line] for lines in paragraphs for line in lines]
    else:
        # A list of headings on consecutive lines is a table of contents; each
        # entry is its own paragraph, so that it is read with a pause.
        paragraphs = [
            part
            for lines in paragraphs
            for part in ([[line] for line in lines] if _all_headings(lines) else [lines])
        ]
    blocks: list[Block] = []
    for lines in paragraphs:
        title = heading_title(lines)
        paragraph = block(title, level=1) if title else block(" ".join(lines))
        if paragraph:
            blocks.append(paragraph)
    return blocks, chapter_starts(blocks, max_level=1)


def _all_headings(lines: list[str]) -> bool:
    return len(lines) > 1 and all(is_heading(clean(line)) for line in lines)


def _one_paragraph_per_line(paragraphs: list[list[str]]) -> bool:
    lines = [line for lines in paragraphs if len(lines) > 1 for line in lines]
    long_lines = sum(1 for line in lines if len(line) > _LONG_LINE)
    return long_lines * 2 >= len(lines) > 0
