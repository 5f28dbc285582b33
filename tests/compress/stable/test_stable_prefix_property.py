"""Prefix stability as a property: turn N+1's upstream history starts with turn N's, byte for byte.

Conversations are generated for all three APIs from tool outputs of every
content type (corpus slices) and arbitrary text, with the model switching
between turns. Turns go alternately to two runners with separate memos (two
proxy processes behind a load balancer) or to a fresh runner (a restart).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_support import corpus_text

from headroom_twisted.compress.blocks.policy import compress_block
from headroom_twisted.compress.memo import RewriteMemo
from headroom_twisted.compress.pipeline import CompressionRunner, InlineWorkers
from headroom_twisted.endpoints import Endpoint

SOURCES = [
    corpus_text(name)
    for name in (
        "pytest_failures.txt",
        "pip_list_json.txt",
        "grep_calllater.txt",
        "git_diff_requests_tests.txt",
        "find_files_1500.txt",
        "source_task_py.txt",
        "make_gcc_errors.txt",
    )
]
MODELS = ("gpt-4o", "gpt-5", "o3", "claude-sonnet-4", "unknown-model")


@st.composite
def tool_outputs(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.text(min_size=0, max_size=2000))
    source = draw(st.sampled_from(SOURCES))
    start = draw(st.integers(0, len(source) // 2))
    return source[start : start + draw(st.integers(200, 20_000))]


turns_strategy = st.lists(
    st.tuples(st.one_of(st.none(), st.text(max_size=80)), tool_outputs(), st.sampled_from(MODELS)),
    min_size=2,
    max_size=5,
)


def chat_items(number: int, question: str | None, output: str) -> list[Any]:
    items: list[Any] = [{"role": "user", "content": question}] if question is not None else []
    call = {"id": f"c{number}", "type": "function", "function": {"name": "sh", "arguments": "{}"}}
    content: Any = output if number % 2 else [{"type": "text", "text": output}]
    return [
        *items,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"c{number}", "content": content},
    ]


def anthropic_items(number: int, question: str | None, output: str) -> list[Any]:
    items: list[Any] = [{"role": "user", "content": question}] if question is not None else []
    use = {"type": "tool_use", "id": f"t{number}", "name": "sh", "input": {}}
    result = {"type": "tool_result", "tool_use_id": f"t{number}", "content": output}
    return [*items, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]


def responses_items(number: int, question: str | None, output: str) -> list[Any]:
    items: list[Any] = []
    if question is not None:
        items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]})
    items.append({"type": "reasoning", "encrypted_content": f"opaque-{number}"})
    items.append({"type": "function_call", "call_id": f"f{number}", "name": "sh", "arguments": "{}"})
    if number % 2:
        items.append({"type": "function_call_output", "call_id": f"f{number}", "output": output})
    else:
        parts = [{"type": "input_text", "text": output}]
        items.append({"type": "custom_tool_call_output", "call_id": f"f{number}", "output": parts})
    return items


APIS = {
    Endpoint.CHAT: ("messages", chat_items),
    Endpoint.ANTHROPIC: ("messages", anthropic_items),
    Endpoint.RESPONSES: ("input", responses_items),
}


def bodies(endpoint: Endpoint, turns: list[tuple[str | None, str, str]]) -> list[bytes]:
    """One body per turn, each resending the whole history; the history array comes last."""
    key, items_for = APIS[endpoint]
    history: list[Any] = [{"role": "user", "content": "Run the diagnostics."}]
    result = []
    for number, (question, output, model) in enumerate(turns):
        history += items_for(number, question, output)
        result.append(json.dumps({"model": model, key: history}).encode())
    return result


def history_bytes(body: bytes, key: str) -> bytes:
    """The history array without its closing bracket and the body's closing brace."""
    return body[body.index(f'"{key}"'.encode()) : body.rindex(b"]")]


def runner() -> CompressionRunner:
    return CompressionRunner(InlineWorkers(compress_block), "stable", RewriteMemo(1 << 24))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(endpoint=st.sampled_from(list(APIS)), turns=turns_strategy, placement=st.sampled_from(["alternate", "restart"]))
def test_each_turn_starts_with_the_previous_turns_upstream_history(endpoint, turns, placement):
    key = APIS[endpoint][0]
    processes = [runner(), runner()]
    forwarded = []
    for number, body in enumerate(bodies(endpoint, turns)):
        process = processes[number % 2] if placement == "alternate" else runner()
        forwarded.append(process.compress(body, endpoint).body)
    for before, after in zip(forwarded, forwarded[1:], strict=False):
        assert history_bytes(after, key).startswith(history_bytes(before, key))
