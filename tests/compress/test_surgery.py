"""Property: for generated request bodies, only the live-zone literals change.

Bodies are written by a small serializer of our own that varies whitespace,
key order, string escapes and number spellings, adds unknown fields and
duplicate keys off the target paths, and records the byte span of every
live-zone literal as it writes it. The expected output is rebuilt from those
spans independently of the code under test and must match byte for byte.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from headroom_twisted.compress.blocks.result import BlockResult
from headroom_twisted.compress.pipeline import compress_request
from headroom_twisted.endpoints import Endpoint

SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
NUMBERS = [
    b"0",
    b"-0",
    b"1.0",
    b"1e400",
    b"-1E-400",
    b"12345678901234567890123",
    b"3.14e+2",
    b"true",
    b"false",
    b"null",
]


@dataclass
class Str:
    text: str
    target: bool = False


@dataclass
class Raw:
    token: bytes


@dataclass
class Arr:
    items: list


@dataclass
class Obj:
    members: list  # (key, value) pairs, duplicates allowed

    def __init__(self, *members):
        self.members = list(members)


@dataclass
class Writer:
    """Serializes the tree with random formatting and records target spans."""

    rng: random.Random
    out: bytearray = field(default_factory=bytearray)
    targets: list = field(default_factory=list)  # (start, end, text)

    def ws(self) -> None:
        self.out += self.rng.choice([b"", b"", b" ", b"\n  ", b"\t", b"\r\n"])

    def string(self, text: str) -> None:
        pieces = ['"']
        for char in text:
            code = ord(char)
            if char in SHORT_ESCAPES and (code < 0x20 or char in '"\\') and self.rng.random() < 0.7:
                pieces.append(SHORT_ESCAPES[char])
            elif code < 0x20 or char in '"\\' or 0xD800 <= code <= 0xDFFF or self.rng.random() < 0.1:
                pieces.append(_unicode_escape(char, self.rng.random() < 0.5))
            elif char == "/" and self.rng.random() < 0.5:
                pieces.append("\\/")
            else:
                pieces.append(char)
        pieces.append('"')
        self.out += "".join(pieces).encode("utf-8")

    def value(self, node) -> None:
        if isinstance(node, Str):
            start = len(self.out)
            self.string(node.text)
            if node.target:
                self.targets.append((start, len(self.out), node.text))
        elif isinstance(node, Raw):
            self.out += node.token
        elif isinstance(node, Arr):
            self.container(b"[", b"]", node.items, self.value)
        else:
            self.container(b"{", b"}", node.members, self.member)

    def member(self, pair) -> None:
        key, value = pair
        self.string(key)
        self.ws()
        self.out += b":"
        self.ws()
        self.value(value)

    def container(self, open_, close, items, write) -> None:
        self.out += open_
        for index, item in enumerate(items):
            self.ws()
            if index:
                self.out += b","
                self.ws()
            write(item)
        self.ws()
        self.out += close


def _unicode_escape(char: str, upper: bool) -> str:
    code = ord(char)
    if code > 0xFFFF:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        return _unicode_escape(chr(high), upper) + _unicode_escape(chr(low), upper)
    hex_digits = f"{code:04X}" if upper else f"{code:04x}"
    return "\\u" + hex_digits


def compressor(text: str, query: str, model: str | None, call: object = None) -> BlockResult:
    """Shortens texts of 8+ characters to a non-ASCII marker."""
    if len(text) < 8:
        return BlockResult(text, False, "text", "none", "below_threshold", 0, 0, None, None, 0.0)
    new = text[:3] + "…✂\n"
    return BlockResult(new, True, "text", "cut", "compressed", 0, 0, len(text), 4, 0.0)


def expected_literal(text: str) -> bytes | None:
    if len(text) < 8:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return orjson.dumps(text[:3] + "…✂\n")


plain_texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
lone_surrogate_texts = st.builds(lambda a, b: a + "\ud800" + b, st.text(max_size=5), st.text(max_size=5))
texts = st.one_of(plain_texts, plain_texts, plain_texts, lone_surrogate_texts)
long_texts = st.text(st.characters(exclude_categories=("Cs",)), min_size=8, max_size=60)
target_texts = st.one_of(long_texts, long_texts, long_texts, texts)
raw_numbers = st.sampled_from(NUMBERS).map(Raw)
noise = st.recursive(
    raw_numbers | texts.map(Str),
    lambda inner: (
        st.lists(inner, max_size=3).map(Arr)
        | st.lists(st.tuples(st.sampled_from(["k", "k", "x", "é", "a/b"]), inner), max_size=3).map(lambda m: Obj(*m))
    ),
    max_leaves=8,
)
unknown_fields = st.lists(
    st.tuples(st.sampled_from(["metadata", "user", "extra_ü", "temperature", "seed"]), noise),
    max_size=3,
    unique_by=lambda kv: kv[0],
)


def parts(draw, part_type: str, target: bool) -> Str | Arr:
    if draw(st.booleans()):
        return Str(draw(target_texts), target)
    chosen = draw(st.lists(st.sampled_from([part_type, "image"]), min_size=1, max_size=3))
    return Arr(
        [
            Obj(("type", Str(kind)), ("text", Str(draw(target_texts), target)))
            if kind == part_type
            else Obj(("type", Str(kind)), ("data", Str("AAAA")))
            for kind in chosen
        ]
    )


def shuffled(draw, *members) -> Obj:
    return Obj(*draw(st.permutations(list(members))))


@st.composite
def chat_bodies(draw):
    history = [
        shuffled(
            draw,
            ("role", Str(draw(st.sampled_from(["system", "user", "assistant", "tool"])))),
            ("content", Str(draw(texts))),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    live = [
        shuffled(draw, ("role", Str("user")), ("content", parts(draw, "text", True))),
        shuffled(draw, ("role", Str("tool")), ("tool_call_id", Str("c")), ("content", parts(draw, "text", True))),
    ]
    messages = history + draw(st.permutations(live))
    fields = [
        ("model", Str("gpt-4o")),
        ("messages", Arr(messages)),
        ("tools", Arr([Obj(("type", Str("function")))])),
        *draw(unknown_fields),
    ]
    return Endpoint.CHAT, shuffled(draw, *fields)


@st.composite
def anthropic_bodies(draw):
    marked = Obj(("type", Str("text")), ("text", Str(draw(texts))), ("cache_control", Obj(("type", Str("ephemeral")))))
    frozen = Obj(("role", Str("user")), ("content", Arr([marked])))
    thinking = Obj(("type", Str("thinking")), ("thinking", Str(draw(texts))), ("signature", Str("sig/+=")))
    assistant = Obj(
        ("role", Str("assistant")),
        ("content", Arr([thinking, Obj(("type", Str("tool_use")), ("id", Str("t")), ("input", draw(noise)))])),
    )
    result = Obj(("type", Str("tool_result")), ("tool_use_id", Str("t")), ("content", parts(draw, "text", True)))
    latest = shuffled(
        draw,
        ("role", Str("user")),
        ("content", Arr([result, Obj(("type", Str("text")), ("text", Str(draw(target_texts), True)))])),
    )
    fields = [
        ("model", Str("claude")),
        ("messages", Arr([frozen, assistant, latest])),
        ("system", Str(draw(texts))),
        *draw(unknown_fields),
    ]
    return Endpoint.ANTHROPIC, shuffled(draw, *fields)


@st.composite
def responses_bodies(draw):
    items = [
        Obj(("type", Str("reasoning")), ("encrypted_content", Str(draw(texts)))),
        Obj(("type", Str("function_call")), ("call_id", Str("c")), ("arguments", Str(draw(texts)))),
        shuffled(
            draw,
            ("type", Str("function_call_output")),
            ("call_id", Str("c")),
            ("output", Str(draw(target_texts), True)),
        ),
        Obj(("type", Str("unknown_thing")), ("text", Str(draw(texts)))),
    ]
    user = shuffled(draw, ("type", Str("message")), ("role", Str("user")), ("content", parts(draw, "input_text", True)))
    fields = [
        ("model", Str("gpt-5")),
        ("input", Arr([user, *items])),
        ("instructions", Str(draw(texts))),
        *draw(unknown_fields),
    ]
    return Endpoint.RESPONSES, shuffled(draw, *fields)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(chat_bodies(), anthropic_bodies(), responses_bodies()), st.randoms(use_true_random=False))
def test_only_live_zone_literals_change(request, rng):
    endpoint, tree = request
    writer = Writer(rng)
    writer.ws()
    writer.value(tree)
    writer.ws()
    body = bytes(writer.out)

    outcome = compress_request(body, endpoint, compressor, mode="live_zone")
    event(f"{endpoint.name} {outcome.decision} {outcome.reason}")

    expected = bytearray()
    cursor = 0
    for start, end, text in writer.targets:
        literal = expected_literal(text)
        expected += body[cursor:start] + (body[start:end] if literal is None else literal)
        cursor = end
    expected += body[cursor:]
    assert outcome.body == bytes(expected), outcome
    assert outcome.decision == ("compressed" if outcome.body != body else "no_change"), outcome
    json.loads(outcome.body)


@settings(max_examples=40, deadline=None)
@given(chat_bodies(), st.randoms(use_true_random=False))
def test_duplicate_key_on_the_path_passes_through_untouched(request, rng):
    endpoint, tree = request
    writer = Writer(rng)
    writer.value(Obj(*tree.members, ("model", Str("other"))))
    body = bytes(writer.out)
    outcome = compress_request(body, endpoint, compressor, mode="live_zone")
    assert outcome.body is body
    if writer.targets:
        assert (outcome.decision, outcome.reason) == ("passthrough", "spans_not_found")
