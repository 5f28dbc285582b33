"""JSON compressor: valid JSON out, the rows that matter kept verbatim, omissions stated."""

from __future__ import annotations

import json

import pytest

from headroom_twisted.compress.compressors import json_rows
from headroom_twisted.compress.compressors.result import NotApplicable


def _packages(n: int) -> list[dict]:
    return [
        {"package": f"lib{i}", "version": f"1.{i}.0", "status": "install ok installed", "size": 100 + i % 9}
        for i in range(n)
    ]


def test_small_documents_are_only_minified() -> None:
    doc = {"name": "treq", "versions": ["24.9.1", "25.5.0"], "ok": True, "n": 1.5}
    result = json_rows.compress(json.dumps(doc, indent=2), "")
    assert json.loads(result.text) == doc
    assert result.strategy == "json_minify"
    assert "\n" not in result.text


def test_query_named_rows_are_kept_verbatim() -> None:
    rows = _packages(1500)
    result = json_rows.compress(json.dumps(rows, indent=2), "what version are lib77 and lib1234?")
    out = json.loads(result.text)
    kept = [r for r in out if isinstance(r, dict)]
    assert rows[77] in kept and rows[1234] in kept
    assert not any(r["package"] == "lib770" for r in kept)
    assert out[-1].startswith(f"[... {1500 - len(kept):,} similar rows omitted")
    assert len(kept) < 40


def test_marker_states_count_and_shape() -> None:
    result = json_rows.compress(json.dumps(_packages(300)), "")
    *kept, note = json.loads(result.text)
    omitted = 300 - len(kept)
    assert note.startswith(f"[... {omitted:,} similar rows omitted")
    assert "keys package, version, status, size" in note


def test_errors_rare_values_and_outliers_are_kept() -> None:
    rows = _packages(400)
    rows[101]["status"] = "half-configured"
    rows[202]["error"] = "dependency problem: libfoo not configured"
    rows[303]["size"] = 9_999_999
    out = json.loads(json_rows.compress(json.dumps(rows), "").text)
    assert rows[101] in out and rows[202] in out and rows[303] in out


def test_nested_arrays_and_record_maps() -> None:
    doc = {
        "meta": {"count": 200},
        "data": {"items": _packages(200)},
        "by_name": {f"pkg{i}": {"v": i} for i in range(100)},
    }
    out = json.loads(json_rows.compress(json.dumps(doc), "pkg42").text)
    assert out["meta"] == {"count": 200}
    assert isinstance(out["data"]["items"][-1], str)
    assert out["by_name"]["pkg42"] == {"v": 42}
    assert out["by_name"]["_omitted"].startswith("[... ")


def test_not_json_bows_out() -> None:
    with pytest.raises(NotApplicable):
        json_rows.compress("[2024-01-01] started", "")
    with pytest.raises(NotApplicable):
        json_rows.compress("[NaN, 1]", "")


def test_short_uniform_arrays_become_a_lossless_table() -> None:
    rows = _packages(10)
    result = json_rows.compress(json.dumps({"packages": rows}, indent=2), "")
    out = json.loads(result.text)["packages"]
    assert result.strategy == "json_table"
    assert out["_columns"] == ["package", "version", "status", "size"]
    assert [dict(zip(out["_columns"], r, strict=True)) for r in out["_rows"]] == rows


def test_mixed_records_stay_records() -> None:
    rows = [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2}]
    assert json.loads(json_rows.compress(json.dumps(rows), "").text) == rows
