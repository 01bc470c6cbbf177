"""Retry hints, error bodies and status classification of provider answers (pure)."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from ttsbatch.errors import (
    AuthenticationError,
    PermanentEngineError,
    QuotaExceededError,
    RateLimitedError,
    RetryableEngineError,
)
from worker.engines.http import (
    ErrorBody,
    Provider,
    classify_event_error,
    classify_status,
    classify_transport,
    normalize_base_url,
    parse_duration,
    parse_error_body,
    retry_after,
)

NOW = 1_800_000_000.0
TOGETHER = Provider("Together", "TOGETHER_API_KEY")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": email.utils.formatdate(NOW + 7, usegmt=True)}, 7.0),
        ({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"x-ratelimit-reset": "0.4"}, 0.4),
        ({"x-ratelimit-reset": str(int(NOW + 12))}, 12.0),
        ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "20ms"}, 0.02),
        ({}, None),
    ],
)
def test_the_suggested_delay_is_read_from_each_kind_of_header(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after(headers, now=NOW) == pytest.approx(expected)


def test_retry_after_ms_wins_over_retry_after_which_wins_over_ratelimit_reset() -> None:
    headers = {"x-ratelimit-reset": "9", "retry-after": "5", "retry-after-ms": "100"}
    assert retry_after(headers, now=NOW) == 0.1
    del headers["retry-after-ms"]
    assert retry_after(headers, now=NOW) == 5.0


def test_unparseable_hints_are_skipped_for_the_next_kind() -> None:
    headers = {"retry-after-ms": "soon", "retry-after": "later", "x-ratelimit-reset": "2"}
    assert retry_after(headers, now=NOW) == 2.0
    assert retry_after({"retry-after": "-3"}, now=NOW) is None


def test_httpx_headers_are_read_case_insensitively() -> None:
    assert retry_after(httpx.Headers({"Retry-After-Ms": "10"}), now=NOW) == 0.01


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("250ms", 0.25), ("1s", 1.0), ("", None), ("5x", None)],
)
def test_go_durations_parse_to_seconds(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://api.together.ai", "https://api.together.ai/v1"),
        ("https://api.together.ai/", "https://api.together.ai/v1"),
        ("https://api.together.xyz/v1", "https://api.together.xyz/v1"),
        ("https://api.together.xyz/v1/", "https://api.together.xyz/v1"),
        ("http://127.0.0.1:8880/api/v1", "http://127.0.0.1:8880/api/v1"),
    ],
)
def test_a_base_url_without_a_path_gets_v1(url: str, normalized: str) -> None:
    assert normalize_base_url(url) == normalized


def test_a_base_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        normalize_base_url("api.together.ai")


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            b'{"error": {"message": "bad voice", "type": "invalid_request_error", "code": "x"}}',
            "application/json",
            ErrorBody("bad voice", "invalid_request_error", "x"),
        ),
        (
            b'{"detail": {"error": "validation_error", "message": "Voice not found", "type": "invalid_request_error"}}',
            "application/json",
            ErrorBody("Voice not found", "invalid_request_error", "validation_error"),
        ),
        (b'{"detail": "Not Found"}', "application/json", ErrorBody("Not Found")),
        (
            b'{"detail": [{"msg": "field required"}, {"msg": "bad speed"}]}',
            "application/json",
            ErrorBody("field required; bad speed"),
        ),
        (b'{"error": "quota gone"}', "application/json", ErrorBody("quota gone")),
        (b"upstream connect error", "text/plain", ErrorBody("upstream connect error")),
        (
            b"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>",
            "text/html",
            ErrorBody("502 Bad Gateway"),
        ),
        (b"<p>Service &amp; stuff   down</p>", "", ErrorBody("Service & stuff down")),
        (b"", "", ErrorBody("(empty body)")),
    ],
)
def test_error_bodies_in_json_text_or_html_yield_the_servers_message(
    body: bytes, content_type: str, expected: ErrorBody
) -> None:
    assert parse_error_body(body, content_type) == expected


def _classify(status: int, body: str = "{}", **headers: str) -> Exception:
    return classify_status(status, headers, body.encode(), TOGETHER)


def test_statuses_are_classified_as_the_protocol_table_says() -> None:
    for status in (401, 403):
        error = _classify(status)
        assert type(error) is AuthenticationError
        assert "TOGETHER_API_KEY" in str(error)
    assert type(_classify(402)) is QuotaExceededError
    for status in (400, 404, 422, 418):
        assert type(_classify(status)) is PermanentEngineError
    assert type(_classify(429)) is RateLimitedError
    for status in (408, 409, 425, 500, 502, 503, 504, 520):
        assert type(_classify(status)) is RetryableEngineError


def test_an_old_style_400_rate_limit_is_a_rate_limit() -> None:
    error = _classify(
        400, '{"error": {"message": "slow", "code": "rate_limit"}}', **{"retry-after": "2"}
    )
    assert type(error) is RateLimitedError
    assert error.retry_after == 2.0


def test_insufficient_quota_429_is_not_retryable() -> None:
    body = '{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}'
    assert type(_classify(429, body)) is QuotaExceededError


def test_a_retryable_status_carries_the_suggested_delay_and_the_status() -> None:
    error = _classify(503, "<html>busy</html>", **{"retry-after-ms": "1500"})
    assert isinstance(error, RetryableEngineError)
    assert error.retry_after == 1.5
    assert error.status_code == 503


def test_a_permanent_error_carries_the_servers_message() -> None:
    body = '{"error": {"message": "Voice \'zed\' not found", "type": "invalid_request_error"}}'
    assert "Voice 'zed' not found" in str(_classify(400, body))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {
                "type": "conversation.item.tts.failed",
                "error": {"message": "x", "type": "server_error"},
            },
            RetryableEngineError,
        ),
        ({"error": {"message": "x", "type": "dynamic_request_limited"}}, RateLimitedError),
        (
            {"type": "error", "error": {"message": "x", "type": "invalid_request_error"}},
            PermanentEngineError,
        ),
        (
            {"type": "error", "error": {"message": "x", "code": "invalid_api_key"}},
            AuthenticationError,
        ),
        ({"type": "error", "message": "bare"}, RetryableEngineError),
    ],
)
def test_error_events_are_classified_like_their_http_counterparts(
    payload: dict[str, object], expected: type[Exception]
) -> None:
    assert type(classify_event_error(payload, TOGETHER)) is expected


def test_transport_failures_are_retryable_and_a_read_timeout_says_the_stream_went_silent() -> None:
    silent = classify_transport(httpx.ReadTimeout("timed out"), TOGETHER)
    assert "silent" in str(silent)
    cut = classify_transport(httpx.RemoteProtocolError("peer closed connection"), TOGETHER)
    assert type(cut) is RetryableEngineError
    assert "peer closed" in str(cut)
