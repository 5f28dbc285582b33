"""With --state-dir, a restarted proxy meets a resent history warm: every block a memo hit on its first turn."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
import treq
from http_fakes import http_client, start_proxy
from sse_e2e_support import ready
from structlog.testing import capture_logs
from tool_outputs import service_health_chat


@pytest_twisted.ensureDeferred
async def test_a_restarted_proxy_finds_its_rewrites_in_the_state_directory(upstream, tmp_path: Path) -> None:
    decisions = []
    client = http_client()
    for _ in range(2):  # the first proxy, then a fresh one: a restart
        proxy = await ready(start_proxy(upstream.url, production=True, compression="stable", state_dir=str(tmp_path)))
        try:
            with capture_logs() as logs:
                response = await client.post(
                    proxy.url + "/v1/chat/completions",
                    data=service_health_chat(),
                    headers={b"content-type": [b"application/json"]},
                )
                await treq.content(response)
            [decision] = [entry for entry in logs if entry["event"] == "compression_decision"]
            decisions.append(decision)
        finally:
            await proxy.stop()
    first, restarted = decisions
    assert first["blocks_compressed"] >= 1 and first["blocks_from_memo"] == 0
    assert restarted["blocks_from_memo"] == first["blocks_considered"] and restarted["blocks_compressed"] == 0
    assert upstream.requests[0].body == upstream.requests[1].body
    assert (tmp_path / "memo.sqlite3").exists()
