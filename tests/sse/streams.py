"""Helpers shared by the SSE tests: fixtures, chunkings, a capturing logger."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import structlog
from structlog.testing import CapturingLogger
from structlog.typing import FilteringBoundLogger

from headroom_twisted.endpoints import endpoint_for_path
from headroom_twisted.sse.telemetry import SSETelemetry, telemetry_for
from headroom_twisted.upstream.observer import StreamEnd

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sse"

PATHS = {
    "openai_chat": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "responses": "/v1/responses",
}


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.sse").read_bytes()


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.sse"))


def path_for(name: str) -> str:
    return next(path for prefix, path in PATHS.items() if name.startswith(prefix))


def capturing_log() -> tuple[FilteringBoundLogger, CapturingLogger]:
    """A bound logger like the proxy's, recording calls instead of printing."""
    sink = CapturingLogger()
    log = structlog.wrap_logger(sink, processors=[], wrapper_class=structlog.make_filtering_bound_logger(0)).bind(
        request_id="req-test"
    )
    return log, sink


def split_at(data: bytes, cuts: Iterable[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted(set(cuts)):
        if 0 < cut < len(data):
            yield data[start:cut]
            start = cut
    yield data[start:]


def run(
    path: str, chunks: Iterable[bytes], end: StreamEnd = StreamEnd.COMPLETE
) -> tuple[SSETelemetry, CapturingLogger]:
    log, sink = capturing_log()
    observer = telemetry_for(endpoint_for_path(path.encode()), log)
    for chunk in chunks:
        observer.chunk(chunk)
    observer.finished(end)
    return observer, sink


def closed_events(sink: CapturingLogger) -> list[dict[str, object]]:
    return [call.kwargs for call in sink.calls if call.kwargs.get("event") == "sse_stream_closed"]


def parser_errors(sink: CapturingLogger) -> list[dict[str, object]]:
    return [call.kwargs for call in sink.calls if call.kwargs.get("event") == "sse_parser_error"]
