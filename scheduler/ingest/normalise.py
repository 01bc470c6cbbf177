"""Normalisation of extracted text into the paragraphs a document is made of.

Every reader (plain text, Markdown, HTML, EPUB) produces :class:`Block` values
through :func:`block`, so the rules of the text contract live here once: Unicode
NFC, no invisible characters, whitespace runs collapsed to one space, and no
paragraph without anything a voice could say.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Soft hyphens, zero-width spaces, word joiners, stray BOMs and control
# characters carry no sound; left in, they split words for the engine. ZWJ and
# ZWNJ are kept: they change how Persian, Indic and emoji text is read.
_INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
# A letter or digit in any script; a paragraph without one ("* * *", "----")
# is typography, not speech.
_SPEAKABLE = re.compile(r"[^\W_]")


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph of normalised text.

    Attributes:
        text: The paragraph, already normalised (see :func:`clean`).
        level: Heading level (1 is the top); 0 for body text.
    """

    text: str
    level: int = 0


def clean(text: str) -> str:
    """Return ``text`` as one normalised line: NFC, single spaces, no invisibles."""
    text = _INVISIBLE.sub("", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    # str.split() splits on exactly the characters str.isspace() accepts,
    # Unicode spaces included, and is much faster than a regex substitution.
    return " ".join(text.split())


def block(text: str, level: int = 0) -> Block | None:
    """Return ``text`` as a normalised block, or ``None`` when nothing in it is speakable."""
    text = clean(text)
    if not _SPEAKABLE.search(text):
        return None
    return Block(text, level)
