"""Content-type detection: cheap structural checks first, Magika for the rest.

Magika reads search results, build logs and diffs as plain text, yet those
are the shapes worth compressing, so line-shape checks run first. Every check
looks at a bounded prefix, so cost does not grow with the block.
"""

from __future__ import annotations

import re
import threading

import onnxruntime
from magika import Magika

from headroom_twisted.compress.blocks import envelope
from headroom_twisted.compress.compressors import listing
from headroom_twisted.compress.compressors.relevance import whole_words

PREFIX_CHARS = 16_384
_SAMPLE_LINES = 200

_SEARCH_LINE = re.compile(r"^[^\s:][^:\n]{0,400}:\d+:(\d+:)?")
_DIFF_START = re.compile(r"diff (--git|-[a-zA-Z]+) |--- \S|Index: \S|Only in \S")
_DIFF_START_LATER = re.compile(r"\n(?:diff (?:--git|-[a-zA-Z]+) |--- \S|Index: \S|Only in \S)")
_HUNK = re.compile(r"^@@ -\d+(,\d+)? \+\d+(,\d+)? @@", re.M)
# A line is log-like when it holds one of these words, a bracketed status, or opens like a
# timestamped, build-tool or separator line. Only whether a line matches counts, so the words
# are split off into one fast-scanning pattern (see ``relevance.whole_words``) and the openings
# into another that is only tried at the start of the line.
_LOG_WORD = re.compile(
    whole_words(
        (
            *("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "WARNING", "WARN", "INFO", "DEBUG", "passed"),
            *("failed", "error", "warning", "Traceback", "Collecting", "Downloading", "Installing", "Successfully"),
            *("Compiling", "Finished", "Running", "running", "copying", "creating", "building", "Building", "ok", "OK"),
        )
    )
    + r"|\[(?:OK|FAIL|ERROR|SKIPPED|SUCCESS|EXPECTED FAILURE)\]"
)
_LOG_OPENING = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\s*(?:npm|make(?:\[\d+\])?|cargo|gcc|cc|ld)\b|[=_-]{5,}")

_JSON_START = re.compile(r'\[\s*([\[{"\]\d-]|true|false|null)|\{\s*["}]')
_CODE_GROUP = "code"
_TEXT_LABELS = frozenset({"txt", "markdown", "rst", "unknown", "empty", "undefined"})


def detect(text: str) -> str:
    """The content type of ``text``: json, diff, search, log, code, text or another Magika label."""
    cheap = detect_structure(text)
    if cheap is not None:
        return cheap
    return _magika_content_type(text[:PREFIX_CHARS])


def detect_structure(text: str) -> str | None:
    """The line-shape checks alone: no model, microseconds; None when nothing matched.

    An agent's wrapper (Codex, Qwen Code, Claude Code; see ``envelope``) is
    recognised first: behind it the payload is detected on its own. Listings
    (paths, uniform table rows) are told apart before the log check, whose
    keywords (``ok``, ``installing``) also occur in package lists.

    JSON is recognised by how it opens and closes (``[{``...``}]``), which
    rules out log lines such as ``[INFO] ...``; the compressor still parses
    it and bows out if it is not JSON after all.
    """
    stripped = text[:PREFIX_CHARS].strip()
    if not stripped:
        return "text"
    if envelope.peel(text) is not None:
        return "wrapped"
    if _JSON_START.match(stripped) and text.rstrip()[-1:] in ("]", "}"):
        return "json"
    lines = [line for line in stripped.split("\n", _SAMPLE_LINES)[:_SAMPLE_LINES] if line.strip()]
    if (_DIFF_START.match(stripped) or _DIFF_START_LATER.search(stripped)) and _HUNK.search(stripped):
        return "diff"
    if _search_share(lines) >= 0.8 and len(lines) >= 3:
        return "search"
    if listing.is_listing(lines):
        return "listing"
    log_share = sum(1 for line in lines if _LOG_OPENING.match(line) or _LOG_WORD.search(line)) / len(lines)
    if log_share >= 0.25 and len(lines) >= 5:
        return "log"
    return None


def _search_share(lines: list[str]) -> float:
    """The share of ``path:12:`` lines, or any share below 0.8 as soon as it cannot reach 0.8.

    Most blocks are not search results; their count stops after a fifth of
    the sample fails to match instead of trying every line.
    """
    hits = misses = 0
    for line in lines:
        if _SEARCH_LINE.match(line):
            hits += 1
            continue
        misses += 1
        if (len(lines) - misses) / len(lines) < 0.8:
            break
    return hits / len(lines)


class _SharedMagika:
    """One Magika model per process, loaded on first use, calls serialised.

    Loading costs hundreds of milliseconds, so it happens once; the lock keeps
    the claim "thread-safe" true regardless of the ONNX session's guarantees.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._magika: Magika | None = None

    def identify(self, data: bytes) -> tuple[str, str]:
        """Return (label, group) for ``data``."""
        with self._lock:
            if self._magika is None:
                # The library's own switch, beside the variable privacy.py sets before it loads.
                onnxruntime.disable_telemetry_events()
                self._magika = Magika()
            result = self._magika.identify_bytes(data)
        output = result.output
        return str(output.label), str(output.group)


_MAGIKA = _SharedMagika()


def warm_up() -> None:
    """Load the Magika model now rather than on the first request."""
    _MAGIKA.identify(b"warm up")


def magika_label(text: str) -> str:
    """Magika's label for a prefix of ``text``: ``python``, ``go``, ``javascript``, ``txt``..."""
    label, _ = _MAGIKA.identify(text[:PREFIX_CHARS].encode("utf-8", "surrogatepass"))
    return label


def _magika_content_type(prefix: str) -> str:
    label, group = _MAGIKA.identify(prefix.encode("utf-8", "surrogatepass"))
    if label in ("json", "jsonl"):
        return "json"
    if label == "diff":
        return "diff"
    if label in _TEXT_LABELS:
        return "text"
    if group == _CODE_GROUP:
        return "code"
    return label
