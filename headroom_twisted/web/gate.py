"""The compression gate: which requests may even be parsed for compression.

The gate runs on the reactor thread and looks only at the route, the
method, two headers and the body length, so it is cheap and never reads the
body. Every "no" carries a reason for the ``compression_decision`` log
event; a request the gate turns away is forwarded byte for byte. It lives in
`web/` because it reads HTTP: `compress/` is handed an `Endpoint` and bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from twisted.web.http_headers import Headers

from headroom_twisted.config import CompressionMode
from headroom_twisted.endpoints import Endpoint

GateRefusal = Literal[
    "not_compressible_path", "mode_off", "not_compressible_method", "content_encoded", "not_json", "too_large"
]


@dataclass(frozen=True)
class GateDecision:
    """The endpoint a request's route names, and why it may not be compressed.

    ``endpoint`` is set whenever the route is one of the three LLM APIs, even
    when compression is refused, so the caller can log the decision per
    endpoint; it is ``None`` for every other path.
    """

    endpoint: Endpoint | None
    passthrough_reason: GateRefusal | None

    @property
    def compress(self) -> bool:
        """True when the body should go to the compression pipeline."""
        return self.endpoint is not None and self.passthrough_reason is None


def decide(
    method: bytes,
    endpoint: Endpoint | None,
    headers: Headers,
    body_length: int,
    mode: CompressionMode,
    max_body_bytes: int,
) -> GateDecision:
    """Decide whether a request goes to the compression pipeline."""
    if endpoint is None:
        return GateDecision(None, "not_compressible_path")
    return GateDecision(endpoint, _refusal(method, headers, body_length, mode, max_body_bytes))


def _refusal(
    method: bytes, headers: Headers, body_length: int, mode: CompressionMode, max_body_bytes: int
) -> GateRefusal | None:
    if mode == "off":
        return "mode_off"
    if method != b"POST":
        return "not_compressible_method"
    if not _identity_encoded(headers.getRawHeaders(b"content-encoding", [])):
        return "content_encoded"
    if not _is_json(headers.getRawHeaders(b"content-type", [])):
        return "not_json"
    if body_length > max_body_bytes:
        return "too_large"
    return None


def _identity_encoded(values: Sequence[bytes]) -> bool:
    """Only an absent, empty or ``identity`` Content-Encoding is plain bytes."""
    codings = (coding.strip().lower() for value in values for coding in value.split(b","))
    return all(coding in (b"", b"identity") for coding in codings)


def _is_json(values: Sequence[bytes]) -> bool:
    """Exactly one Content-Type whose media type is ``application/json``.

    Parameters such as ``charset=utf-8`` are allowed; repeated Content-Type
    headers are ambiguous and refused.
    """
    if len(values) != 1:
        return False
    return values[0].split(b";", 1)[0].strip().lower() == b"application/json"
