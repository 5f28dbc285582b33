"""One frozen, validated Config built from command-line flags and HEADROOM_* variables.

Every option can come from the environment (`--max-body-bytes` reads
`HEADROOM_MAX_BODY_BYTES`) so a systemd EnvironmentFile can carry the whole
configuration; a flag given on the command line wins over the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar, get_args
from urllib.parse import urlsplit

MIB = 1024 * 1024

T = TypeVar("T")
Choice = TypeVar("Choice", bound=str)

CompressingMode = Literal["stable", "live_zone"]
"""The modes the compression pipeline runs in: every mode but ``off``, which the gate turns away."""
CompressionMode = Literal[CompressingMode, "off"]
LogFormat = Literal["json", "console"]
LogLevelName = Literal["debug", "info", "warning", "error"]
COMPRESSION_MODES: tuple[CompressionMode, ...] = get_args(CompressionMode)
LOG_FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)
LOG_LEVEL_NAMES: tuple[LogLevelName, ...] = get_args(LogLevelName)


class ConfigError(ValueError):
    """A bad option value; its message is the one line the operator sees."""


@dataclass(frozen=True)
class UpstreamURL:
    """A provider base URL: scheme, host, port and an optional base path."""

    scheme: str
    host: str
    port: int
    base_path: str

    @property
    def origin(self) -> str:
        default_port = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = host if self.port == default_port else f"{host}:{self.port}"
        return f"{self.scheme}://{netloc}"

    def url_for(self, path_and_query: bytes) -> bytes:
        """Upstream URL = origin + base path + the client's path and query, verbatim."""
        return (self.origin + self.base_path).encode("ascii") + path_and_query


@dataclass(frozen=True)
class Config:
    listen: tuple[str, ...]
    openai_upstream: UpstreamURL
    anthropic_upstream: UpstreamURL
    compression: CompressionMode
    max_body_bytes: int
    max_inflight_body_bytes: int
    compression_max_body_bytes: int
    compression_memo_bytes: int
    compression_timeout: float
    threads: int
    connect_timeout: float
    idle_timeout: float
    drain_timeout: float
    log_format: LogFormat
    log_level: LogLevelName
    max_inflight_body_bytes_per_client: int = 512 * MIB
    local_hosts: tuple[str, ...] = ()
    upstream_keepalive: int = 50
    state_dir: str = ""


@dataclass(frozen=True)
class OptionSpec:
    """What one option is called, its default, and how its text becomes a value."""

    name: str
    default: str
    help: str


OPTION_SPECS: tuple[OptionSpec, ...] = (
    OptionSpec("openai-upstream", "https://api.openai.com", "Base URL for every path that is not Anthropic's."),
    OptionSpec("anthropic-upstream", "https://api.anthropic.com", "Base URL for /v1/messages and below."),
    OptionSpec(
        "compression",
        "stable",
        "stable (every tool output, rewritten identically on every turn), live_zone (newest turn only) or off.",
    ),
    OptionSpec("max-body-bytes", "100MiB", "Larger request bodies get 413; nothing is forwarded."),
    OptionSpec(
        "max-inflight-body-bytes",
        "1GiB",
        "All request bodies held at once; a body that does not fit gets 503 with Retry-After.",
    ),
    OptionSpec(
        "max-inflight-body-bytes-per-client",
        "512MiB",
        "Of those, what one client address may hold; at least --max-body-bytes, at most the whole budget.",
    ),
    OptionSpec("compression-max-body-bytes", "16MiB", "Larger bodies are forwarded untouched."),
    OptionSpec(
        "compression-memo-bytes",
        "64MiB",
        "Memory for remembered rewrites, so resent blocks are not compressed again (0: none).",
    ),
    OptionSpec(
        "compression-timeout",
        "5",
        "Seconds a body may spend in compression; past it the original bytes go upstream.",
    ),
    OptionSpec("threads", "4", "Size of the compression thread pool."),
    OptionSpec("connect-timeout", "10", "Seconds to connect to the upstream."),
    OptionSpec("idle-timeout", "600", "Seconds without upstream bytes before 504 (or end of stream)."),
    OptionSpec("drain-timeout", "30", "Seconds in-flight requests get to finish on SIGTERM."),
    OptionSpec(
        "upstream-keepalive",
        "50",
        "Seconds an idle upstream connection is kept for reuse; keep it below the upstream's own idle timeout.",
    ),
    OptionSpec("log-format", "json", "json (one object per line on stdout) or console."),
    OptionSpec("log-level", "info", "debug, info, warning or error."),
    OptionSpec(
        "state-dir",
        "",
        "A directory for the remembered rewrites, kept across restarts and shared by the instances of one host "
        "(empty: memory only).",
    ),
    OptionSpec(
        "local-hosts",
        "",
        "Host names, comma-separated, that /dashboard, /stats and /metrics answer besides localhost and IP addresses.",
    ),
)
LISTEN_DEFAULT = ("tcp:8787:interface=127.0.0.1",)

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}


def env_name(option: str) -> str:
    """`max-body-bytes` -> `HEADROOM_MAX_BODY_BYTES`."""
    return "HEADROOM_" + option.upper().replace("-", "_")


def parse_size(text: str) -> int:
    """Bytes as an integer with an optional K/M/G (binary) suffix: `16MiB`, `512k`, `1048576`."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size (examples: 1048576, 512KiB, 16MiB, 1GiB)")
    number, unit = match.groups()
    return int(number) * _SIZE_FACTORS[(unit or "")[:1].lower()]


def parse_positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return value


def parse_seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{text!r} must be a positive number of seconds")
    return value


def parse_non_negative_seconds(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{text!r} must be zero or a positive number of seconds")
    return value


def parse_upstream(text: str) -> UpstreamURL:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{text!r} must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{text!r} has no host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{text!r} must not carry a query, fragment or credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise ValueError(f"{text!r} has a bad port") from error
    return UpstreamURL(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def one_of(choices: tuple[Choice, ...]) -> Callable[[str], Choice]:
    """A parser that accepts one of ``choices`` (the arguments of a Literal type), in any case."""

    def parse(text: str) -> Choice:
        value = text.strip().lower()
        for choice in choices:
            if value == choice:
                return choice
        raise ValueError(f"{text!r} is not one of {', '.join(choices)}")

    return parse


def parse_host_names(text: str) -> tuple[str, ...]:
    """``proxy.internal, metrics.example`` -> ``("proxy.internal", "metrics.example")``, lower-cased."""
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    for name in names:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", name):
            raise ValueError(f"{name!r} is not a host name")
    return names


def parse_listen(text: str) -> str:
    value = text.strip()
    if not value or ":" not in value:
        raise ValueError(f"{text!r} is not a Twisted endpoint description such as tcp:8787:interface=127.0.0.1")
    return value


def build_config(
    flags: Mapping[str, str | None],
    listen_flags: Sequence[str],
    environ: Mapping[str, str],
) -> Config:
    """Merge flags over environment over defaults, parse and validate every value.

    Raises ConfigError with a one-line message naming the option and the source.
    """

    def value_of(option: str, parse: Callable[[str], T]) -> T:
        spec = next(s for s in OPTION_SPECS if s.name == option)
        flag = flags.get(option)
        if flag is not None:
            text, source = flag, f"--{option}"
        elif env_name(option) in environ:
            text, source = environ[env_name(option)], env_name(option)
        else:
            text, source = spec.default, f"--{option} default"
        try:
            return parse(text)
        except ValueError as error:
            raise ConfigError(f"bad value for {source}: {error}") from None

    if listen_flags:
        listen_texts, listen_source = list(listen_flags), "--listen"
    elif env_name("listen") in environ:
        listen_texts, listen_source = environ[env_name("listen")].split(), env_name("listen")
    else:
        listen_texts, listen_source = list(LISTEN_DEFAULT), "--listen default"
    try:
        listen = tuple(parse_listen(text) for text in listen_texts)
    except ValueError as error:
        raise ConfigError(f"bad value for {listen_source}: {error}") from None
    if not listen:
        raise ConfigError(f"bad value for {listen_source}: no endpoint given")

    config = Config(
        listen=listen,
        openai_upstream=value_of("openai-upstream", parse_upstream),
        anthropic_upstream=value_of("anthropic-upstream", parse_upstream),
        compression=value_of("compression", one_of(COMPRESSION_MODES)),
        max_body_bytes=value_of("max-body-bytes", parse_size),
        max_inflight_body_bytes=value_of("max-inflight-body-bytes", parse_size),
        compression_max_body_bytes=value_of("compression-max-body-bytes", parse_size),
        compression_memo_bytes=value_of("compression-memo-bytes", parse_size),
        compression_timeout=value_of("compression-timeout", parse_seconds),
        threads=value_of("threads", parse_positive_int),
        connect_timeout=value_of("connect-timeout", parse_seconds),
        idle_timeout=value_of("idle-timeout", parse_seconds),
        drain_timeout=value_of("drain-timeout", parse_non_negative_seconds),
        log_format=value_of("log-format", one_of(LOG_FORMATS)),
        log_level=value_of("log-level", one_of(LOG_LEVEL_NAMES)),
        max_inflight_body_bytes_per_client=value_of("max-inflight-body-bytes-per-client", parse_size),
        local_hosts=value_of("local-hosts", parse_host_names),
        upstream_keepalive=value_of("upstream-keepalive", parse_positive_int),
        state_dir=value_of("state-dir", str.strip),
    )
    if config.max_body_bytes < 1:
        raise ConfigError("bad value for --max-body-bytes: must be at least 1 byte")
    if config.max_inflight_body_bytes < config.max_body_bytes:
        raise ConfigError("bad value for --max-inflight-body-bytes: must be at least --max-body-bytes")
    per_client = config.max_inflight_body_bytes_per_client
    if not config.max_body_bytes <= per_client:
        raise ConfigError("bad value for --max-inflight-body-bytes-per-client: must be at least --max-body-bytes")
    if per_client > config.max_inflight_body_bytes:
        config = replace(config, max_inflight_body_bytes_per_client=config.max_inflight_body_bytes)
    return config
