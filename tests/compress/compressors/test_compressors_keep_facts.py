"""Properties: a line that holds an error keyword, or a selective word or number of the question, is never dropped.

"Selective" is the one exception the compressors make: a question word
found in more than a fifth of the lines (the grep pattern, a column value,
"tests" in a test log) selects nothing and does not protect those lines.
The texts are built from a small vocabulary so that question words, error
keywords and numbers collide with the lines often.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom_twisted.compress.blocks import envelope
from headroom_twisted.compress.blocks.policy import COMPRESSORS
from headroom_twisted.compress.compressors import diff, listing, logs, search
from headroom_twisted.compress.compressors.relevance import SELECTIVE_SHARE, query_terms

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "tau"]
ERRORS = ["error", "failed", "fatal", "exception", "Traceback", "panic", "ERROR", "FAILED"]
NUMBERS = ["7", "42", "404", "8080", "2026"]
NOISE = ["PASSED", "ok", "INFO", "WARNING", "copying", "Running", "[OK]"]
ERROR_WORD = re.compile(r"\b(?:error|failed|fatal|exception|traceback|panic)\b")

tokens = st.sampled_from(WORDS + ERRORS + NUMBERS + NOISE)
lines = st.lists(tokens, min_size=1, max_size=7).map(" ".join)
questions = st.lists(st.sampled_from(WORDS + NUMBERS + ["why", "where", "is", "the"]), max_size=4).map(" ".join)


def _protecting_words(question: str, haystacks: list[str]) -> list[str]:
    """Question words and numbers found in at least one and at most a fifth of the haystacks."""
    limit = max(1, int(len(haystacks) * SELECTIVE_SHARE))
    found = []
    for term in query_terms(question):
        pattern = re.compile(r"(?<![a-z0-9_])" + re.escape(term) + r"(?![a-z0-9_])")
        hits = sum(1 for hay in haystacks if pattern.search(hay))
        if 0 < hits <= limit:
            found.append(pattern)
    return found


def _protected(line: str, words: list[re.Pattern[str]]) -> bool:
    lowered = line.lower()
    return bool(ERROR_WORD.search(lowered)) or any(w.search(lowered) for w in words)


@SETTINGS
@given(st.lists(lines, min_size=30, max_size=200), questions)
def test_logs_keep_protected_lines(body: list[str], question: str) -> None:
    out = set(logs.compress("\n".join(body), question).text.split("\n"))
    words = _protecting_words(question, [line.lower() for line in body])
    assert [line for line in body if _protected(line, words) and line not in out] == []


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(NUMBERS), tokens), min_size=5, max_size=150), questions
)
def test_listing_rows_keep_every_field(rows: list[tuple[str, str, str]], question: str) -> None:
    body = [f"{name}{i} {version}.{i} {state}" for i, (name, version, state) in enumerate(rows)]
    out = listing.compress("\n".join(body), question).text
    words = _protecting_words(question, [line.lower() for line in body])
    for line in body:
        if _protected(line, words):
            assert all(field in out for field in line.split()), line


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(WORDS), tokens), min_size=5, max_size=150), questions)
def test_path_listings_keep_protected_paths(rows: list[tuple[str, str, str]], question: str) -> None:
    body = [f"/srv/app/{d}/{name}_{i}_{word}.py" for i, (d, name, word) in enumerate(rows)]
    out = listing.compress("\n".join(body), question).text
    words = _protecting_words(question, [line.lower() for line in body])
    for line in body:
        if _protected(line, words):
            directory, name = line.removeprefix("/srv/app/").split("/")
            assert f"{directory}/: " in out and name in out.split(), line


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(WORDS[:3]), st.integers(1, 999), lines), min_size=30, max_size=200), questions
)
def test_search_keeps_protected_matches(rows: list[tuple[str, int, str]], question: str) -> None:
    body = [f"src/{name}.py:{line_no}:    {text}" for name, line_no, text in rows]
    out = search.compress("\n".join(body), question).text.split("\n")
    words = _protecting_words(question, [f"src/{n}.py:    {t}".lower() for n, _, t in rows])
    for name, line_no, text in rows:
        if any(w.search(f"src/{name}.py:    {text}".lower()) for w in words):
            assert f"  {line_no}: {text.strip()}" in out


@SETTINGS
@given(st.lists(lines, min_size=15, max_size=60), st.lists(lines, max_size=60))
def test_search_keeps_every_error_line_that_is_not_a_match(errors: list[str], matches: list[str]) -> None:
    body = [f"grep: {text}: Permission denied" for text in errors] + [f"a.py:{i}:{t}" for i, t in enumerate(matches)]
    out = search.compress("\n".join(body), "").text.split("\n")
    assert [line for line in body[: len(errors)] if line not in out] == []


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(" +-"), lines), min_size=1, max_size=150), questions)
def test_diff_keeps_changes_and_protected_context(rows: list[tuple[str, str]], question: str) -> None:
    hunk = [sign + text for sign, text in rows]
    body = ["diff --git a/x b/x", "--- a/x", "+++ b/x", "@@ -1,200 +1,200 @@", *hunk]
    out = set(diff.compress("\n".join(body), question).text.split("\n"))
    words = _protecting_words(question, [line.lower() for line in body])
    for line in hunk:
        if line[0] != " " or _protected(line, words):
            assert line in out, line


CUT_LINES = st.sampled_from(
    [
        "/var/tmp/x/li…125896 chars truncated…ib/python3.11/site.py:379:    def f(self):",
        "---\n... [CONTENT TRUNCATED] ...\n---",
    ]
)
WRAPPERS = st.sampled_from(
    [
        (
            "Chunk ID: 6ff32b\nWall time: 0.1 seconds\nProcess exited with code 1\nOriginal token count: 99\nOutput:\n",
            "",
        ),
        ("Command: pytest -q\nDirectory: (root)\nOutput: ", "\nError: (none)\nExit Code: 1\nSignal: (none)"),
        ("", "\nShell cwd was reset to /var/tmp/src"),
        ("", "\n[notice] A new release of pip is available: 23.2.1 -> 26.3"),
    ]
)


@SETTINGS
@given(WRAPPERS, st.lists(lines, min_size=40, max_size=150), CUT_LINES, st.integers(0, 39), questions)
def test_wrapped_outputs_keep_wrapper_cut_and_protected_lines(
    wrapper: tuple[str, str], body: list[str], cut: str, at: int, question: str
) -> None:
    body = [f"{line} PASSED" if i % 3 else line for i, line in enumerate(body)]
    payload = [*body[:at], cut, *body[at:]]
    head, tail = wrapper
    text = head + "\n".join(payload) + tail
    peeled = envelope.peel(text)
    assert peeled is not None and peeled.head + peeled.payload + peeled.tail == text
    try:
        out = COMPRESSORS["wrapped"](text, question).text
    except ValueError:
        return  # the payload was not a type worth compressing: the block goes upstream as it was
    assert out.startswith(head) and out.endswith(tail) and cut in out
    kept = set(out[len(head) :].split("\n"))
    words = _protecting_words(question, [line.lower() for line in body])
    assert [line for line in body if _protected(line, words) and line not in kept] == []
    assert out == COMPRESSORS["wrapped"](text, question).text
