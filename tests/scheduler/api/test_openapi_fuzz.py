"""schemathesis against the app's own OpenAPI, in process: no 5xx, no answer off its schema.

Bounded: a few examples per operation (the file runs in well under a minute).
Requests carry tenant A's key. The operations are driven from one test with
schemathesis's strategies (its pytest loader does not run on this pytest).
"""

from __future__ import annotations

from collections.abc import Callable

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import AUTH_A

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 40


def test_no_operation_answers_5xx_or_off_its_schema(make_app: Callable[..., FastAPI]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(max_concurrent_jobs=1000))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH_A, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:
            exc.add_note(f"operation: {operation.label}")
            raise
