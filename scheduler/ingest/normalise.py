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


def clean_with_positions(text: str) -> tuple[str, list[int]]:
    """Return :func:`clean` of ``text`` and, for each of its characters, where it was in ``text``.

    A collapsed run of whitespace is the position of its first character; a
    character NFC composed from several, that of the first of them.
    """
    kept = [(n, char) for n, char in enumerate(text) if not _INVISIBLE.match(char)]
    if not unicodedata.is_normalized("NFC", "".join(char for _, char in kept)):
        kept = _composed(kept)
    out: list[str] = []
    positions: list[int] = []
    space: int | None = None
    for n, char in kept:
        if char.isspace():
            if out and space is None:
                space = n
            continue
        if space is not None:
            out.append(" ")
            positions.append(space)
            space = None
        out.append(char)
        positions.append(n)
    return "".join(out), positions


def _composed(kept: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """NFC cluster by cluster (a starter and the marks after it), each at its first position."""
    clusters: list[tuple[int, str]] = []
    for n, char in kept:
        if clusters and unicodedata.combining(char):
            clusters[-1] = (clusters[-1][0], clusters[-1][1] + char)
        else:
            clusters.append((n, char))
    return [(n, char) for n, cluster in clusters for char in unicodedata.normalize("NFC", cluster)]


def block(text: str, level: int = 0) -> Block | None:
    """Return ``text`` as a normalised block, or ``None`` when nothing in it is speakable."""
    text = clean(text)
    if not _SPEAKABLE.search(text):
        return None
    return Block(text, level)
