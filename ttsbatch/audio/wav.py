"""The RIFF/WAVE header of a 16-bit mono PCM stream whose length is known upfront."""

from __future__ import annotations

import struct

from ttsbatch.errors import JobError

HEADER_SIZE = 44
_MAX_DATA = 0xFFFFFFFF - 36  # RIFF sizes are 32-bit


def wav_header(
    samples: int, sample_rate: int, *, channels: int = 1, width: int = 2, streamed: bool = False
) -> bytes:
    """Return the 44-byte header of a PCM WAV holding ``samples`` frames.

    A ``streamed`` WAV (served to a player, never a file) past 4 GiB gives the
    largest sizes a WAV can say (RIFF 0xFFFFFFFF), as streaming writers do: players read on.

    Raises:
        JobError: if the audio exceeds the 4 GiB limit of the WAV format (about
            24 hours at 24 kHz) and is not ``streamed``; use the raw PCM format for
            such books.
    """
    data = samples * channels * width
    if data > _MAX_DATA:
        if not streamed:
            raise JobError(f"{data} bytes of audio exceed the 4 GiB WAV limit: use --format pcm")
        data = _MAX_DATA  # RIFF size 0xFFFFFFFF
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        sample_rate,
        sample_rate * channels * width,
        channels * width,
        width * 8,
        b"data",
        data,
    )
