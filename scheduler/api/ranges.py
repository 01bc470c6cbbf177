"""Serving bytes with HTTP range requests: parsing ``Range``, answering 200, 206 or 416.

A browser seeks in an ``<audio>`` element by asking for a byte range; without
206 answers it cannot seek at all. Only single ranges are served: RFC 9110
section 14.2 lets a server ignore a ``Range`` it does not want to honour (a
multi-range request, another unit, a malformed or invalid one) and answer 200
with the whole body, which is what happens here. A range that starts at or past
the end (or a zero-length suffix) is unsatisfiable: 416 with ``Content-Range:
bytes */<size>`` (section 15.5.17). https://www.rfc-editor.org/rfc/rfc9110#section-14
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Final

from fastapi import Header
from fastapi.responses import JSONResponse
from starlette.responses import Response, StreamingResponse

from scheduler.api.schemas import Problem

#: Bytes handed to the server per write when streaming: memory per response is about this.
BLOCK: Final = 256 * 1024

#: The ``Range`` request header of a route that serves bytes.
RangeHeader = Annotated[
    str | None,
    Header(
        alias="Range",
        description="One byte range (`bytes=0-99`, `bytes=100-`, `bytes=-100`); others get all.",
    ),
]

#: The answers such a route adds to its 200.
RANGED: Final[dict[int | str, dict[str, Any]]] = {
    206: {"description": "The range asked for (`Content-Range` says which)."},
    416: {"model": Problem, "description": "The range starts past the end."},
}

#: At most 19 digits: a byte position fits in 63 bits (more is no range: all is sent).
_SPEC = re.compile(r"^(\d{0,19})-(\d{0,19})$")


class UnsatisfiableRangeError(Exception):
    """Raised when a single byte range lies wholly past the end of the representation."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the single byte range ``header`` asks of ``size`` bytes, as ``(start, end)``.

    ``end`` is exclusive and clipped to ``size``. None means "send it all":
    no header, another unit, several ranges, or a range that is not valid
    (``bytes=5-2``, ``bytes=x-``).

    Raises:
        UnsatisfiableRangeError: the range starts at or past ``size``, or is ``bytes=-0``.
    """
    unit, sep, specs = (header or "").strip().partition("=")
    match = _SPEC.match(specs.strip())
    if not sep or unit.strip().lower() != "bytes" or match is None:
        return None  # no header, another unit, several ranges, no range at all
    first, last = match.group(1), match.group(2)
    if first == "" and (last == "" or size == 0):
        return None  # bytes=-, or a suffix of the empty representation (satisfiable: RFC 9110)
    if first == "":  # bytes=-n: the last n bytes
        suffix = int(last)
        if suffix == 0:
            raise UnsatisfiableRangeError(f"bytes=-{suffix} of {size} bytes")
        return max(size - suffix, 0), size
    start = int(first)
    if last != "" and int(last) < start:
        return None  # last-pos < first-pos: invalid, ignored
    end = size if last == "" else int(last) + 1
    if start >= size:
        raise UnsatisfiableRangeError(f"bytes={start}- of {size} bytes")
    return start, min(end, size)


#: Reads bytes start..end (exclusive) of the representation, in pieces of at most BLOCK.
Reader = Callable[[int, int], Iterator[bytes]]


def ranged_response(
    range_header: str | None,
    size: int,
    read: Reader,
    *,
    media_type: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """Answer a GET of ``size`` bytes that ``read`` streams: 206 for a range, else 200 (or 416).

    Every answer says ``Accept-Ranges: bytes``; the body is streamed, never
    read whole.
    """
    common = {"Accept-Ranges": "bytes", **(headers or {})}
    try:
        wanted = parse_range(range_header, size)
    except UnsatisfiableRangeError as exc:
        body = Problem(
            error="range_not_satisfiable",
            detail=f"the range {exc} is past the end: ask for bytes below {size}",
        )
        return JSONResponse(
            body.model_dump(),
            status_code=416,
            headers={**common, "Content-Range": f"bytes */{size}"},
        )
    if wanted is None:
        common["Content-Length"] = str(size)
        return StreamingResponse(read(0, size), media_type=media_type, headers=common)
    start, end = wanted
    common["Content-Length"] = str(end - start)
    common["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(
        read(start, end), status_code=206, media_type=media_type, headers=common
    )
