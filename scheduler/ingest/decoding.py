"""Decoding of input bytes into text, without silently mangling it.

The order is deliberate. A byte order mark is believed first. Strict UTF-8 comes
next: legacy 8-bit text almost never happens to be valid UTF-8, so a success is
trustworthy. Windows-1252 follows when the bytes are plausible for it (no
control bytes, mostly ASCII), because that is what old English-language files
such as Project Gutenberg's are; charset-normalizer is only asked after that, as
on mostly-ASCII text with a few curly quotes it tends to answer cp1250 or
another neighbour whose accented letters differ. UTF-8 with a few stray bytes
(a bad copy, a truncated file) stays UTF-8, minus those bytes, and a few stray
NUL bytes (converted or scraped text) are dropped. Whatever is
decoded must then look like text: binary data is refused rather than spoken as
noise.
"""

from __future__ import annotations

import codecs
import re
from itertools import islice

from charset_normalizer import from_bytes

from ttsbatch.errors import InputError

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    # UTF-32 before UTF-16: the UTF-32-LE mark begins with the UTF-16-LE one.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Control characters that never occur in text (tab, newlines, form feed and
# DOS's end-of-file mark do).
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x19\x1b-\x1f\x7f]")
_CONTROL_BYTES = re.compile(b"[\x00-\x08\x0b\x0e-\x19\x1b-\x1f\x7f]")
_HIGH_BYTES = bytes(range(0x80, 0x100))
_UTF8_SEQUENCES = re.compile(
    b"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
# How many well-formed multi-byte sequences make a file UTF-8 despite one bad byte.
_MIN_VALID_PER_INVALID = 20
# More than this share of non-ASCII bytes is more likely Cyrillic, Greek or
# a CJK encoding than Western text in Windows-1252.
_MAX_CP1252_HIGH_SHARE = 0.2
# Text with more than one NUL byte in this many is binary.
_MAX_NUL_SHARE = 100
# WHATWG: these labels mean windows-1252 on the web (keys are codecs' names).
_WEB_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252"}
_DECLARED = re.compile(
    rb"""(?:<meta[^>]{0,200}?charset|<\?xml[^>]{0,100}?encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""",
    re.IGNORECASE,
)


def decode_text(data: bytes, source_name: str) -> str:
    """Decode the bytes of a text file, detecting its encoding.

    Raises:
        InputError: When the bytes are not text in any encoding we can trust.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _checked(_strict(data, encoding, source_name), source_name)
    # Before UTF-8: ASCII in UTF-16 without a mark is valid UTF-8, NULs and all.
    if b"\x00" in data:
        return _with_nuls(data, source_name)
    try:
        return _checked(data.decode("utf-8"), source_name)
    except UnicodeDecodeError:
        pass
    damaged = _damaged_utf8(data)
    if damaged is not None:
        return _checked(damaged, source_name)
    if _plausible_cp1252(data):
        return _checked(data.decode("cp1252"), source_name)
    best = from_bytes(data).best()
    if best is None:
        raise _not_text(source_name)
    return _checked(str(best), source_name)


def decode_markup(data: bytes, source_name: str) -> str:
    """Decode HTML or XHTML bytes, honouring a byte order mark or a declared charset."""
    if any(data.startswith(bom) for bom, _ in _BOMS):
        return decode_text(data, source_name)
    declared = _DECLARED.search(data[:4096])
    if declared:
        label = declared.group(1).decode("ascii").lower()
        try:
            encoding = _WEB_ALIASES.get(codecs.lookup(label).name, label)
            return _checked(data.decode(encoding), source_name)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration is common: detect instead of trusting it
    return decode_text(data, source_name)


def _strict(data: bytes, encoding: str, source_name: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputError(
            f"{source_name}: not text (it starts with a {encoding.upper()} byte order mark "
            f"but byte {error.start} is invalid); save it as UTF-8 and try again"
        ) from None


def _with_nuls(data: bytes, source_name: str) -> str:
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        return _checked(utf16, source_name)
    # A few stray NULs (a converted or scraped text) are dropped; many are binary.
    # Compressed binary data holds few NULs but many other control bytes,
    # which _checked() refuses once the NULs are gone.
    if data.count(0) * _MAX_NUL_SHARE > len(data):
        raise InputError(
            f"{source_name}: not text (it contains NUL bytes, so it looks like a binary "
            "file); give a .txt, .md, .html or .epub file"
        )
    return decode_text(data.replace(b"\x00", b""), source_name)


def _utf16_without_bom(data: bytes) -> str | None:
    # ASCII in UTF-16 puts a NUL beside every character, all on one side.
    even, odd = data[0::2].count(0), data[1::2].count(0)
    if len(data) % 2 == 0 and max(even, odd) >= len(data) // 4 and min(even, odd) == 0:
        try:
            return data.decode("utf-16-le" if odd else "utf-16-be")
        except UnicodeDecodeError:
            pass
    return None


def _max_stray(length: int) -> int:
    """How many control characters a text of ``length`` may hold by accident."""
    return max(8, length // 1000)


def _damaged_utf8(data: bytes) -> str | None:
    """Return UTF-8 text with a few stray bytes dropped, if that is what ``data`` is.

    Read as Windows-1252, a UTF-8 book with one bad byte would turn every
    curly quote into "â€œ"; dropping the bad byte mangles far less.
    """
    valid = sum(1 for _ in _UTF8_SEQUENCES.finditer(data))
    if not valid:
        return None
    text = data.decode("utf-8", errors="replace")
    if valid < _MIN_VALID_PER_INVALID * text.count("\ufffd"):
        return None
    return text.replace("\ufffd", "")


def _plausible_cp1252(data: bytes) -> bool:
    if _CONTROL_BYTES.search(data):
        return False
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    if high > len(data) * _MAX_CP1252_HIGH_SHARE:
        return False
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _checked(text: str, source_name: str) -> str:
    """Return ``text`` unless it holds control characters that text never has."""
    limit = _max_stray(len(text))
    if sum(1 for _ in islice(_CONTROL.finditer(text), limit + 1)) > limit:
        raise InputError(
            f"{source_name}: not text (it is full of control characters, so it looks "
            "like a binary file); give a .txt, .md, .html or .epub file"
        )
    return text


def _not_text(source_name: str) -> InputError:
    return InputError(
        f"{source_name}: not text (its bytes are not UTF-8, UTF-16 or a known 8-bit "
        "encoding); save it as UTF-8 and try again"
    )
