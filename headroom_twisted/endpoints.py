"""The endpoint table: what each request path means to the proxy, decided in one place.

A request path names three things the proxy cares about: the provider whose
upstream it goes to, the LLM API (if any) whose body may be compressed and
whose response carries usage, and the bounded label it is counted under in
`/metrics` and `/stats`. All three are read from the path alone, as the
client sent it with the query string cut off (`path_of`), and computed once
per request into a `Route` (see `upstream.routing`).

Matching is exact for the LLM APIs: no trailing slash, no percent-encoding,
no case folding, because the upstream would treat those as other resources;
the provider is Anthropic for `/v1/messages` and every path below it.
Nothing here knows HTTP beyond the path bytes, so `compress/` and `sse/`
can depend on it.
"""

from __future__ import annotations

import enum


class Provider(enum.Enum):
    """Whose upstream a request goes to, and whose error shape and prices apply."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class Endpoint(enum.Enum):
    """The three LLM APIs: their requests carry tool outputs and their responses report usage."""

    CHAT = "/v1/chat/completions"
    ANTHROPIC = "/v1/messages"
    RESPONSES = "/v1/responses"

    @property
    def provider(self) -> Provider:
        return Provider.ANTHROPIC if self is Endpoint.ANTHROPIC else Provider.OPENAI


LABELLED_PATHS = frozenset(
    {
        *(endpoint.value for endpoint in Endpoint),
        "/v1/messages/count_tokens",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
    }
)
"""Paths counted under their own name in metrics; every other path is `other`."""

OTHER_LABEL = "other"

_ENDPOINTS = {endpoint.value.encode("ascii"): endpoint for endpoint in Endpoint}
_ANTHROPIC_ROOT = Endpoint.ANTHROPIC.value.encode("ascii")


def path_of(request_target: bytes) -> bytes:
    """The path of a request target: everything before the first `?`."""
    return request_target.split(b"?", 1)[0]


def provider_for_path(path: bytes) -> Provider:
    """`/v1/messages` and every path below it is Anthropic; all else is OpenAI."""
    if path == _ANTHROPIC_ROOT or path.startswith(_ANTHROPIC_ROOT + b"/"):
        return Provider.ANTHROPIC
    return Provider.OPENAI


def endpoint_for_path(path: bytes) -> Endpoint | None:
    """The LLM API a path names exactly, or None."""
    return _ENDPOINTS.get(path)


def label_for_path(path: bytes) -> str:
    """The bounded metrics label: a known path itself, else `other`."""
    text = path.decode("latin-1")
    return text if text in LABELLED_PATHS else OTHER_LABEL
