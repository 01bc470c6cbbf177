"""Words of a chunk's text, and mapping an engine's words onto them.

Engines report words as strings (providers) or as character positions that
sometimes cover two words (espeak). The timeline needs each spoken word's exact
character span in the chunk's text, so both are mapped onto
:func:`word_spans`, the one definition of "a word" in ttsbatch.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# A word: letters/digits, with inner apostrophes, hyphens or dots (don't, co-op, 3.5).
_WORD = re.compile(r"[^\W_]+(?:['\u2019.\-][^\W_]+)*")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Return the ``[start, end)`` character spans of the spoken words of ``text``."""
    return [match.span() for match in _WORD.finditer(text)]


def _fold(word: str) -> str:
    """Normalise a word for comparison: case, accents, punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


def align(
    text: str, reported: Sequence[str], *, lookahead: int = 8
) -> list[tuple[int, int] | None]:
    """Map an engine's reported words, in order, onto spans of ``text``.

    Each reported word is matched to the next word of ``text`` with the same
    folded form, looking at most ``lookahead`` words ahead (engines drop or
    rewrite some words: numbers, symbols). A reported word that folds to
    several text words ("New-York" against "New York") takes them all.

    Returns:
        For each reported word, its ``(char_start, char_end)`` in ``text``, or
        None when it matches nothing there (its time still belongs to the
        chunk, but to no character).
    """
    spans = word_spans(text)
    folded = [_fold(text[start:end]) for start, end in spans]
    result: list[tuple[int, int] | None] = []
    cursor = 0
    for word in reported:
        target = _fold(word)
        found: tuple[int, int] | None = None
        if target:
            for i in range(cursor, min(cursor + lookahead, len(spans))):
                if folded[i] == target:
                    found, cursor = spans[i], i + 1
                    break
                # The engine joined several text words into one.
                joined, j = folded[i], i
                while (
                    len(joined) < len(target) and j + 1 < len(spans) and target.startswith(joined)
                ):
                    j += 1
                    joined += folded[j]
                if joined == target and j > i:
                    found, cursor = (spans[i][0], spans[j][1]), j + 1
                    break
        result.append(found)
    return result
