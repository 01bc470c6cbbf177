"""Small real images for covers: a PNG built by hand, a JPEG from PyAV's encoder."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction

import av
import numpy as np


def png() -> bytes:
    """A valid 1x1 PNG."""

    def part(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + part(b"IHDR", header) + part(b"IDAT", pixels) + part(b"IEND", b"")


def jpeg(size: int = 64) -> bytes:
    """A small grey JPEG, made with PyAV's mjpeg encoder."""
    frame = av.VideoFrame.from_ndarray(
        np.full((size, size, 3), 180, dtype=np.uint8), format="rgb24"
    ).reformat(format="yuvj420p")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width = codec.height = size
    codec.pix_fmt = "yuvj420p"
    codec.time_base = Fraction(1, 25)
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])
