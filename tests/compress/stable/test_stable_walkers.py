"""Stable walkers: every tool output of the conversation, each with the user text before it."""

from __future__ import annotations

from headroom_twisted.compress.livezone.model import Refusal, is_client_reminder
from headroom_twisted.compress.plan import rewrite_key
from headroom_twisted.compress.stable import anthropic, chat, responses
from headroom_twisted.compress.tool_call import tool_call

REMINDER = "<system-reminder>\nToday is Tuesday.\n</system-reminder>"


def selected(selection) -> list[tuple[tuple, str, str, str]]:
    return [(block.path, block.kind, block.text, block.query) for block in selection.blocks]


def test_chat_selects_every_tool_output_with_the_question_before_it():
    document = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "run the tests"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]},
            {"role": "tool", "tool_call_id": "a", "content": "out 1"},
            {"role": "user", "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": "now lint"}]},
            {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "out 2"}, {"type": "image"}]},
        ],
    }
    assert selected(chat.find_blocks(document)) == [
        (("messages", 1, "content"), "user_text", "run the tests", ""),
        (("messages", 3, "content"), "tool", "out 1", "run the tests"),
        (("messages", 4, "content", 1, "text"), "user_text", "now lint", "run the tests"),
        (("messages", 5, "content", 0, "text"), "tool", "out 2", "now lint"),
    ]


def test_chat_n_greater_than_one_is_passed_through():
    assert chat.find_blocks({"n": 2, "messages": []}) == Refusal("n_greater_than_one", None)


def test_anthropic_selects_every_tool_result_whatever_the_markers():
    marker = {"type": "ephemeral"}
    document = {
        "model": "claude-x",
        "system": [{"type": "text", "text": "system prompt", "cache_control": marker}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": "diagnose"}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1", "content": "r1"}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "2", "content": [{"type": "text", "text": "r2"}]},
                    {"type": "tool_result", "tool_use_id": "3", "content": "r3", "cache_control": marker},
                    {"type": "image", "source": {}},
                ],
            },
        ],
    }
    assert selected(anthropic.find_blocks(document)) == [
        (("messages", 0, "content", 1, "text"), "user_text", "diagnose", ""),
        (("messages", 2, "content", 0, "content"), "tool_result", "r1", "diagnose"),
        (("messages", 3, "content", 0, "content", 0, "text"), "tool_result", "r2", "diagnose"),
        (("messages", 3, "content", 1, "content"), "tool_result", "r3", "diagnose"),
    ]


def test_responses_selects_every_output_item_and_skips_reasoning_and_developer_text():
    document = {
        "model": "gpt-5",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<env>cwd</env>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "what failed?"}]},
            {"type": "reasoning", "encrypted_content": "opaque"},
            {"type": "function_call", "call_id": "1", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "1", "output": "o1"},
            {"type": "custom_tool_call_output", "call_id": "2", "output": [{"type": "input_text", "text": "o2"}]},
            {"type": "computer_call_output", "call_id": "3", "output": {"type": "input_image"}},
            {"role": "user", "content": "and why?"},
            {"type": "local_shell_call_output", "call_id": "4", "output": "o4"},
        ],
    }
    assert selected(responses.find_blocks(document)) == [
        (("input", 2, "content", 0, "text"), "user_text", "what failed?", ""),
        (("input", 5, "output"), "function_call_output", "o1", "what failed?"),
        (("input", 6, "output", 0, "text"), "custom_tool_call_output", "o2", "what failed?"),
        (("input", 8, "content"), "user_text", "and why?", "what failed?"),
        (("input", 9, "output"), "local_shell_call_output", "o4", "and why?"),
    ]


def test_a_later_turn_never_changes_an_earlier_blocks_query():
    turn = [
        {"role": "user", "content": "q1"},
        {"role": "tool", "tool_call_id": "a", "content": "o1"},
    ]
    later = [*turn, {"role": "user", "content": "q2"}, {"role": "tool", "tool_call_id": "b", "content": "o2"}]
    first = chat.find_blocks({"messages": turn}).blocks
    second = chat.find_blocks({"messages": later}).blocks
    assert second[: len(first)] == first


def test_client_reminders_are_whole_tag_wrapped_texts():
    assert is_client_reminder(REMINDER)
    assert is_client_reminder("  <environment_context>\n <cwd>/x</cwd>\n</environment_context>\n")
    assert not is_client_reminder("<b>bold</b> and more")
    assert not is_client_reminder("why does <module> fail?")
    assert not is_client_reminder("plain question")


def test_each_tool_output_carries_the_call_that_produced_it():
    read = {"file_path": "/src/a.py"}
    chat_document = {
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "Read", "arguments": '{"file_path": "/src/a.py"}'},
                    },
                    {"id": "c2", "type": "function", "function": {"name": "Bash", "arguments": "not json"}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "x"},
            {"role": "tool", "tool_call_id": "c2", "content": "y"},
            {"role": "tool", "tool_call_id": "unknown", "content": "z"},
        ]
    }
    calls = [block.call for block in chat.find_blocks(chat_document).blocks if block.kind == "tool"]
    assert calls == [tool_call("Read", read), tool_call("Bash", "not json"), None]

    anthropic_document = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": read}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "x"}]}],
            },
        ]
    }
    calls = [block.call for block in anthropic.find_blocks(anthropic_document).blocks if block.kind == "tool_result"]
    assert calls == [tool_call("Read", read)]

    responses_document = {
        "input": [
            {"type": "function_call", "call_id": "f1", "name": "exec_command", "arguments": '{"cmd": "cat a.py"}'},
            {"type": "function_call_output", "call_id": "f1", "output": "x"},
            {"type": "custom_tool_call", "call_id": "f2", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "f2", "output": "done"},
        ]
    }
    calls = [block.call for block in responses.find_blocks(responses_document).blocks]
    assert calls == [tool_call("exec_command", {"cmd": "cat a.py"}), tool_call("apply_patch", "*** Begin Patch")]


def test_the_call_is_part_of_the_rewrite_key():
    literal = b'"1\\timport os"'
    keys = {
        rewrite_key(literal, "q", "o200k_base", None),
        rewrite_key(literal, "q", "o200k_base", tool_call("Read", {"file_path": "a.py"})),
        rewrite_key(literal, "q", "o200k_base", tool_call("Read", {"file_path": "b.py"})),
    }
    assert len(keys) == 3
    spelled_twice = (
        tool_call("Read", '{"limit": 5, "file_path": "a.py"}'),
        tool_call("Read", {"file_path": "a.py", "limit": 5}),
    )
    assert spelled_twice[0] == spelled_twice[1]
