"""Server-sent-event framing with every variant a client must tolerate (pure)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ttsbatch.dev.fakeprovider.config import FakeProviderConfig


def encode_json(payload: dict[str, Any]) -> str:
    """Return ``payload`` as compact JSON text."""
    return json.dumps(payload, separators=(",", ":"))


def sse_event(data: str, config: FakeProviderConfig, *, number: int = 0, kind: str = "") -> bytes:
    """Frame ``data`` as one event: optional comment and fields, ``data:`` lines, blank line.

    With ``config.multiline`` a JSON payload is spread over several ``data:``
    lines (cut after commas between members), which a client joins with ``\\n``.
    """
    nl = config.newline.chars
    prefix = "data: " if config.data_space else "data:"
    lines: list[str] = []
    if config.keepalive:
        lines.append(": keep-alive")
    if config.extra_fields:
        if number == 0:
            lines.append("retry: 3000")
        lines.append(f"event: {kind or 'message'}")
        lines.append(f"id: {number}")
    parts = data.replace(',"', ',\n"').split("\n") if config.multiline else [data]
    lines.extend(prefix + part for part in parts)
    return (nl.join(lines) + nl + nl).encode()


def pieces(event: bytes, split: int) -> Iterator[bytes]:
    """Cut ``event`` into the writes that send it.

    ``split <= 0`` sends it whole. Otherwise the first 3 bytes, then pieces of
    at most ``split`` bytes, then the last byte, go separately: a client sees
    ``data:`` cut in two and a ``\\r\\n`` cut between its two characters.
    """
    if split <= 0 or len(event) <= 4:
        yield event
        return
    yield event[:3]
    body = event[3:-1]
    for i in range(0, len(body), split):
        yield body[i : i + split]
    yield event[-1:]


def cut(data: bytes, size: int, *, odd: bool) -> list[bytes]:
    """Cut PCM into deltas of ``size`` bytes (odd lengths when ``odd``)."""
    step = max(1, size | 1 if odd else size)
    return [data[i : i + step] for i in range(0, len(data), step)]
