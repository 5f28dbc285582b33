"""The official SDKs through a stable-mode proxy: Claude Code's and Codex's shapes, every turn compressed.

Claude Code marks the newest message with ``cache_control`` on every turn;
in stable mode that freezes nothing, and the marker bytes are forwarded as
sent. Codex sends encrypted reasoning items, which stay untouched.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
import pytest_twisted
from e2e_support import ANTHROPIC_MESSAGE, RESPONSE_OBJECT, answer, corpus, decisions, in_thread, sse_fixture
from structlog.testing import capture_logs

QUESTION = "Which tests failed, and why?"
MARKER = {"type": "ephemeral"}


@pytest.fixture
def stable(make_proxy):
    return make_proxy(production=True, compression="stable")


@pytest_twisted.ensureDeferred
async def test_anthropic_sdk_marked_conversation_is_compressed_every_turn(stable, upstream) -> None:
    upstream.handler = answer(ANTHROPIC_MESSAGE, sse_fixture("anthropic_text"))
    client = anthropic.Anthropic(api_key="sk-ant-dummy", base_url=stable.url, max_retries=0)
    log, rows = corpus("pytest_failures.txt"), corpus("pip_list_json.txt")
    thinking = {"type": "thinking", "thinking": "Run them.", "signature": "c2lnbmF0dXJl"}

    def turn(outputs: list[str]) -> list[dict]:
        messages: list[dict] = [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
        for number, output in enumerate(outputs):
            use = {"type": "tool_use", "id": f"toolu_{number}", "name": "Bash", "input": {"command": "x"}}
            result = {"type": "tool_result", "tool_use_id": f"toolu_{number}", "content": output}
            messages += [{"role": "assistant", "content": [thinking, use]}, {"role": "user", "content": [result]}]
        messages[-1]["content"][-1]["cache_control"] = MARKER
        return messages

    forwarded = []
    with capture_logs() as logs:
        for outputs in ([log], [log, rows]):
            message = await in_thread(
                lambda outputs=outputs: client.messages.create(
                    model="claude-sonnet-4-6", max_tokens=256, messages=turn(outputs)
                )
            )
            assert message.content[0].text == "Two tests failed."
            forwarded.append(json.loads(upstream.last.body)["messages"])
    first, second = forwarded
    assert second[2] == {
        **first[2],
        "content": [{k: v for k, v in first[2]["content"][0].items() if k != "cache_control"}],
    }
    assert second[4]["content"][0]["cache_control"] == MARKER
    assert len(second[2]["content"][0]["content"]) < len(log) / 2
    assert second[1]["content"][0] == thinking
    turn_two = decisions(logs)[1]
    assert (turn_two["decision"], turn_two["blocks_from_memo"], turn_two["blocks_compressed"]) == ("compressed", 2, 1)


@pytest_twisted.ensureDeferred
async def test_openai_responses_sdk_keeps_reasoning_and_compresses_every_output(stable, upstream) -> None:
    upstream.handler = answer(RESPONSE_OBJECT, sse_fixture("responses_text"))
    client = openai.OpenAI(api_key="sk-test-dummy", base_url=stable.url + "/v1", max_retries=0)
    log, rows = corpus("pytest_failures.txt"), corpus("pip_list_json.txt")
    items: list[dict] = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": QUESTION}]}]
    for number, output in enumerate((log, rows)):
        items.append({"type": "reasoning", "id": f"rs_{number}", "summary": [], "encrypted_content": "gAAAA" * 40})
        items.append({"type": "function_call", "call_id": f"call_{number}", "name": "shell", "arguments": "{}"})
        items.append({"type": "function_call_output", "call_id": f"call_{number}", "output": output})
    response = await in_thread(lambda: client.responses.create(model="gpt-5", input=items, store=False))
    assert response.output_text
    sent = json.loads(upstream.last.body)["input"]
    assert [item for item in sent if item["type"] == "reasoning"] == [i for i in items if i["type"] == "reasoning"]
    outputs = [item["output"] for item in sent if item["type"] == "function_call_output"]
    assert len(outputs[0]) < len(log) / 2 and len(outputs[1]) < len(rows) / 2
