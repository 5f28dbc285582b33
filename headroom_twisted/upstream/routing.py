"""Where a request goes: its `Route`, computed once from the request target.

The upstream is chosen by the request path alone: a Host header or an
absolute-form request URI never names where the proxy connects, so the
proxy cannot be used as an open proxy. What the path means (provider, LLM
API, metrics label) comes from the one table in `headroom_twisted.endpoints`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from headroom_twisted.config import Config, UpstreamURL
from headroom_twisted.endpoints import Endpoint, Provider, endpoint_for_path, label_for_path, path_of, provider_for_path


@dataclass(frozen=True)
class Route:
    """Everything the proxy needs to know about a request's path, read once."""

    provider: Provider
    endpoint: Endpoint | None  # the LLM API the path names exactly, if any
    label: str  # the bounded metrics label: a known path, or `other`
    upstream: UpstreamURL
    path: bytes  # the path without the query string, as the client sent it
    url: bytes  # the full upstream URL


class BadRequestTarget(ValueError):
    """A request target the proxy cannot forward; the message is safe to show and log.

    It never quotes the target itself: a query string may carry a key.
    """


NOT_A_PATH = "request target must be a path such as /v1/chat/completions"
NOT_VISIBLE_ASCII = "request target must be visible ASCII; percent-encode other bytes"

# What Twisted's HTTP client accepts in a URL. Its server lets more through
# (DEL and bytes up to 0xB0), which the client would then refuse with an
# exception quoting the whole URL, key and all.
_SENDABLE_TARGET = re.compile(rb"\A[\x21-\x7e]+\Z")


def origin_form(request_target: bytes) -> bytes:
    """Reduce a request target to `/path?query`.

    Absolute-form (`http://host/path`) is legal HTTP/1.1; its authority is
    ignored on purpose. Anything else that does not start with `/` (`*`,
    authority-form `host:443`) is refused, and so is a target the upstream
    client could not send.
    """
    target = request_target
    lowered = target[:8].lower()
    if lowered.startswith(b"http://") or lowered.startswith(b"https://"):
        after_scheme = target.split(b"//", 1)[1]
        slash = after_scheme.find(b"/")
        question = after_scheme.find(b"?")
        if slash == -1 or (question != -1 and question < slash):
            rest = after_scheme[question:] if question != -1 else b""
            target = b"/" + rest
        else:
            target = after_scheme[slash:]
    if not target.startswith(b"/"):
        raise BadRequestTarget(NOT_A_PATH)
    if not _SENDABLE_TARGET.match(target):
        raise BadRequestTarget(NOT_VISIBLE_ASCII)
    return target


def route(request_target: bytes, config: Config) -> Route:
    """The request's route; raises `BadRequestTarget` for a target the proxy cannot forward."""
    target = origin_form(request_target)
    path = path_of(target)
    provider = provider_for_path(path)
    upstream = config.anthropic_upstream if provider is Provider.ANTHROPIC else config.openai_upstream
    return Route(
        provider=provider,
        endpoint=endpoint_for_path(path),
        label=label_for_path(path),
        upstream=upstream,
        path=path,
        url=upstream.url_for(target),
    )
