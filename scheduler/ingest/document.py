"""Assembly of normalised paragraphs and chapter starts into a :class:`Document`.

Offsets are computed here and only here, so the chapter contract holds for every
format: a chapter starts at the first character of its first paragraph and ends
at the end of its last one, just before the blank line that separates it from
the next chapter.
"""

from __future__ import annotations

from collections.abc import Sequence

from ttsbatch.errors import InputError
from ttsbatch.models import Chapter, Document

from .normalise import Block

SEPARATOR = "\n\n"


def build_document(
    blocks: Sequence[Block],
    starts: Sequence[tuple[int, str]],
    *,
    name: str,
    source_name: str,
    sha256: str,
) -> Document:
    """Join blocks into the document text and place its chapters.

    Args:
        blocks: The document's paragraphs, in reading order.
        starts: ``(block index, title)`` of each chapter's first paragraph, in
            increasing block order.
        name: The output base name.
        source_name: The input's file name.
        sha256: Hex SHA-256 of the input's bytes.

    Raises:
        InputError: When there is no paragraph at all.
    """
    if not blocks:
        raise InputError(
            f"{source_name}: no readable text found (only markup, images or boilerplate): "
            "nothing to speak"
        )
    offsets: list[int] = []
    position = 0
    for paragraph in blocks:
        offsets.append(position)
        position += len(paragraph.text) + len(SEPARATOR)
    text = SEPARATOR.join(paragraph.text for paragraph in blocks)
    chapters: list[Chapter] = []
    for number, (index, title) in enumerate(starts):
        following = starts[number + 1][0] if number + 1 < len(starts) else None
        end = len(text) if following is None else offsets[following] - len(SEPARATOR)
        chapters.append(Chapter(index=number, title=title, char_start=offsets[index], char_end=end))
    return Document(
        name=name,
        source_name=source_name,
        source_sha256=sha256,
        text=text,
        chapters=tuple(chapters),
    )
