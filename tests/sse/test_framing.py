"""The framer: WHATWG event-stream rules, any chunking, bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_twisted.sse.framing import SSEEvent, SSEFramer

from .streams import fixture, fixture_names, split_at


def frame(*chunks: bytes, cap: int = 1 << 20) -> tuple[list[SSEEvent], SSEFramer]:
    framer = SSEFramer(cap)
    events = [event for chunk in chunks for event in framer.feed(chunk)]
    return events, framer


def test_line_endings_are_equivalent() -> None:
    body = "event: a\ndata: one\n\ndata: two\ndata: three\n\n"
    expected = [SSEEvent("a", "one"), SSEEvent("message", "two\nthree")]
    for newline in ("\n", "\r\n", "\r"):
        events, _ = frame(body.replace("\n", newline).encode())
        assert events == expected, repr(newline)


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    events, _ = frame(b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n")
    assert events == [SSEEvent("message", "x"), SSEEvent("message", "y")]


def test_comments_and_pings_are_counted_not_dispatched() -> None:
    events, framer = frame(b": ping\n\n:\n\ndata: x\n: mid-event comment\n\n")
    assert events == [SSEEvent("message", "x")]
    assert framer.comments == 3


def test_field_parsing() -> None:
    events, _ = frame(
        b"id: 7\nretry: 1500\nevent: custom\ndata:no-space\ndata:  two-spaces\ndata\nunknown: z\n\ndata: after\n\n"
    )
    assert events == [
        SSEEvent("custom", "no-space\n two-spaces\n", id="7", retry=1500),
        SSEEvent("message", "after", id="7"),
    ]


def test_event_without_data_is_not_dispatched() -> None:
    events, _ = frame(b"event: lonely\n\ndata: x\n\n")
    assert events == [SSEEvent("message", "x")]


def test_invalid_id_and_retry_are_ignored() -> None:
    events, _ = frame(b"id: a\x00b\nretry: soon\ndata: x\n\n")
    assert events == [SSEEvent("message", "x")]


def test_leading_bom_is_stripped_even_when_split() -> None:
    events, _ = frame(b"\xef", b"\xbb\xbfdata: x\n\n")
    assert events == [SSEEvent("message", "x")]


def test_done_sentinel_is_plain_data() -> None:
    events, _ = frame(b"data: [DONE]\n\n")
    assert events == [SSEEvent("message", "[DONE]")]


def test_incomplete_event_at_end_is_not_dispatched() -> None:
    events, _ = frame(b"data: x\n\ndata: y\n")
    assert events == [SSEEvent("message", "x")]


def test_multibyte_character_split_across_chunks() -> None:
    body = "data: é🌍日\n\n".encode()
    for cut in range(len(body)):
        events, _ = frame(body[:cut], body[cut:])
        assert events == [SSEEvent("message", "é🌍日")]


def test_runaway_line_is_dropped_and_counted_then_framing_resumes() -> None:
    framer = SSEFramer(max_event_bytes=64)
    events = framer.feed(b"data: ")
    for _ in range(100):
        events += framer.feed(b"x" * 50)
    events += framer.feed(b"\ndata: more of it\n\ndata: ok\n\n")
    assert events == [SSEEvent("message", "ok")]
    assert framer.oversized_events == 1
    assert len(framer._partial) == 0


def test_runaway_event_of_many_lines_is_dropped() -> None:
    framer = SSEFramer(max_event_bytes=64)
    events = framer.feed(b"event: big\n" + b"data: 0123456789\n" * 20 + b"\ndata: ok\n\n")
    assert events == [SSEEvent("message", "ok")]
    assert framer.oversized_events == 1


def test_cap_boundary_does_not_depend_on_chunking() -> None:
    body = b"event: e\ndata: " + b"x" * 60 + b"\n\ndata: ok\n\n"
    for cap, kept in ((75, ["x" * 60, "ok"]), (74, ["ok"])):
        for cut in range(len(body) + 1):
            events, framer = frame(body[:cut], body[cut:], cap=cap)
            assert [e.data for e in events] == kept, (cap, cut)
            assert framer.oversized_events == (0 if cap == 75 else 1)


def test_byte_at_a_time() -> None:
    body = fixture("anthropic_thinking")
    assert frame(*(body[i : i + 1] for i in range(len(body))))[0] == frame(body)[0]


_NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(fixture_names()), newline=_NEWLINES, data=st.data())
def test_any_chunking_and_line_ending_gives_the_same_events(name: str, newline: str, data: st.DataObject) -> None:
    body = fixture(name).replace(b"\n", newline.encode())
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=40))
    assert frame(*split_at(body, cuts))[0] == frame(fixture(name))[0]


_FIELDISH = st.lists(
    st.one_of(
        st.binary(max_size=30),
        st.sampled_from(
            [
                b"\n",
                b"\r",
                b"\r\n",
                b"\n\n",
                b"data: ",
                b"event: ",
                b"id: ",
                b"retry: 5",
                b":",
                b"\xef\xbb\xbf",
                b"\xf0\x9f",
            ]
        ),
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(body=_FIELDISH, cuts=st.lists(st.integers(0, 400), max_size=20), cap=st.integers(1, 64))
def test_arbitrary_bytes_never_raise_and_chunking_never_matters(body: bytes, cuts: list[int], cap: int) -> None:
    whole, framer = frame(body, cap=cap)
    split, split_framer = frame(*split_at(body, cuts), cap=cap)
    assert split == whole
    assert split_framer.oversized_events == framer.oversized_events
    assert split_framer.comments == framer.comments
