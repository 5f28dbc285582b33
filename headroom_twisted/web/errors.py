"""Errors the proxy makes itself, in the JSON shape each provider's SDKs parse."""

from __future__ import annotations

import orjson

from headroom_twisted.endpoints import Provider


def proxy_error_body(provider: Provider, message: str, code: str) -> bytes:
    """OpenAI: `{"error": {...}}`; Anthropic: `{"type": "error", "error": {...}}`."""
    if provider is Provider.ANTHROPIC:
        payload: dict[str, object] = {"type": "error", "error": {"type": "api_error", "message": message}}
    else:
        payload = {"error": {"message": message, "type": "proxy_error", "code": code}}
    return orjson.dumps(payload)
