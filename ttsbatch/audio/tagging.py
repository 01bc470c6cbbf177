"""Cover images and Vorbis chapter comments in encoded audio, written with mutagen.

Chapters in FLAC and Ogg Opus are Vorbis comments, ``CHAPTER001=HH:MM:SS.mmm``
and ``CHAPTER001NAME=title`` (the Vorbis chapter extension, which FFmpeg,
foobar2000 and Audiobookshelf read); they are written here because FFmpeg's
FLAC muxer writes none and its Ogg muxer rounds their seconds up.

Covers: MP4: the ``covr`` atom; MP3: an ID3v2 ``APIC`` frame (front cover); FLAC: a
``PICTURE`` block; Ogg Opus: a ``METADATA_BLOCK_PICTURE`` comment (the FLAC
picture, base64-encoded, as the Vorbis comment convention has it). FFmpeg and
players show each as the file's attached picture.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from mutagen._vorbis import VCommentDict
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, PictureType
from mutagen.mp4 import MP4, MP4Cover, MP4Tags
from mutagen.oggopus import OggOpus

from ttsbatch.models import AudioFormat, Cover


def _picture(cover: Cover) -> Picture:
    picture = Picture()
    picture.type = PictureType.COVER_FRONT
    picture.mime = cover.media_type
    picture.desc = "Cover"
    picture.data = cover.data
    return picture


def chapter_comments(marks: Sequence[tuple[str, float]]) -> dict[str, str]:
    """Return the Vorbis chapter comments for ``(title, start in seconds)`` marks."""
    comments: dict[str, str] = {}
    for number, (title, start) in enumerate(marks, 1):
        millis = round(start * 1000)
        hours, rest = divmod(millis, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        comments[f"CHAPTER{number:03d}"] = f"{hours:02d}:{minutes:02d}:{rest / 1000:06.3f}"
        comments[f"CHAPTER{number:03d}NAME"] = title
    return comments


def add_chapters(path: Path, fmt: AudioFormat, marks: Sequence[tuple[str, float]]) -> None:
    """Write ``marks`` as Vorbis chapter comments into the FLAC or Ogg Opus file ``path``."""
    audio = FLAC(path) if fmt is AudioFormat.FLAC else OggOpus(path)
    if audio.tags is None:
        audio.add_tags()
    tags = cast("VCommentDict", audio.tags)
    for key, value in chapter_comments(marks).items():
        tags[key] = [value]
    audio.save()


def add_cover(path: Path, fmt: AudioFormat, cover: Cover) -> None:
    """Attach ``cover`` to the encoded file ``path`` as its front cover."""
    if fmt is AudioFormat.M4B:
        mp4 = MP4(path)
        kind = MP4Cover.FORMAT_PNG if cover.media_type == "image/png" else MP4Cover.FORMAT_JPEG
        if mp4.tags is None:
            mp4.add_tags()
        cast("MP4Tags", mp4.tags)["covr"] = [MP4Cover(cover.data, imageformat=kind)]
        mp4.save()
    elif fmt is AudioFormat.MP3:
        id3 = ID3(path)
        id3.add(
            APIC(
                encoding=3,
                mime=cover.media_type,
                type=PictureType.COVER_FRONT,
                desc="Cover",
                data=cover.data,
            )
        )
        id3.save(path)
    elif fmt is AudioFormat.FLAC:
        flac = FLAC(path)
        flac.add_picture(_picture(cover))
        flac.save()
    elif fmt is AudioFormat.OPUS:
        opus = OggOpus(path)
        cast("VCommentDict", opus.tags)["METADATA_BLOCK_PICTURE"] = [
            base64.b64encode(_picture(cover).write()).decode("ascii")
        ]
        opus.save()
    else:
        raise ValueError(f"{fmt.value} audio carries no cover")
