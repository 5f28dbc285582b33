"""Which provider a request goes to, and the exact upstream URL.

The upstream is chosen by the request path alone: a Host header or an
absolute-form request URI never names where the proxy connects, so the
proxy cannot be used as an open proxy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from headroom_twisted.config import Config, UpstreamURL


class Provider(enum.Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


@dataclass(frozen=True)
class Route:
    provider: Provider
    upstream: UpstreamURL
    path: bytes  # the path without the query string, as the client sent it
    url: bytes  # the full upstream URL


class BadRequestTarget(ValueError):
    """The request target is neither origin-form nor absolute-form."""


def origin_form(request_target: bytes) -> bytes:
    """Reduce a request target to `/path?query`.

    Absolute-form (`http://host/path`) is legal HTTP/1.1; its authority is
    ignored on purpose. Anything else that does not start with `/` (`*`,
    authority-form `host:443`) is refused.
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
        raise BadRequestTarget(request_target)
    return target


def provider_for_path(path: bytes) -> Provider:
    """`/v1/messages` and every path below it is Anthropic; all else is OpenAI."""
    if path == b"/v1/messages" or path.startswith(b"/v1/messages/"):
        return Provider.ANTHROPIC
    return Provider.OPENAI


def route(request_target: bytes, config: Config) -> Route:
    target = origin_form(request_target)
    path = target.split(b"?", 1)[0]
    provider = provider_for_path(path)
    upstream = config.anthropic_upstream if provider is Provider.ANTHROPIC else config.openai_upstream
    return Route(provider=provider, upstream=upstream, path=path, url=upstream.url_for(target))
