"""Token counting per model, strictly offline.

OpenAI models are counted in their own encoding, o200k_base or cl100k_base,
by bpe-openai: its wheel carries both encodings inside the compiled module,
so there is nothing to fetch, and it gives tiktoken's count for every input
in less time (2.7x on cl100k, 1.7x on o200k over bench/corpus; the
load takes half the time and memory). bench/tokenizers.py measures speed and
parity down to every Unicode code point; the property tests hold it to
tiktoken's counts. Every other model (Claude, Llama, Qwen, names we
do not know) gets an estimate: its cl100k_base count. Anthropic publishes no
tokenizer, and cl100k is the vocabulary Llama 3's and Qwen's grew from.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

import structlog
from structlog.typing import FilteringBoundLogger

log: FilteringBoundLogger = structlog.get_logger(__name__)

ESTIMATE = "cl100k_base"
"""The encoding that estimates models without a published tokenizer, and unknown model names."""

ENCODINGS = frozenset({"cl100k_base", "o200k_base"})
"""The encodings counted exactly (tiktoken's count for the same encoding)."""

MODEL_ENCODINGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gpt", "3.5"), "cl100k_base"),
    (("gpt", "35"), "cl100k_base"),
    (("gpt", "4"), "cl100k_base"),
    (("text", "embedding"), "cl100k_base"),
    (("gpt",), "o200k_base"),
    (("chatgpt",), "o200k_base"),
    (("o1",), "o200k_base"),
    (("o3",), "o200k_base"),
    (("o4",), "o200k_base"),
    (("codex",), "o200k_base"),
    (("computer", "use"), "o200k_base"),
)
"""OpenAI model families by their leading dash-separated name parts; the first match wins.

``("gpt", "4")`` is gpt-4, gpt-4-turbo, gpt-4-0613, gpt-4-32k, but not gpt-4o
or gpt-4.1, whose second part is ``4o`` or ``4.1``: those, gpt-4.5, gpt-5 and
every later gpt (gpt-5.1-codex, gpt-oss, gpt-realtime) fall to ``("gpt",)``.
gpt-oss's o200k_harmony differs from o200k_base only in special tokens,
which are counted as plain text here anyway.
"""

PROVIDER_ENCODINGS = {"openai": "o200k_base", "anthropic": ESTIMATE}
"""The one encoding per provider that stable compression counts with.

Stable compression must decide keep-or-drop for a block identically on every
turn, so its count cannot depend on the request's model name (a conversation
may switch models). OpenAI's current models all use o200k_base; Anthropic
publishes no tokenizer, so cl100k is the estimate.
"""

_BACKEND = "bpe_openai._bindings"

_lock = threading.Lock()
_counters: dict[str, TokenCounter] = {}
_warned: set[str] = set()


class Tokenizer(Protocol):
    """What a counter needs of bpe-openai's compiled tokenizer."""

    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens in one encoding: immutable, shared by threads, pickled by name.

    The compiled tokenizer cannot be pickled; a counter sent to a worker
    process is looked up there by its encoding name, loaded once per process.
    """

    encoding_name: str
    tokenizer: Tokenizer = field(repr=False, compare=False)

    def count(self, text: str) -> int:
        """Token count of ``text``, special-token strings counted as plain text (tiktoken's ``encode_ordinary``).

        Lone surrogates (JSON allows them, UTF-8 does not) become U+FFFD first,
        exactly as tiktoken does.
        """
        try:
            return self.tokenizer.count(text)
        except UnicodeEncodeError:
            return self.tokenizer.count(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))

    def __reduce__(self) -> tuple[Callable[[str], TokenCounter], tuple[str]]:
        return counter_for_encoding, (self.encoding_name,)


def counter_for(model: str | None) -> TokenCounter:
    """The counter for ``model`` (live-zone mode), built once per encoding and shared."""
    return counter_for_encoding(encoding_for_model(model))


def counter_for_provider(provider: str) -> TokenCounter:
    """The counter stable compression uses for every request to ``provider``."""
    return counter_for_encoding(PROVIDER_ENCODINGS[provider])


def counter_for_encoding(wanted: str) -> TokenCounter:
    """The counter for encoding ``wanted``, built once per process and shared.

    A name outside ENCODINGS gets the ESTIMATE counter, and the first such
    name in a process logs ``tokenizer_data_missing``.
    """
    with _lock:
        counter = _counters.get(wanted)
        if counter is None:
            name = wanted if wanted in ENCODINGS else _estimate_instead_of(wanted)
            counter = _counters.get(name) or TokenCounter(name, _backend().tokenizer_for_encoding(name))
            _counters[name] = _counters[wanted] = counter
        return counter


def encoding_for_model(model: str | None) -> str:
    """The encoding that counts ``model``'s tokens: its own for OpenAI models, else ESTIMATE.

    Accepts provider prefixes (``openai/gpt-4o``), fine-tune names
    (``ft:gpt-4o-mini:org::id``) and any letter case.
    """
    if not model:
        return ESTIMATE
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith("ft:"):
        name = name.split(":")[1]
    parts = tuple(name.split("-"))
    for family, encoding in MODEL_ENCODINGS:
        if parts[: len(family)] == family:
            return encoding
    return ESTIMATE


def _estimate_instead_of(wanted: str) -> str:
    """Count with ESTIMATE where ``wanted`` is not shipped; say so once per process."""
    if not _warned:
        _warned.add(wanted)
        log.warning("tokenizer_data_missing", encoding=wanted, counted_with=ESTIMATE)
    return ESTIMATE


def _backend() -> ModuleType:
    """bpe-openai's compiled module, loaded without running its Python package.

    ``import bpe_openai`` parses every vocabulary it ships into Python dicts
    for its tiktoken look-alike API: 1.7 s and 60 MB more in every worker
    process (bench/tokenizers.py). The compiled module carries its own copy
    of the data and is all that counting needs.
    """
    loaded = sys.modules.get(_BACKEND)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("bpe_openai")
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("bpe-openai is not installed", name="bpe_openai")
    finder = importlib.machinery.FileFinder(
        package.submodule_search_locations[0],
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
    )
    spec = finder.find_spec(_BACKEND)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"{_BACKEND} is missing from bpe-openai", name=_BACKEND)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[_BACKEND] = module
    return module
