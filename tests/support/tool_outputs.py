"""Tool outputs several test suites send through the proxy."""

from __future__ import annotations

import json
from typing import Any


def service_rows(count: int = 1500) -> str:
    """A JSON array of service health records; every 250th (from id 7) is an error row.

    Large and uniform, so the JSON compressor shrinks it by far more than half
    while it must keep the few error rows.
    """
    rows = []
    for i in range(count):
        row: dict[str, Any] = {"id": i, "service": f"svc-{i % 40}", "status": "ok", "latency_ms": 10 + i % 17}
        if i % 250 == 7:
            row["status"] = "error"
            row["error"] = f"timeout contacting db-{i}"
        rows.append(row)
    return json.dumps(rows, indent=1)


def service_health_chat() -> bytes:
    """A Chat Completions body whose one tool output is :func:`service_rows`: compressible, error rows to keep."""
    messages = [
        {"role": "user", "content": "which services report an error?"},
        {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "health"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": service_rows()},
    ]
    return json.dumps({"model": "gpt-4o", "messages": messages}).encode()
