"""structlog setup: JSON lines on stdout (or console), secrets scrubbed.

Twisted's own log events are routed through the same structlog pipeline so
an operator sees one stream of one format.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import BinaryIO, cast

import orjson
import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger
from twisted.logger import ILogObserver, LogEvent, LogLevel, formatEvent
from zope.interface import implementer

from headroom_twisted.config import LogFormat, LogLevelName

_SECRET_KEYS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"})
_SECRET_PATTERN = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+|\b(sk-(?:ant-)?[A-Za-z0-9_-]{8,})")
_REDACTED = "[redacted]"

# A query parameter in a URL, wherever one appears in a log line (an error
# message, a traceback, the repr of bytes). The name is bounded so the
# pattern stays linear on any input; which names are credentials is decided
# in Python, on the name alone.
_QUERY_PARAMETER = re.compile(r"([?&;])([^=&;?\s'\"]{1,64})=([^&;\s'\"#]*)")
# Userinfo in a URL (`http://user:secret@host/...`), as an absolute-form request
# target may carry it; both parts are bounded so the pattern stays linear.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^/\s@?#'\"]{1,256}@")
_CREDENTIAL_WORDS = ("key", "token", "secret", "password", "passwd", "signature", "credential", "auth")
_CREDENTIAL_NAMES = frozenset({"sig", "pwd", "pass", "code"})


def scrub_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Replace anything that looks like a credential, by key, by shape, or as a URL query value.

    It runs on every event, so the regexes only see strings that contain one
    of their literal parts; case folding maps every character the
    case-insensitive regex accepts there (even `ſ` and the Kelvin sign) to
    the ASCII letter, so that pre-check never skips a match.
    """
    for key, value in event_dict.items():  # only existing keys are reassigned
        if key.lower().replace("_", "-") in _SECRET_KEYS:
            event_dict[key] = _REDACTED
        elif isinstance(value, str):
            event_dict[key] = scrub_text(value)
    return event_dict


def scrub_text(value: str) -> str:
    """`value` with bearer tokens, provider keys, URL userinfo and credential-like query values redacted."""
    folded = value.casefold()
    if ("bearer" in folded or "sk-" in folded) and _SECRET_PATTERN.search(value):
        value = _SECRET_PATTERN.sub(_redact_match, value)
    if "@" in value and "://" in value:
        value = _USERINFO.sub(lambda match: f"{match.group(1)}{_REDACTED}@", value)
    if "=" in value:
        value = _QUERY_PARAMETER.sub(_redact_query_value, value)
    return value


def _redact_match(match: re.Match[str]) -> str:
    return (match.group(1) or "") + _REDACTED


def is_credential_name(name: str) -> bool:
    """`key`, `api-key`, `api_key`, `access_token`, `X-Amz-Signature`, `sig`, `password`, ..."""
    folded = name.casefold().replace("%5f", "_").replace("%2d", "-")
    return folded in _CREDENTIAL_NAMES or any(word in folded for word in _CREDENTIAL_WORDS)


def _redact_query_value(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    if not value or not is_credential_name(name):
        return match.group(0)
    return f"{separator}{name}={_REDACTED}"


class UTCTimeStamper:
    """`timestamp` as structlog's `TimeStamper(fmt="iso", utc=True)` writes it, for less.

    Same text (`2026-01-31T12:00:00.123456Z`, no fraction when the
    microsecond is 0), but the date and time of day are formatted once per
    second instead of building an aware datetime for every event. The cache
    is one tuple, replaced whole, so threads logging at once never mix the
    prefix of one second with another.
    """

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        second, micro = divmod(time.time_ns() // 1000, 1_000_000)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        event_dict["timestamp"] = f"{prefix}.{micro:06d}Z" if micro else prefix + "Z"
        return event_dict


class _ConsoleBytesRenderer:
    """structlog's console rendering, as the UTF-8 bytes the output stream takes."""

    def __init__(self) -> None:
        self._render = structlog.dev.ConsoleRenderer(colors=False)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> bytes:
        return self._render(logger, method_name, event_dict).encode("utf-8", "replace")


def configure_logging(
    log_format: LogFormat = "json", level: LogLevelName = "info", stream: BinaryIO | None = None
) -> None:
    """Configure structlog once for the process: one line per event on `stream`.

    The default stream is the binary buffer of the process's real stdout:
    twistd replaces `sys.stdout` with a file that feeds Twisted's logger,
    which feeds structlog, which must not write back into it.
    """
    out = stream if stream is not None else _real_stdout()
    renderer: Processor
    if log_format == "console":
        renderer = _ConsoleBytesRenderer()
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            UTCTimeStamper(),
            # Tracebacks are text before scrubbing: an exception message may quote a URL.
            structlog.processors.format_exc_info,
            scrub_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.BytesLoggerFactory(out),
        # A bound logger resolves the configuration once, not on every bind
        # (each request binds its request_id); reconfiguring affects loggers
        # first used after it.
        cache_logger_on_first_use=True,
    )


def _real_stdout() -> BinaryIO:
    if sys.__stdout__ is None:
        raise RuntimeError("the process has no standard output to log to")
    return cast(BinaryIO, sys.__stdout__.buffer)  # a BufferedWriter; typeshed knows only its protocol


def _orjson_dumps(obj: object, default: Callable[[object], object] | None = None) -> bytes:
    """orjson, or the standard library for what orjson refuses (integers past 64 bits).

    A client-chosen number (a Content-Length of 2**64) must never turn a log
    call into an exception on the reactor thread.
    """
    try:
        return orjson.dumps(obj, default=default or str)
    except TypeError:
        return json.dumps(obj, default=default or str, ensure_ascii=False).encode("utf-8", "replace")


_TWISTED_LEVELS: Mapping[LogLevel, str] = {
    LogLevel.debug: "debug",
    LogLevel.info: "info",
    LogLevel.warn: "warning",
    LogLevel.error: "error",
    LogLevel.critical: "critical",
}


@implementer(ILogObserver)
class StructlogObserver:
    """Forward Twisted log events into structlog as `twisted_log` events."""

    def __init__(self) -> None:
        self._log: FilteringBoundLogger = structlog.get_logger("twisted")

    def __call__(self, event: LogEvent) -> None:
        level = _TWISTED_LEVELS.get(event.get("log_level", LogLevel.info), "info")
        fields: dict[str, str] = {"system": event.get("log_system", "-")}
        failure = event.get("log_failure")
        if failure is not None:
            fields["exception"] = failure.getTraceback()
        getattr(self._log, level)("twisted_log", message=formatEvent(event), **fields)
