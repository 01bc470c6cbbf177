"""The media type of each file the API serves, told by its name's suffix.

A browser plays or shows a file by its ``Content-Type`` (``<audio>`` refuses
``application/octet-stream`` in some browsers), so each output kind has its
registered type: RFC 4337 (audio/mp4, M4B included), RFC 3003 (audio/mpeg),
RFC 7845 (audio/ogg for Opus), RFC 9639 (audio/flac), EPUB 3's
application/epub+zip, WebVTT's text/vtt. WAV is audio/wav, the name browsers
use (RFC 2361 registered audio/vnd.wave); SubRip has no registered type and
players take application/x-subrip.
"""

from __future__ import annotations

from typing import Final

#: Media type by the suffix after the last dot.
MEDIA_TYPES: Final[dict[str, str]] = {
    "m4b": "audio/mp4",
    "m4a": "audio/mp4",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "epub": "application/epub+zip",
    "vtt": "text/vtt; charset=utf-8",
    "srt": "application/x-subrip",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
}

#: What a file of any other kind (raw PCM, say) is served as.
DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"


def media_type(name: str) -> str:
    """Return the media type of a file called ``name`` (by its suffix)."""
    _, dot, suffix = name.rpartition(".")
    return MEDIA_TYPES.get(suffix.lower(), DEFAULT_MEDIA_TYPE) if dot else DEFAULT_MEDIA_TYPE
