"""Property: through the real proxy, bytes outside the replaced literals never change.

Hypothesis writes request bodies for the three endpoints with realistic,
compressible tool outputs (record arrays, build logs, grep output) and
odd formatting everywhere else; each goes through the production proxy to
the recording upstream, and every byte between, before and after the
live-zone literals must be identical (SHA-256 per gap).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest_twisted
from e2e_support import lit, post, replaced_texts
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.threads import blockingCallFromThread, deferToThread

WHITESPACE = st.sampled_from([b"", b" ", b"\n  ", b"\t", b" \r\n "])
NUMBERS = st.sampled_from([b"1.0", b"1e400", b"-0", b"1.50E+3", b"12345678901234567890123", b"null", b"true"])
ESCAPED = st.sampled_from([b'"caf\\u00e9"', b'"\\ud83d\\ude00"', b'"a\\/b"', b'"tab\\tq\\"uote"', b'"plain"'])


@st.composite
def tool_outputs(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["rows", "log", "grep"]))
    count = draw(st.integers(min_value=60, max_value=400))
    bad = draw(st.sets(st.integers(min_value=0, max_value=count - 1), max_size=4))
    if kind == "rows":
        rows = [{"id": i, "name": f"item-{i % 23}", "ok": i not in bad, "ms": (i * 37) % 101} for i in range(count)]
        return json.dumps(rows, indent=draw(st.sampled_from([None, 1, 2])))
    if kind == "log":
        lines = [
            f"ERROR step {i}: exit status 2" if i in bad else f"INFO step {i % 9} compiled ok" for i in range(count)
        ]
        return "\n".join(lines)
    return "\n".join(f"src/pkg/mod_{i % 17}.py:{i + 1}:    call_later({i}, fn)" for i in range(count))


@dataclass(frozen=True)
class Case:
    """A request body and its live-zone literals, in body order."""

    path: str
    body: bytes
    literals: list[bytes]

    def __repr__(self) -> str:
        return f"Case({self.path!r}, body={self.body[:200]!r}..., {len(self.body)} bytes)"


@st.composite
def bodies(draw: st.DrawFn) -> Case:

    def ws() -> bytes:
        return draw(WHITESPACE)

    extra = b"".join(
        b"," + ws() + b'"x_' + str(i).encode() + b'"' + ws() + b":" + draw(st.one_of(NUMBERS, ESCAPED))
        for i in range(draw(st.integers(min_value=0, max_value=3)))
    )
    output = lit(draw(tool_outputs()))
    question = lit(draw(st.sampled_from(["Which items failed?", "Where is call_later used?", "Summarise."])))
    endpoint = draw(st.sampled_from(["chat", "anthropic", "responses"]))
    if endpoint == "chat":
        messages = (
            b"["
            + ws()
            + b'{"role":"user","content":'
            + question
            + b"},"
            + ws()
            + b'{"role":"tool","tool_call_id":"c1",'
            + ws()
            + b'"content":'
            + output
            + b"}"
            + ws()
            + b"]"
        )
        body = b'{"model":"gpt-4o"' + extra + b"," + ws() + b'"messages":' + ws() + messages + ws() + b"}"
        return Case("/v1/chat/completions", body, [question, output])
    if endpoint == "anthropic":
        content = b'[{"type":"tool_result","tool_use_id":"t1","content":' + output + b"}," + ws()
        content += b'{"type":"text","text":' + question + b"}]"
        messages = b'[{"role":"user",' + ws() + b'"content":' + content + b"}]"
        body = (
            b'{"model":"claude-sonnet-4-6","max_tokens":' + ws() + b"1024" + extra + b',"messages":' + messages + b"}"
        )
        return Case("/v1/messages", body, [output, question])
    items = (
        b'[{"type":"function_call_output","call_id":"c1","output":'
        + output
        + b"},"
        + ws()
        + b'{"role":"user","content":[{"type":"input_text","text":'
        + question
        + b"}]}]"
    )
    body = b'{"input":' + ws() + items + extra + b',"model":"gpt-4.1"}'
    return Case("/v1/responses", body, [output, question])


@pytest_twisted.ensureDeferred
async def test_bytes_outside_replaced_literals_identical(live, upstream) -> None:
    """Hypothesis drives the examples from a worker thread; each request runs on the reactor."""

    @settings(max_examples=30, deadline=None, database=None)
    @given(case=bodies())
    def through_the_proxy(case: Case) -> None:
        blockingCallFromThread(reactor, lambda: ensureDeferred(post(live, case.path, case.body)))
        replaced_texts(case.body, upstream.last.body, case.literals)
        assert len(upstream.last.body) < len(case.body)

    await deferToThread(through_the_proxy)
