"""Log output: JSON lines and console format, and secrets scrubbed from every line."""

from __future__ import annotations

import datetime
import io
import json
import re

import pytest
import structlog

from headroom_twisted.logging import configure_logging


@pytest.fixture
def log_stream():
    stream = io.BytesIO()
    yield stream
    structlog.reset_defaults()


def test_json_lines_scrub_secrets_by_key_and_by_shape(log_stream: io.BytesIO) -> None:
    configure_logging("json", "info", stream=log_stream)
    log = structlog.get_logger("t").bind(request_id="r1")
    log.info("probe", authorization="Bearer sk-abcdefghijklmnop", note="key sk-ant-api03-secretsecret here")
    log.debug("hidden")
    lines = log_stream.getvalue().decode().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "probe" and event["request_id"] == "r1" and event["level"] == "info"
    assert event["authorization"] == "[redacted]"
    assert "secretsecret" not in lines[0] and "abcdefghijklmnop" not in lines[0]


def test_console_format_is_for_humans(log_stream: io.BytesIO) -> None:
    configure_logging("console", "debug", stream=log_stream)
    structlog.get_logger("t").debug("probe", x_api_key="0123456789abcdef")
    text = log_stream.getvalue().decode()
    assert "probe" in text and not text.startswith("{")
    assert "0123456789abcdef" not in text


def test_timestamp_is_what_structlogs_iso_utc_stamper_writes(log_stream: io.BytesIO) -> None:
    from unittest import mock

    from headroom_twisted.logging import UTCTimeStamper

    stamper = UTCTimeStamper()
    for now_ns in (1_767_225_600_000_000_000, 1_767_225_600_000_001_000, 1_767_225_661_987_654_321):
        with mock.patch("time.time_ns", return_value=now_ns):
            stamped = stamper(None, "info", {})["timestamp"]
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        expected = epoch + datetime.timedelta(microseconds=now_ns // 1000)
        assert stamped == expected.isoformat().replace("+00:00", "Z")
    configure_logging("json", "info", stream=log_stream)
    structlog.get_logger("t").info("probe")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", json.loads(log_stream.getvalue())["timestamp"])


CREDENTIAL_QUERIES = [
    "key",
    "api-key",
    "api_key",
    "x-goog-api-key",
    "token",
    "access_token",
    "sig",
    "signature",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "client_secret",
    "password",
]


@pytest.mark.parametrize("name", CREDENTIAL_QUERIES)
def test_credential_query_values_are_scrubbed_in_any_text(log_stream: io.BytesIO, name: str) -> None:
    configure_logging("json", "info", stream=log_stream)
    url = f"http://upstream.example/v1/models?model=gpt-4o&{name}=Q1secretvalue&limit=10"
    structlog.get_logger("t").warning("probe", error=f"ValueError: Invalid URI {url.encode()!r}", url=url)
    line = log_stream.getvalue().decode()
    assert "Q1secretvalue" not in line
    event = json.loads(line)
    assert event["url"] == f"http://upstream.example/v1/models?model=gpt-4o&{name}=[redacted]&limit=10"


@pytest.mark.parametrize(
    "target",
    ["http://user:U1secretvalue@h/v1/chat/completions", "HTTPS://U1secretvalue@h:8443/v1/x?model=m", "//a@b"],
)
def test_userinfo_in_a_logged_target_is_scrubbed(log_stream: io.BytesIO, target: str) -> None:
    """An absolute-form request target reaches `path` of a refusal's `request_finished` as sent."""
    configure_logging("json", "info", stream=log_stream)
    structlog.get_logger("t").warning("request_finished", path=target, status=400)
    line = log_stream.getvalue().decode()
    assert "U1secretvalue" not in line
    path = json.loads(line)["path"]
    assert path == target if "://" not in target else path.endswith(target.split("@", 1)[1]) and "[redacted]@" in path


def test_tracebacks_are_scrubbed_too(log_stream: io.BytesIO) -> None:
    """structlog formats `exc_info` into text; scrubbing must see that text, not run before it."""
    configure_logging("json", "info", stream=log_stream)
    try:
        raise ValueError("Invalid URI b'http://upstream.example/v1/models?key=T1secretvalue&x=\\x7f'")
    except ValueError as error:
        structlog.get_logger("t").error("proxy_internal_error", exc_info=error)
    line = log_stream.getvalue().decode()
    assert "Traceback" in json.loads(line)["exception"]
    assert "T1secretvalue" not in line


def test_twisted_failures_are_scrubbed_too(log_stream: io.BytesIO) -> None:
    from twisted.logger import LogLevel
    from twisted.python.failure import Failure

    from headroom_twisted.logging import StructlogObserver

    configure_logging("json", "info", stream=log_stream)
    try:
        raise ValueError("Invalid URI b'http://upstream.example/v1?access_token=W1secretvalue'")
    except ValueError:
        failure = Failure()
    StructlogObserver()(
        {"log_level": LogLevel.critical, "log_format": "Unhandled Error", "log_failure": failure, "log_system": "-"}
    )
    line = log_stream.getvalue().decode()
    assert "Unhandled Error" in line and "W1secretvalue" not in line


def test_ordinary_query_values_and_big_numbers_are_logged_as_they_are(log_stream: io.BytesIO) -> None:
    configure_logging("json", "info", stream=log_stream)
    structlog.get_logger("t").info("probe", path="/v1/models?after=m1&limit=10&order=desc", bytes_in=2**70)
    event = json.loads(log_stream.getvalue())
    assert event["path"] == "/v1/models?after=m1&limit=10&order=desc"
    assert event["bytes_in"] == 2**70
