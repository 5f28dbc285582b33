"""Properties over arbitrary inputs: never raise, JSON stays JSON, never grow, deterministic."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom_twisted.compress.blocks.policy import COMPRESSORS, MIN_BLOCK_BYTES, compress_block
from headroom_twisted.compress.compressors import diff, json_rows, listing, logs, search
from headroom_twisted.compress.compressors.result import NotApplicable

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=40) | st.dictionaries(st.text(max_size=8), inner, max_size=30),
    max_leaves=200,
)
records = st.lists(
    st.fixed_dictionaries(
        {"id": st.integers(), "name": st.text(max_size=12), "state": st.sampled_from(["ok", "failed", "pending"])}
    ),
    min_size=0,
    max_size=120,
)
line_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r")
log_like = st.lists(
    st.one_of(
        st.text(line_chars, max_size=60),
        st.sampled_from(
            [
                "PASSED",
                "FAILED x",
                "Traceback (most recent call last):",
                "E   assert 1 == 2",
                "a.py:3:text",
                "@@ -1,2 +1,2 @@",
                "+added",
                "-removed",
                " context",
                "index 1a..2b 100644",
            ]
        ),
    ),
    max_size=120,
).map("\n".join)
queries = st.text(max_size=40)


@SETTINGS
@given(documents, queries)
def test_json_output_always_parses_and_keeps_small_documents_equal(doc, query) -> None:
    text = json.dumps(doc, indent=1)
    out = json.loads(json_rows.compress(text, query).text)
    if not _has_large_collection(doc):
        assert _untable(out) == doc


@SETTINGS
@given(records, queries)
def test_kept_rows_are_original_rows(rows, query) -> None:
    out = json.loads(json_rows.compress(json.dumps(rows), query).text)
    assert all(row in rows for row in out if isinstance(row, dict))


@SETTINGS
@given(log_like, queries)
def test_line_compressors_never_raise_and_are_deterministic(text, query) -> None:
    for compressor in (logs.compress, search.compress, diff.compress, listing.compress):
        assert compressor(text, query) == compressor(text, query)
    wrapped = "Command: make\nDirectory: (root)\nOutput: " + text + "\nExit Code: 2"
    try:
        assert COMPRESSORS["wrapped"](wrapped, query) == COMPRESSORS["wrapped"](wrapped, query)
    except NotApplicable:
        pass


@SETTINGS
@given(st.one_of(st.text(max_size=3000), log_like, documents.map(json.dumps), records.map(json.dumps)), queries)
def test_compress_block_never_raises_or_grows(text, query) -> None:
    result = compress_block(text, query, None)
    if result.changed:
        assert result.tokens_after < result.tokens_before
    else:
        assert result.text == text
    assert compress_block(text, query, None).text == result.text
    if len(text.encode("utf-8", "surrogatepass")) < MIN_BLOCK_BYTES:
        assert result.reason == "below_threshold"


def _untable(node):
    """Undo the lossless table form, to compare with the input."""
    if isinstance(node, dict) and set(node) == {"_columns", "_rows"}:
        return [dict(zip(node["_columns"], row, strict=True)) for row in node["_rows"]]
    if isinstance(node, dict):
        return {k: _untable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_untable(v) for v in node]
    return node


def _has_large_collection(node) -> bool:
    if isinstance(node, list):
        return len(node) >= json_rows.MIN_ROWS or any(_has_large_collection(v) for v in node)
    if isinstance(node, dict):
        big = len(node) >= json_rows.MIN_ROWS and all(isinstance(v, (dict, list)) for v in node.values())
        return big or any(_has_large_collection(v) for v in node.values())
    return False
