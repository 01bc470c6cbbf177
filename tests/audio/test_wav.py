"""The WAV header matches what readers expect."""

from __future__ import annotations

import io
import wave

import pytest

from ttsbatch.audio.wav import HEADER_SIZE, wav_header
from ttsbatch.errors import JobError


def test_header_and_samples_read_back_with_the_standard_library() -> None:
    samples = b"".join(i.to_bytes(2, "little", signed=True) for i in range(-50, 50))
    data = wav_header(len(samples) // 2, 22050) + samples
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getframerate() == 22050
        assert reader.getnchannels() == 1
        assert reader.getsampwidth() == 2
        assert reader.getnframes() == 100
        assert reader.readframes(100) == samples
    assert len(wav_header(0, 8000)) == HEADER_SIZE


def test_audio_beyond_four_gibibytes_asks_for_raw_pcm() -> None:
    with pytest.raises(JobError, match="--format pcm"):
        wav_header(3 * 2**30, 24000)
