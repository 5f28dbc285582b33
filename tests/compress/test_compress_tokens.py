"""Token counting: model mapping, caching, and the strictly-offline fallback."""

from __future__ import annotations

import base64
import hashlib

import pytest
import structlog
import tiktoken.load

from headroom_twisted.compress import tokens


@pytest.fixture
def fresh_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """Empty counter cache, an empty tiktoken cache dir, and any download attempt fails loudly."""
    monkeypatch.setattr(tokens, "_counters", {})
    monkeypatch.setattr(tokens, "_warned", set())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    local_read = tiktoken.load.read_file

    def local_only(path: str) -> bytes:
        if "://" in path:
            no_network(path)
        return local_read(path)

    monkeypatch.setattr(tiktoken.load, "read_file", local_only)
    monkeypatch.setattr("requests.get", no_network)
    monkeypatch.setattr("requests.Session.request", no_network)
    return tmp_path


def test_non_openai_models_use_the_cl100k_estimate(fresh_tokens) -> None:
    for model in (None, "", "claude-sonnet-4-5", "llama-3-70b", "anthropic/claude-3-haiku"):
        assert tokens.counter_for(model).encoding_name == tokens.STAND_IN


def test_counts_are_bpe_tokens_not_characters() -> None:
    counter = tokens.counter_for("gpt-4")
    assert counter.count("hello world") == 2
    assert counter.count("<|endoftext|>") > 1


def test_o200k_missing_degrades_with_one_warning_and_no_download(fresh_tokens) -> None:
    with structlog.testing.capture_logs() as logs:
        first = tokens.counter_for("gpt-4o")
        second = tokens.counter_for("gpt-4.1-mini")
        third = tokens.counter_for("o3")
    assert first is second is third
    assert first.encoding_name == tokens.STAND_IN
    assert first.count("hello world") == 2
    assert [e["event"] for e in logs] == ["tokenizer_data_missing"]


def test_cached_ranks_reads_tiktokens_cache_file_and_checks_its_hash(fresh_tokens) -> None:
    url = "https://example.invalid/enc.tiktoken"
    data = b"".join(base64.b64encode(t) + b" %d\n" % i for i, t in enumerate([b"a", b"b", b"ab"]))
    (fresh_tokens / hashlib.sha1(url.encode()).hexdigest()).write_bytes(data)
    good = hashlib.sha256(data).hexdigest()
    assert tokens._cached_ranks(url, good) == {b"a": 0, b"b": 1, b"ab": 2}
    assert tokens._cached_ranks(url, "0" * 64) is None
    assert tokens._cached_ranks("https://example.invalid/other", good) is None


def test_counters_are_cached_per_encoding() -> None:
    assert tokens.counter_for("gpt-4") is tokens.counter_for("gpt-3.5-turbo")
