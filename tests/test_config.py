"""Config parsing and validation: flags over environment over defaults, one clear line per bad value."""

from __future__ import annotations

import pytest

from headroom_twisted.config import ConfigError, build_config, parse_size, parse_upstream


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1048576", 1048576), ("512KiB", 512 * 1024), ("16MiB", 16 * 1024 * 1024), ("1g", 1024**3), ("7 b", 7)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "-1", "1.5MiB", "12XB", "MiB"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_upstream_keeps_base_path_and_builds_urls_verbatim() -> None:
    upstream = parse_upstream("https://gateway.example:8443/openai/")
    assert (
        upstream.url_for(b"/v1/chat/completions?a=1") == b"https://gateway.example:8443/openai/v1/chat/completions?a=1"
    )
    assert parse_upstream("http://[::1]:8080").url_for(b"/x") == b"http://[::1]:8080/x"


def test_defaults_match_the_spec() -> None:
    config = build_config({}, [], {})
    assert config.listen == ("tcp:8787:interface=127.0.0.1",)
    assert config.openai_upstream.origin == "https://api.openai.com"
    assert config.anthropic_upstream.origin == "https://api.anthropic.com"
    assert (config.compression, config.threads, config.log_format, config.log_level) == ("stable", 4, "json", "info")
    assert config.compression_memo_bytes == 64 * 1024 * 1024
    assert config.max_body_bytes == 100 * 1024 * 1024
    assert config.compression_max_body_bytes == 16 * 1024 * 1024
    assert (config.connect_timeout, config.idle_timeout, config.drain_timeout) == (10.0, 600.0, 30.0)


def test_listen_from_environment_is_space_separated() -> None:
    config = build_config({}, [], {"HEADROOM_LISTEN": "tcp:1:interface=127.0.0.1  unix:/run/h.sock"})
    assert config.listen == ("tcp:1:interface=127.0.0.1", "unix:/run/h.sock")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"idle-timeout": "0"}, "--idle-timeout"),
        ({"connect-timeout": "nan"}, "--connect-timeout"),
        ({"drain-timeout": "-1"}, "--drain-timeout"),
        ({"log-level": "loud"}, "--log-level"),
        ({"anthropic-upstream": "https://user:pw@host"}, "--anthropic-upstream"),
    ],
)
def test_bad_values_name_the_option(flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(flags, [], {})


def test_local_hosts_are_a_comma_separated_list_of_names() -> None:
    from headroom_twisted.config import ConfigError, build_config

    assert build_config({"local-hosts": " proxy.lan, Metrics.Example "}, [], {}).local_hosts == (
        "proxy.lan",
        "metrics.example",
    )
    assert build_config({}, [], {}).local_hosts == ()
    with pytest.raises(ConfigError, match="bad value for --local-hosts"):
        build_config({"local-hosts": "proxy lan"}, [], {})
