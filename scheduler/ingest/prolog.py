"""The prolog of HTML and XHTML documents: XML declaration and DOCTYPE.

lxml's HTML parser refuses a string that still declares its encoding, and it
would read a DOCTYPE's internal subset as body text. Both are cut off before
parsing. An internal subset that declares entities is refused outright: no
book needs one, and it is how XML external-entity and entity-expansion
attacks are written.
"""

from __future__ import annotations

import re

from ttsbatch.errors import UnsafeInputError

_DECLARATION = re.compile(r"\s*<\?xml\b[^>]{0,500}\?>")
_DOCTYPE = re.compile(r"<!DOCTYPE\b", re.IGNORECASE)
_SUBSET_END = re.compile(r"\]\s*>")
_ENTITY = re.compile(r"<!ENTITY\b", re.IGNORECASE)
# The DOCTYPE comes before the root element, so it is looked for near the start.
_PROLOG_CHARS = 4096


def strip_prolog(markup: str, source_name: str) -> str:
    """Return ``markup`` without its XML declaration and DOCTYPE.

    Raises:
        UnsafeInputError: When the DOCTYPE declares entities.
    """
    markup = markup.removeprefix("\ufeff")
    declaration = _DECLARATION.match(markup)
    if declaration:
        markup = markup[declaration.end() :]
    doctype = _DOCTYPE.search(markup, 0, _PROLOG_CHARS)
    if not doctype:
        return markup
    close = markup.find(">", doctype.end())
    bracket = markup.find("[", doctype.end(), close if close >= 0 else len(markup))
    if bracket >= 0:
        subset_end = _SUBSET_END.search(markup, bracket)
        end = subset_end.end() if subset_end else len(markup)
        if _ENTITY.search(markup, bracket, end):
            raise UnsafeInputError(
                f"{source_name}: refused: it declares XML entities, which can read local "
                "files or expand without bound; remove the <!DOCTYPE …[…]> block"
            )
    else:
        end = close + 1 if close >= 0 else len(markup)
    return markup[: doctype.start()] + markup[end:]
