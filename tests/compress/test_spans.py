"""Strict parsing and exact string-literal spans in the original bytes."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_twisted.compress.spans import (
    ParsedBody,
    ParseFailure,
    SpanNotFound,
    locate_strings,
    parse_body,
)


def spans_of(body: bytes, targets):
    parsed = parse_body(body)
    assert isinstance(parsed, ParsedBody)
    return {path: body[s.start : s.end] for path, s in locate_strings(body, parsed.offset, targets).items()}


def test_finds_literals_among_escapes_whitespace_and_odd_numbers():
    body = (
        b'\r\n {"a\\"]}" : [1e400, -0, 1.0, "x]}\\"{["],\n'
        b'  "messages" :[ {"role":"tool", "content" : "hello \\"w\\u00f6rld\\"\\n"},'
        b'\t{"content":[{"type":"text","text":"t\xc3\xa9"}]} ] } '
    )
    found = spans_of(body, {("messages", 0, "content"): 'hello "wörld"\n', ("messages", 1, "content", 0, "text"): "té"})
    assert found == {
        ("messages", 0, "content"): b'"hello \\"w\\u00f6rld\\"\\n"',
        ("messages", 1, "content", 0, "text"): b'"t\xc3\xa9"',
    }


def test_escaped_key_names_match_their_decoded_form():
    body = b'{"m\\u0065ssages": [{"content": "x"}]}'
    assert spans_of(body, {("messages", 0, "content"): "x"}) == {("messages", 0, "content"): b'"x"'}


def test_bom_is_tolerated_and_offsets_are_in_the_original_bytes():
    body = b'\xef\xbb\xbf{"a": "b"}'
    parsed = parse_body(body)
    assert isinstance(parsed, ParsedBody) and parsed.offset == 3
    assert spans_of(body, {("a",): "b"}) == {("a",): b'"b"'}


@pytest.mark.parametrize(
    "body",
    [
        b'{"messages": [{"content": "a"}], "messages": [{"content": "a"}]}',
        b'{"messages": [{"content": "a", "content": "a"}]}',
        b'{"messages": [{"role": "user", "content": "a", "role": "tool"}]}',
        b'{"messages": [{"content": "a"}], "m\\u0065ssages": [{"content": "a"}]}',
    ],
)
def test_duplicate_keys_along_a_path_are_ambiguous(body):
    with pytest.raises(SpanNotFound):
        spans_of(body, {("messages", 0, "content"): "a"})


def test_duplicate_keys_elsewhere_are_fine():
    body = b'{"meta": {"k": 1, "k": 2}, "messages": [{"x": {"y": 1, "y": 1}, "content": "a"}]}'
    assert spans_of(body, {("messages", 0, "content"): "a"}) == {("messages", 0, "content"): b'"a"'}


@pytest.mark.parametrize(
    ("body", "targets"),
    [
        (b'{"a": 1}', {("a",): "1"}),
        (b'{"a": ["x"]}', {("a",): "x"}),
        (b'{"a": "x"}', {("b",): "x"}),
        (b'{"a": ["x"]}', {("a", 1): "x"}),
        (b'{"a": "x"}', {("a",): "y"}),
        (b'{"a": ["x"]}', {("a", "0"): "x"}),
        (b'{"a": {"0": "x"}}', {("a", 0): "x"}),
        (b'{"a": {"b": "x"}}', {("a",): "x", ("a", "b"): "x"}),
        (b'"x"', {(): "x"}),
    ],
)
def test_wrong_shape_or_value_is_not_found(body, targets):
    with pytest.raises(SpanNotFound):
        spans_of(body, targets)


def test_lone_surrogate_parses_through_the_fallback_and_is_located():
    body = b'{"a": "x\\ud800y", "n": 1e400}'
    assert spans_of(body, {("a",): "x\ud800y"}) == {("a",): b'"x\\ud800y"'}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "too_deep"),
        (b'{"a": "\xff"}', "not_json"),
        (b'{"a": "\xed\xa0\x80"}', "not_json"),
        (b'{"a": NaN}', "not_json"),
        (b'{"a": Infinity}', "not_json"),
        (b'{"a": 1', "not_json"),
        (b"", "not_json"),
        (b"\xff\xfe{\x00}\x00", "not_json"),
        (b'{"a": 1' + b"1" * 5000 + b"}", "not_json"),
    ],
)
def test_parse_failures(body, reason):
    assert parse_body(body) == ParseFailure(reason)


def test_deep_nesting_elsewhere_does_not_recurse_in_the_scanner():
    deep = b"[" * 900 + b"]" * 900
    body = b'{"x": ' + deep + b', "a": "t"}'
    assert spans_of(body, {("a",): "t"}) == {("a",): b'"t"'}


def test_literal_ending_in_an_escaped_backslash():
    body = b'{"k\\\\": "x\\\\", "a": ["\\\\\\"", {"b": "\\\\"}], "c": "y\\\\"}'
    assert spans_of(body, {("c",): "y\\", ("a", 1, "b"): "\\"}) == {("c",): b'"y\\\\"', ("a", 1, "b"): b'"\\\\"'}


@settings(max_examples=300, deadline=None)
@given(
    target=st.text(alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from('"\\/\n')),
    skipped=st.text(alphabet=st.sampled_from('"\\ab{}[]\n')),
    spelling=st.sampled_from(["orjson", "json.dumps", "escaped slashes"]),
)
def test_any_spelling_of_any_text_is_located_exactly(target, skipped, spelling):
    """Whichever spelling the client used (orjson's, json.dumps's, or one neither produces, with
    escaped quotes and backslashes next to the target), the span is the target literal and nothing else."""
    dumps = {
        "orjson": orjson.dumps,
        "json.dumps": lambda value: json.dumps(value).encode(),
        "escaped slashes": lambda value: orjson.dumps(value).replace(b"/", b"\\/"),
    }[spelling]
    body = b'{"skip": ' + dumps(skipped) + b', "t": ' + dumps(target) + b', "after": ' + dumps(skipped) + b"}"
    parsed = parse_body(body)
    [span] = locate_strings(body, parsed.offset, {("t",): target}).values()
    assert body[span.start : span.end] == dumps(target)
