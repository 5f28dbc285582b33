"""The compression gate: which requests may even be parsed for compression.

The gate runs on the reactor thread and looks only at the request line, a
few headers and the body length, so it is cheap and never reads the body.
Every "no" carries a reason for the ``compression_decision`` log event; a
request the gate turns away is forwarded byte for byte.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class Endpoint(enum.Enum):
    """The three LLM endpoints whose requests carry compressible tool outputs."""

    CHAT = "/v1/chat/completions"
    ANTHROPIC = "/v1/messages"
    RESPONSES = "/v1/responses"


Headers = Mapping[str, Sequence[str | bytes]]
"""Lower-cased header name -> every raw value the client sent for it."""


@dataclass(frozen=True)
class GateDecision:
    """The endpoint a request's path names, and why it may not be compressed.

    ``endpoint`` is set whenever the path is one of the three compressible
    paths, even when compression is refused, so the caller can log the
    decision per endpoint; it is ``None`` for every other path.
    """

    endpoint: Endpoint | None
    passthrough_reason: str | None

    @property
    def compress(self) -> bool:
        """True when the body should go to the compression pipeline."""
        return self.endpoint is not None and self.passthrough_reason is None


_PATHS = {endpoint.value: endpoint for endpoint in Endpoint}


def decide(
    method: str | bytes,
    path: str | bytes,
    headers: Headers,
    body_length: int,
    mode: str,
    max_body_bytes: int,
) -> GateDecision:
    """Decide whether a request goes to the compression pipeline.

    ``path`` is the request target's path; a query string, if still attached,
    is cut off so that ``?x=1`` neither enables nor disables compression.
    The path must otherwise match exactly: no trailing slash, no
    percent-encoding, no case folding, because the upstream would treat
    those as different resources.
    """
    endpoint = _PATHS.get(_text(path).split("?", 1)[0])
    if endpoint is None:
        return GateDecision(None, "not_compressible_path")
    reason = _refusal(_text(method), headers, body_length, mode, max_body_bytes)
    return GateDecision(endpoint, reason)


def _refusal(method: str, headers: Headers, body_length: int, mode: str, max_body_bytes: int) -> str | None:
    if mode == "off":
        return "mode_off"
    if method != "POST":
        return "not_compressible_method"
    if not _identity_encoded(headers.get("content-encoding", ())):
        return "content_encoded"
    if not _is_json(headers.get("content-type", ())):
        return "not_json"
    if body_length > max_body_bytes:
        return "too_large"
    return None


def _identity_encoded(values: Sequence[str | bytes]) -> bool:
    """Only an absent, empty or ``identity`` Content-Encoding is plain bytes."""
    codings = (c.strip().lower() for value in values for c in _text(value).split(","))
    return all(coding in ("", "identity") for coding in codings)


def _is_json(values: Sequence[str | bytes]) -> bool:
    """Exactly one Content-Type whose media type is ``application/json``.

    Parameters such as ``charset=utf-8`` are allowed; repeated Content-Type
    headers are ambiguous and refused.
    """
    if len(values) != 1:
        return False
    media_type = _text(values[0]).split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
