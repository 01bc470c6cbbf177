"""Parsing the XML of an EPUB package (container, OPF, NCX) with defusedxml.

defusedxml refuses entity declarations and external references instead of
expanding or fetching them; its refusals become :class:`UnsafeInputError`,
and malformed XML an :class:`InputError`, each naming the file and member.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

# defusedxml ships no type information and its stubs (types-defusedxml) are not
# a declared dependency; "unused-ignore" keeps mypy quiet if they get installed.
from defusedxml import DefusedXmlException  # type: ignore[import-untyped, unused-ignore]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped, unused-ignore]

from ttsbatch.errors import InputError, UnsafeInputError


def parse_xml(data: bytes, member: str, source_name: str) -> Element:
    """Parse ``data``, the bytes of archive member ``member``.

    Raises:
        UnsafeInputError: When it declares entities or references external ones.
        InputError: When it is not well-formed XML.
    """
    try:
        root: Element = fromstring(
            data, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as error:
        raise UnsafeInputError(
            f"{source_name}: refused: {member} declares XML entities or external references "
            f"({type(error).__name__}), which can read local files or expand without bound"
        ) from None
    except ParseError as error:
        raise InputError(
            f"{source_name}: not a valid EPUB ({member} is not well-formed XML: {error})"
        ) from None
    return root


def local_name(element: Element) -> str:
    """Return an element's tag without its namespace."""
    return element.tag.rpartition("}")[2]
