"""The OpenAPI document, fuzzed: every operation with generated input, against the running
app over HTTP. No answer may be a 5xx, and every answer must match its documented schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from schemas.auth import Role
from streams.clock import ManualClock
from tests.conftest import T0, bearer, issue, served_tiny_city, settings_for

EXAMPLES_PER_OPERATION = 25
# No 5xx, and every answer as documented. Whether schema-valid input is accepted is not
# checked: the API rightly refuses valid-looking events for unknown stations or future times.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:

    settings = settings_for(
        Path(tmp_path_factory.mktemp("fuzz")),
        rate_limit_per_minute=100_000,
        rate_limit_burst=10_000,
    )
    with served_tiny_city(settings, ManualClock(T0)) as server:
        system = server.system
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        yield schema, bearer(issue(system, Role.admin))


def test_no_server_errors_and_documented_answers(
    fuzzed: tuple[schemathesis.BaseSchema, dict[str, str]],
) -> None:
    api_schema, headers = fuzzed
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8, "every documented operation is fuzzed"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
