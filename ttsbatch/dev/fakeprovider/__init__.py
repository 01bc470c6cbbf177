"""An imitation speech provider for tests, benchmarks and ``ttsbatch dev``.

It speaks the protocols of ``docs/tts-protocol.md`` over real HTTP - Together
(every stream shape and timestamp mode), OpenAI-compatible raw PCM and SSE, and
Kokoro-FastAPI's captioned speech - with deterministic audio derived from the
text (:func:`expected_audio`) and seeded fault injection.

Per request, any :class:`FakeProviderConfig` field can be overridden with a
header ``x-fake-<field>`` (``x-fake-shape: b64``, ``x-fake-fault: stall``).

Example::

    with run_in_thread(FakeProviderConfig(fault_rate=0.3, seed=7)) as provider:
        ...  # point TOGETHER_BASE_URL at provider.base_url
        provider.state.log()
"""

from __future__ import annotations

from ttsbatch.dev.fakeprovider.app import LogEntry, ProviderState, create_app, state_of
from ttsbatch.dev.fakeprovider.audio import expected_audio
from ttsbatch.dev.fakeprovider.config import (
    RETRYABLE_FAULTS,
    FakeProviderConfig,
    Fault,
    Newline,
    Shape,
    StampMode,
    StampOrder,
    StampPlace,
    parse_options,
)
from ttsbatch.dev.fakeprovider.server import RunningProvider, main, run_in_thread

__all__ = [
    "RETRYABLE_FAULTS",
    "FakeProviderConfig",
    "Fault",
    "LogEntry",
    "Newline",
    "ProviderState",
    "RunningProvider",
    "Shape",
    "StampMode",
    "StampOrder",
    "StampPlace",
    "create_app",
    "expected_audio",
    "main",
    "parse_options",
    "run_in_thread",
    "state_of",
]
