"""The `/dashboard` page: the `/stats` snapshot as one self-contained HTML document.

Pure rendering from the snapshot dict: inline CSS, an inline SVG chart, no
scripts, no external assets, nothing from any request but the aggregated
numbers (and model and compressor names, escaped).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape

from headroom_twisted.stats import BillingJson, MinuteJson, SavingsJson, StatsSnapshot, UsageTallyJson

CHART_WIDTH = 1000
CHART_HEIGHT = 240
CHART_PAD_LEFT = 48
CHART_PAD_RIGHT = 8
CHART_PAD_TOP = 14
CHART_PAD_BOTTOM = 28

_CSS = """
:root { --bg:#f5f6f8; --card:#fff; --ink:#1c2430; --muted:#5d6878; --line:#e3e7ed;
  --sent:#8a94a6; --fwd:#2563eb; --saved:#16a34a; --saved-bg:rgba(22,163,74,.12); }
@media (prefers-color-scheme: dark) {
  :root { --bg:#0f141b; --card:#17202b; --ink:#e6ebf2; --muted:#9aa6b6; --line:#263241;
    --sent:#7b8698; --fwd:#60a5fa; --saved:#4ade80; --saved-bg:rgba(74,222,128,.14); } }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1120px; margin:0 auto; padding:28px 24px 40px; }
header { display:flex; align-items:baseline; justify-content:space-between; gap:16px; flex-wrap:wrap; }
h1 { font-size:22px; margin:0; letter-spacing:-.01em; }
h1 span { color:var(--saved); }
h2 { font-size:15px; margin:0 0 12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.05em; }
.meta { color:var(--muted); font-size:13px; }
.meta a { color:inherit; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(200px,1fr)); gap:14px; margin:20px 0; }
.card, section { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:16px 18px; }
.card .label { color:var(--muted); font-size:13px; }
.card .value { font-size:30px; font-weight:700; letter-spacing:-.02em; margin-top:2px; font-variant-numeric:tabular-nums; }
.card .sub { color:var(--muted); font-size:13px; margin-top:2px; }
.card.hero .value { color:var(--saved); }
section { margin-top:14px; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit,minmax(440px,1fr)); gap:14px; align-items:start; }
.grid2 section { margin-top:0; }
svg { display:block; width:100%; height:auto; }
svg text { fill:var(--muted); font-size:12px; }
.legend { display:flex; gap:18px; font-size:13px; color:var(--muted); margin-top:6px; }
.legend i { display:inline-block; width:12px; height:3px; border-radius:2px; vertical-align:middle; margin-right:6px; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; font-size:14px; }
.scroll { overflow-x:auto; }
th, td { padding:7px 8px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.04em; white-space:normal; }
th:first-child, td:first-child { text-align:left; white-space:normal; overflow-wrap:anywhere; min-width:9em; }
tr:last-child td { border-bottom:none; }
.bar { display:inline-block; height:6px; border-radius:3px; background:var(--saved); vertical-align:middle; margin-right:6px; }
.empty { color:var(--muted); font-size:14px; padding:6px 0; }
footer { color:var(--muted); font-size:12px; margin-top:18px; }
.rule { color:var(--muted); font-size:12px; margin:8px 0 0; }
"""


def number(value: int | float) -> str:
    """Thousands separators; the dashboard and its tests format numbers this one way."""
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def render_dashboard(stats: StatsSnapshot, refresh_seconds: int = 30) -> str:
    saved_percent = stats["percent_saved"]
    endpoints = {
        name: ((row["requests"], row["compressible_requests"], row["compressed_requests"]), row)
        for name, row in stats["by_endpoint"].items()
    }
    compressors = {
        name: ((row["blocks"], row["blocks_rewritten"]), row) for name, row in stats["by_compressor"].items()
    }
    models = {
        name: ((row["compressible_requests"], row["compressed_requests"]), row)
        for name, row in stats["by_model"].items()
    }
    cards = "".join(
        (
            _card(
                "Tokens saved",
                "tokens_saved",
                stats["tokens_saved"],
                f"{saved_percent:.1f}% of measured tokens",
                hero=True,
            ),
            _card(
                "Tokens sent → forwarded",
                "tokens_before",
                stats["tokens_before"],
                f"→ {number(stats['tokens_after'])} forwarded",
            ),
            _card("Requests", "requests", stats["requests"], f"{number(stats['compressible_requests'])} compressible"),
            _card(
                "Compressed requests",
                "compressed_requests",
                stats["compressed_requests"],
                _share(stats["compressed_requests"], stats["compressible_requests"]),
            ),
            _card(
                "Bytes saved", "bytes_saved", stats["bytes_saved"], f"of {number(stats['bytes_before'])} request bytes"
            ),
        )
    )
    started = _clock(stats["since"], "%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{refresh_seconds}">
<title>headroom · {saved_percent:.1f}% tokens saved</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>headroom <span>saved {saved_percent:.1f}%</span></h1>
<div class="meta">since {started} · up {_duration(stats["uptime_s"])} · <a href="/stats">/stats</a> · <a href="/metrics">/metrics</a></div>
</header>
<div class="cards">{cards}</div>
<section>
<h2>Tokens per minute, last hour</h2>
{_chart(stats["recent_minutes"])}
<div class="legend"><span><i style="background:var(--sent)"></i>sent by clients</span><span><i style="background:var(--fwd)"></i>forwarded upstream</span><span><i style="background:var(--saved);height:8px;opacity:.35"></i>saved</span></div>
</section>
<section>
<h2>By endpoint</h2>
{_savings_table("Endpoint", endpoints, ("requests", "compressible_requests", "compressed_requests"), "endpoint")}
</section>
<section>
<h2>By compressor</h2>
{_savings_table("Compressor", compressors, ("blocks", "blocks_rewritten"), "compressor")}
</section>
<section>
<h2>By model</h2>
{_savings_table("Model", models, ("compressible_requests", "compressed_requests"), "model")}
</section>
<section>
<h2>The bill: billed input next to what compression saved</h2>
{_bill_table(stats["billing"])}
</section>
<div class="grid2" style="margin-top:14px">
<section>
<h2>Provider-reported usage</h2>
{_usage_table(stats["provider_usage"])}
</section>
<section>
<h2>Health</h2>
{_counts_table(stats)}
</section>
</div>
<footer>{escape(stats["percent_formula"])}. {escape(stats["bytes_note"])}. Refreshes every {refresh_seconds} s.</footer>
</main>
</body>
</html>
"""


def _card(label: str, key: str, value: int, sub: str, hero: bool = False) -> str:
    return (
        f'<div class="card{" hero" if hero else ""}"><div class="label">{escape(label)}</div>'
        f'<div class="value" data-stat="{key}" data-value="{value}">{number(value)}</div>'
        f'<div class="sub">{escape(sub)}</div></div>'
    )


def _share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}% of compressible" if whole else "none compressible yet"


def _savings_table(
    title: str, rows: Mapping[str, tuple[Sequence[int], SavingsJson]], counts: Sequence[str], kind: str
) -> str:
    """One row per name: its own counts (the columns named by ``counts``, in order), then its savings."""
    if not rows:
        return '<div class="empty">Nothing yet.</div>'
    heads = "".join(f"<th>{escape(name.replace('_', ' ').replace(' requests', ''))}</th>" for name in counts)
    body = "".join(
        f'<tr data-{kind}="{escape(name)}"><td>{escape(name)}</td>'
        + "".join(f"<td>{number(count)}</td>" for count in values)
        + f"<td>{number(row['tokens_before'])}</td><td>{number(row['tokens_after'])}</td>"
        f'<td data-value="{row["tokens_saved"]}">{number(row["tokens_saved"])}</td>'
        f"<td>{_bar(row['percent_saved'])}{row['percent_saved']:.1f}%</td></tr>"
        for name, (values, row) in rows.items()
    )
    return (
        f'<div class="scroll"><table><thead><tr><th>{escape(title)}</th>{heads}<th>tokens sent</th><th>forwarded</th>'
        f"<th>saved</th><th>% saved</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _bar(percent: float) -> str:
    width = max(0.0, min(100.0, percent)) * 0.6
    return f'<span class="bar" style="width:{width:.1f}px"></span>'


def _usage_table(rows: Mapping[str, UsageTallyJson]) -> str:
    if not rows:
        return '<div class="empty">No usage reported yet.</div>'
    body = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(
            f"<td>{number(value)}</td>"
            for value in (
                row["responses"],
                row["input_tokens"],
                row["uncached_input_tokens"],
                row["cached_tokens"],
                row["cache_creation_tokens"],
                row["output_tokens"],
            )
        )
        + "</tr>"
        for name, row in rows.items()
    )
    return (
        '<div class="scroll"><table><thead><tr><th>Provider / model</th><th>responses</th><th>input</th>'
        "<th>uncached</th><th>cache reads</th><th>cache writes</th>"
        f"<th>output</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _bill_table(billing: BillingJson) -> str:
    rows = {
        name: row
        for name, row in billing["by_provider"].items()
        if row["billed_input_units"] or row["tokens_saved_first"]
    }
    if not rows:
        return '<div class="empty">No billed input reported yet.</div>'
    body = "".join(
        f'<tr data-provider="{escape(name)}"><td>{escape(name)}</td>'
        + "".join(
            f"<td>{number(int(value))}</td>"
            for value in (
                row["uncached_input_tokens"],
                row["cache_read_tokens"],
                row["cache_write_tokens"],
                row["billed_input_units"],
                row["tokens_saved_first"],
                row["tokens_saved_repeated"],
                row["estimated_saved_units"],
            )
        )
        + f"<td>{_bar(row['estimated_percent_saved'])}{row['estimated_percent_saved']:.1f}%</td></tr>"
        for name, row in rows.items()
    )
    return (
        '<div class="scroll"><table><thead><tr><th>Provider</th><th>uncached input</th><th>cache reads</th>'
        "<th>cache writes</th><th>billed input (units)</th><th>saved, first seen</th><th>saved, repeated</th>"
        f"<th>est. saved (units)</th><th>est. bill saved</th></tr></thead><tbody>{body}</tbody></table></div>"
        f'<p class="rule">{escape(billing["rule"])}</p>'
    )


def _counts_table(stats: StatsSnapshot) -> str:
    rows: list[tuple[str, int]] = [
        (f"responses {name}", count) for name, count in stats["requests_by_status_class"].items()
    ]
    rows += [(f"compression {name}", count) for name, count in stats["decisions"].items()]
    rows += [(f"upstream error: {name}", count) for name, count in stats["upstream_errors"].items()]
    rows += [(f"stream ended {name}", count) for name, count in stats["sse_streams"].items()]
    if not rows:
        return '<div class="empty">No requests yet.</div>'
    body = "".join(f"<tr><td>{escape(name)}</td><td>{number(count)}</td></tr>" for name, count in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _chart(minutes: Sequence[MinuteJson]) -> str:
    """Two lines (sent, forwarded) with the gap between them shaded as saved."""
    inner_w = CHART_WIDTH - CHART_PAD_LEFT - CHART_PAD_RIGHT
    inner_h = CHART_HEIGHT - CHART_PAD_TOP - CHART_PAD_BOTTOM
    top = max([m["tokens_sent"] for m in minutes] + [m["tokens_forwarded"] for m in minutes] + [1])
    top = _nice_ceiling(top)
    step = inner_w / max(len(minutes) - 1, 1)

    def x(i: int) -> float:
        return CHART_PAD_LEFT + i * step

    def y(value: int) -> float:
        return CHART_PAD_TOP + inner_h * (1 - value / top)

    sent = [(x(i), y(m["tokens_sent"])) for i, m in enumerate(minutes)]
    forwarded = [(x(i), y(m["tokens_forwarded"])) for i, m in enumerate(minutes)]
    grid = "".join(
        f'<line x1="{CHART_PAD_LEFT}" x2="{CHART_WIDTH - CHART_PAD_RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
        f'style="stroke:var(--line)"/><text x="{CHART_PAD_LEFT - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{_short(v)}</text>'
        for v in sorted({0, top // 2, top})
    )
    last = len(minutes) - 1
    ticks = "".join(
        f'<text x="{x(i):.1f}" y="{CHART_HEIGHT - 8}" text-anchor="{"start" if i == 0 else "end" if i == last else "middle"}">'
        f"{_clock(minutes[i]['minute_start'], '%H:%M')}</text>"
        for i in _tick_indexes(len(minutes))
    )
    hover = "".join(
        f'<rect x="{x(i) - step / 2:.1f}" y="{CHART_PAD_TOP}" width="{step:.1f}" height="{inner_h}" fill="transparent">'
        f"<title>{_clock(m['minute_start'], '%H:%M')} UTC: sent {number(m['tokens_sent'])}, "
        f"forwarded {number(m['tokens_forwarded'])}</title></rect>"
        for i, m in enumerate(minutes)
    )
    return (
        f'<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="tokens sent vs forwarded per minute">'
        f"{grid}{ticks}"
        f'<polygon points="{_points(sent + forwarded[::-1])}" style="fill:var(--saved-bg)"/>'
        f'<polyline points="{_points(sent)}" style="fill:none;stroke:var(--sent);stroke-width:2" stroke-linejoin="round"/>'
        f'<polyline points="{_points(forwarded)}" style="fill:none;stroke:var(--fwd);stroke-width:2.5" stroke-linejoin="round"/>'
        f"{hover}</svg>"
    )


def _points(points: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in points)


def _tick_indexes(count: int) -> list[int]:
    if count <= 1:
        return [0] if count else []
    return sorted({0, count // 4, count // 2, (3 * count) // 4, count - 1})


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above `value`, so the axis labels are round."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude >= value:
                return factor * magnitude
        magnitude *= 10


def _short(value: int) -> str:
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return str(value)


def _clock(epoch: float, pattern: str) -> str:
    return time.strftime(pattern, time.gmtime(epoch))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
