"""The nesting check that runs before a body is parsed, against the depth of what the body
parses to: strings full of brackets, quotes and backslashes do not count, and the count
stops one past the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest import BodyError, decode_json, json_depth

TRICKY = st.text(alphabet=st.sampled_from(list('[]{}"\\/ab\u00e9\u4e2d\n')), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=40,
)


def depth_of(value: Any) -> int:
    """The oracle: how deep the parsed value's arrays and objects nest."""
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(VALUES, st.booleans(), st.integers(0, 8))
def test_depth_is_that_of_the_parsed_value(value: Any, ascii_only: bool, limit: int) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert json_depth(body, 10**6) == depth_of(value)
    assert json_depth(body, limit) == min(depth_of(value), limit + 1)


def test_escapes_that_end_in_a_backslash_do_not_hide_the_closing_quote() -> None:
    body = json.dumps({"a": "\\", "b": ['\\\\\\"', {"c": "]}]}"}]}).encode()
    assert json_depth(body, 64) == 3


@settings(max_examples=400, deadline=None)
@given(VALUES, st.integers(0, 8))
def test_a_body_is_refused_exactly_when_it_nests_past_the_limit(value: Any, limit: int) -> None:
    # decode_json skips the scan when the brackets alone cannot reach the limit.
    body = json.dumps(value, ensure_ascii=False).encode()
    if depth_of(value) > limit:
        with pytest.raises(BodyError, match="nests deeper than"):
            decode_json(body, limit)
    else:
        assert decode_json(body, limit) == value
