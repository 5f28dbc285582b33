"""Golden cases: every fact of every real-output corpus case survives compression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headroom_twisted.compress.blocks import compress_block

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "corpus"
CASES = json.loads((CORPUS / "cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_keeps_its_facts(case: dict) -> None:
    text = (CORPUS / case["file"]).read_text()
    result = compress_block(text, case["query"], "gpt-4o")
    assert [f for f in case["facts"] if f not in result.text] == []
    if case["kind"] != "code":
        assert result.changed and result.content_type == case["kind"]
