"""Golden cases: every fact of every corpus case survives compression, each compressed as its own type.

The corpus holds raw tool outputs and outputs cut from real agent sessions
(wrapped in the agent's header lines, capped, with its truncation markers);
see ``bench/make_corpus.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headroom_twisted.compress.blocks.policy import compress_block
from headroom_twisted.compress.tool_call import tool_call

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "corpus"
CASES = json.loads((CORPUS / "cases.json").read_text())
LEFT_AS_IS = {
    "codex_dpkg_json_cut": "Codex cut its one-line JSON list in the middle: neither half parses",
}
STRATEGY_TYPES = {
    "log": "log",
    "search": "search",
    "diff": "diff",
    "json": "json",
    "listing": "listing",
    "code": "code",
}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_keeps_its_facts(case: dict) -> None:
    text = (CORPUS / case["file"]).read_text()
    call = tool_call(case["call"]["name"], case["call"]["arguments"]) if "call" in case else None
    result = compress_block(text, case["query"], "gpt-4o", call)
    assert [f for f in case["facts"] if f not in result.text] == []
    if case["name"] in LEFT_AS_IS:
        assert not result.changed
        return
    assert result.changed
    inner = result.strategy.removeprefix("wrapped_")
    assert STRATEGY_TYPES[inner.split("_")[0]] == case["kind"]
