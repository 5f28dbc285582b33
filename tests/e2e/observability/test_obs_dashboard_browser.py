"""The dashboard rendered by a real headless Chromium shows the numbers /stats reports."""

from __future__ import annotations

import os
import re
import tempfile
from html import unescape

import orjson
import pytest
import pytest_twisted
from obs_support import STREAM_BODY, chat_with_tool_output, fetch, scripted_upstream
from tool_outputs import service_rows
from twisted.internet.utils import getProcessOutputAndValue

from headroom_twisted.web.dashboard import number

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium) to render the dashboard",
)


async def dump_dom(url: str) -> str:
    """Chromium's DOM after load, run as a child process so the reactor keeps serving the page."""
    with tempfile.TemporaryDirectory() as profile:
        out, err, code = await getProcessOutputAndValue(
            CHROMIUM,
            (
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=1280,900",
                "--dump-dom",
                url,
            ),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": profile},
        )
    assert code == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


def stat_value(dom: str, key: str) -> str:
    match = re.search(rf'data-stat="{key}" data-value="(\d+)">([^<]*)<', dom)
    assert match, f"no {key} card in the rendered page"
    return f"{match.group(1)}|{unescape(match.group(2))}"


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_dashboard_renders_in_chromium_with_the_stats_numbers(make_proxy, upstream) -> None:
    upstream.handler = scripted_upstream
    proxy = make_proxy(production=True)
    headers = {"Content-Type": "application/json"}
    assert (
        await fetch(
            proxy.url + "/v1/chat/completions", "POST", data=chat_with_tool_output(service_rows()), headers=headers
        )
    )[0] == 200
    assert (await fetch(proxy.url + "/v1/chat/completions", "POST", data=STREAM_BODY, headers=headers))[0] == 200
    stats = orjson.loads((await fetch(proxy.url + "/stats"))[1])
    assert stats["compressed_requests"] == 1 and stats["tokens_saved"] > 0

    dom = await dump_dom(proxy.url + "/dashboard")

    assert "<svg" in dom and "polyline" in dom
    for key in ("tokens_saved", "tokens_before", "requests", "compressed_requests", "bytes_saved"):
        assert stat_value(dom, key) == f"{stats[key]}|{number(stats[key])}"
    assert f"saved {stats['percent_saved']:.1f}%" in dom
    chat = stats["by_endpoint"]["/v1/chat/completions"]
    row = re.search(r'<tr data-endpoint="/v1/chat/completions">(.*?)</tr>', dom, re.S)
    assert row and f'data-value="{chat["tokens_saved"]}"' in row.group(1)
    for name, compressor in stats["by_compressor"].items():
        assert f'data-compressor="{name}"' in dom and number(compressor["tokens_before"]) in dom
    usage = stats["provider_usage"]["openai_chat/gpt-4o-2024-08-06"]
    assert number(usage["input_tokens"]) in dom and number(usage["cached_tokens"]) in dom
