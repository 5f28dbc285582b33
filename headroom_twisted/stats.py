"""What the proxy saved since it started: the story behind `/stats` and `/dashboard`.

Plain counters fed with the very records the proxy logs (`compression_decision`,
`sse_stream_closed`, `response_usage`) and the fields of `request_finished` and
`upstream_error`, so every sum here equals the sum over those log events. No
Twisted, no clock of its own: the caller passes the time in.

Labels that come from clients or upstreams (models) are capped, so a client
sending a new model name per request cannot grow this without bound.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from headroom_twisted.compress.decision import CompressionDecision, Decision
from headroom_twisted.sse.state import Usage
from headroom_twisted.sse.summary import Ended, ResponseUsage, StreamSummary

PERCENT_FORMULA = (
    "percent_saved = 100 * tokens_saved / tokens_before, where tokens_before is the number of tokens "
    "the client sent in the blocks the proxy measured on compressible requests (the sum of "
    "compression_decision.tokens_before), tokens_after is what was forwarded for those blocks, and "
    "tokens_saved = tokens_before - tokens_after"
)

BYTES_NOTE = (
    "bytes_before/bytes_after are whole request bodies on compressible requests; "
    "in by_compressor they are the blocks' JSON string literals"
)

BILLING_RULE = (
    "Prices in units of one uncached input token: a cache read costs 0.1 (OpenAI's gpt-5 family and "
    "Anthropic), an Anthropic cache write 1.25 (5-minute cache); OpenAI charges no write. "
    "billed_input_units = uncached_input_tokens + 0.1 * cache_read_tokens + 1.25 * cache_write_tokens, "
    "from the usage the provider reported (streams and JSON responses). "
    "estimated_saved_units = 0.1 * tokens_saved_repeated (blocks whose rewrite repeats an earlier request's, "
    "so the provider most likely had them cached) + 1.0 (OpenAI) or 1.25 (Anthropic) * tokens_saved_first "
    "(blocks compressed for the first time). estimated_percent_saved = 100 * estimated_saved_units / "
    "(billed_input_units + estimated_saved_units). Saved tokens are counted with the proxy's tokenizer "
    "(an estimate for Anthropic)."
)
CACHE_READ_PRICE = 0.1
CACHE_WRITE_PRICE = {"openai": 1.0, "anthropic": 1.25}
"""What a token costs the first time a provider sees it (and caches it), per provider."""

OTHER = "other"
MAX_LABEL_VALUES = 50
MAX_LABEL_CHARS = 100
CHART_MINUTES = 60


class SavingsJson(TypedDict):
    """Tokens and bytes before and after, as `/stats` reports them (see `PERCENT_FORMULA`, `BYTES_NOTE`)."""

    tokens_before: int
    tokens_after: int
    tokens_saved: int
    percent_saved: float
    bytes_before: int
    bytes_after: int
    bytes_saved: int


class RequestTallyJson(SavingsJson):
    """One row of `by_model`."""

    compressible_requests: int
    compressed_requests: int


class EndpointTallyJson(RequestTallyJson):
    """One row of `by_endpoint`."""

    requests: int


class BlockTallyJson(SavingsJson):
    """One row of `by_compressor`."""

    blocks: int
    blocks_rewritten: int


class UsageTallyJson(TypedDict):
    """One row of `provider_usage`."""

    responses: int
    input_tokens: int
    uncached_input_tokens: int
    cached_tokens: int
    cache_creation_tokens: int
    output_tokens: int


class BillJson(TypedDict):
    """One provider of `billing.by_provider`; units as in `BILLING_RULE`."""

    uncached_input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    billed_input_units: float
    tokens_saved_first: int
    tokens_saved_repeated: int
    estimated_saved_units: float
    estimated_percent_saved: float


class BillingJson(TypedDict):
    rule: str
    by_provider: dict[str, BillJson]


class MinuteJson(TypedDict):
    """One minute of `recent_minutes`: its start (epoch seconds) and the tokens sent and forwarded in it."""

    minute_start: int
    tokens_sent: int
    tokens_forwarded: int


class StatsSnapshot(SavingsJson):
    """The `/stats` payload (and what `/dashboard` renders): totals since start, then the breakdowns."""

    since: float
    uptime_s: float
    percent_formula: str
    bytes_note: str
    requests: int
    requests_by_status_class: dict[str, int]
    compressible_requests: int
    compressed_requests: int
    decisions: dict[Decision, int]
    by_endpoint: dict[str, EndpointTallyJson]
    by_compressor: dict[str, BlockTallyJson]
    by_model: dict[str, RequestTallyJson]
    upstream_errors: dict[str, int]
    sse_streams: dict[Ended, int]
    provider_usage: dict[str, UsageTallyJson]
    billing: BillingJson
    recent_minutes: list[MinuteJson]


def capped_key(table: Mapping[str, object], key: str | None, limit: int = MAX_LABEL_VALUES) -> str:
    """`key` itself while the table has room for it, else `other`; `unknown` for None."""
    if key is None or key == "":
        return "unknown"
    key = key[:MAX_LABEL_CHARS]
    if key in table or len(table) < limit:
        return key
    return OTHER


def billing_provider(endpoint: str) -> str:
    """Whose prices apply to an endpoint label: Anthropic's for /v1/messages, OpenAI's otherwise."""
    return "anthropic" if endpoint.startswith("/v1/messages") else "openai"


def percent(saved: int, before: int) -> float:
    return round(100.0 * saved / before, 2) if before else 0.0


@dataclass
class Savings:
    """Tokens and bytes before and after compression."""

    tokens_before: int = 0
    tokens_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0

    def add(
        self, tokens_before: int | None, tokens_after: int | None, bytes_before: int | None, bytes_after: int | None
    ) -> None:
        if tokens_before is not None and tokens_after is not None:
            self.tokens_before += tokens_before
            self.tokens_after += tokens_after
        if bytes_before is not None and bytes_after is not None:
            self.bytes_before += bytes_before
            self.bytes_after += bytes_after

    def as_dict(self) -> SavingsJson:
        saved = self.tokens_before - self.tokens_after
        return {
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "tokens_saved": saved,
            "percent_saved": percent(saved, self.tokens_before),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "bytes_saved": self.bytes_before - self.bytes_after,
        }


@dataclass
class RequestTally:
    """Compressible requests (one `compression_decision` each) and what they saved."""

    compressible: int = 0
    compressed: int = 0
    savings: Savings = field(default_factory=Savings)

    def as_dict(self) -> RequestTallyJson:
        return {
            "compressible_requests": self.compressible,
            "compressed_requests": self.compressed,
            **self.savings.as_dict(),
        }


@dataclass
class BlockTally:
    """Blocks one compressor (strategy) looked at."""

    blocks: int = 0
    rewritten: int = 0
    savings: Savings = field(default_factory=Savings)

    def as_dict(self) -> BlockTallyJson:
        return {"blocks": self.blocks, "blocks_rewritten": self.rewritten, **self.savings.as_dict()}


@dataclass
class EndpointTally:
    requests: int = 0
    compression: RequestTally = field(default_factory=RequestTally)

    def as_dict(self) -> EndpointTallyJson:
        return {"requests": self.requests, **self.compression.as_dict()}


@dataclass
class UsageTally:
    """Provider-reported usage from `sse_stream_closed` and `response_usage` events.

    ``input_tokens`` is the whole prompt; ``cached_tokens`` the part read from
    the prompt cache and ``cache_creation_tokens`` the part written to it.
    """

    responses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    def add(self, usage: Usage) -> None:
        self.responses += 1
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.cached_tokens += usage.cached_tokens or 0
        self.cache_creation_tokens += usage.cache_creation_tokens or 0

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cached_tokens - self.cache_creation_tokens)

    def as_dict(self) -> UsageTallyJson:
        return {
            "responses": self.responses,
            "input_tokens": self.input_tokens,
            "uncached_input_tokens": self.uncached_input_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass
class BillTally:
    """One provider's billed input next to what compression saved, in uncached-input-token units."""

    provider: str
    usage: UsageTally = field(default_factory=UsageTally)
    tokens_saved_first: int = 0
    tokens_saved_repeated: int = 0

    def as_dict(self) -> BillJson:
        usage = self.usage
        write_price = CACHE_WRITE_PRICE[self.provider]
        billed = (
            usage.uncached_input_tokens
            + CACHE_READ_PRICE * usage.cached_tokens
            + CACHE_WRITE_PRICE["anthropic"] * usage.cache_creation_tokens
        )
        saved = write_price * self.tokens_saved_first + CACHE_READ_PRICE * self.tokens_saved_repeated
        return {
            "uncached_input_tokens": usage.uncached_input_tokens,
            "cache_read_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_creation_tokens,
            "billed_input_units": round(billed, 1),
            "tokens_saved_first": self.tokens_saved_first,
            "tokens_saved_repeated": self.tokens_saved_repeated,
            "estimated_saved_units": round(saved, 1),
            "estimated_percent_saved": round(100.0 * saved / (billed + saved), 2) if billed + saved else 0.0,
        }


class MinuteSeries:
    """Tokens sent by clients vs forwarded upstream, per wall-clock minute, last hour only."""

    def __init__(self, minutes: int = CHART_MINUTES) -> None:
        self._minutes = minutes
        self._buckets: deque[list[int]] = deque(maxlen=minutes)

    def add(self, now: float, sent: int, forwarded: int) -> None:
        minute = int(now // 60)
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += sent
            self._buckets[-1][2] += forwarded
        else:
            self._buckets.append([minute, sent, forwarded])

    def recent(self, now: float, minutes: int | None = None) -> list[MinuteJson]:
        """One entry per minute up to the current one, oldest first, empty minutes as zeros."""
        count = minutes or self._minutes
        last = int(now // 60)
        known = {minute: (sent, forwarded) for minute, sent, forwarded in self._buckets}
        return [
            {
                "minute_start": minute * 60,
                "tokens_sent": known.get(minute, (0, 0))[0],
                "tokens_forwarded": known.get(minute, (0, 0))[1],
            }
            for minute in range(last - count + 1, last + 1)
        ]


class SavingsStats:
    """Everything `/stats` reports, aggregated since start."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.requests = 0
        self.by_status_class: dict[str, int] = {}
        self.decisions: dict[Decision, int] = {}
        self.total = RequestTally()
        self.by_endpoint: dict[str, EndpointTally] = {}
        self.by_compressor: dict[str, BlockTally] = {}
        self.by_model: dict[str, RequestTally] = {}
        self.upstream_errors: dict[str, int] = {}
        self.streams: dict[Ended, int] = {}
        self.usage: dict[str, UsageTally] = {}
        self.bills = {provider: BillTally(provider) for provider in CACHE_WRITE_PRICE}
        self.minutes = MinuteSeries()

    def request_finished(self, endpoint: str, status_class: str) -> None:
        self.requests += 1
        self.by_status_class[status_class] = self.by_status_class.get(status_class, 0) + 1
        self._endpoint(endpoint).requests += 1

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors[kind] = self.upstream_errors.get(kind, 0) + 1

    def compression_decided(self, now: float, endpoint: str, decision: CompressionDecision) -> None:
        """Count one `compression_decision`: the request's totals and its fresh blocks one by one."""
        self.decisions[decision.decision] = self.decisions.get(decision.decision, 0) + 1
        compressed = decision.decision == "compressed"
        tokens_before, tokens_after = decision.tokens_before, decision.tokens_after
        model = capped_key(self.by_model, decision.model)
        tallies = (self.total, self._endpoint(endpoint).compression, self.by_model.setdefault(model, RequestTally()))
        for tally in tallies:
            tally.compressible += 1
            tally.compressed += compressed
            tally.savings.add(tokens_before, tokens_after, decision.body_bytes_before, decision.body_bytes_after)
        for block in decision.fresh_blocks:
            rewrite = block.rewrite
            blocks = self.by_compressor.setdefault(capped_key(self.by_compressor, rewrite.strategy), BlockTally())
            blocks.blocks += 1
            blocks.rewritten += block.rewritten
            blocks.savings.add(
                rewrite.tokens_before, rewrite.tokens_after, block.literal_bytes_before, block.literal_bytes_after
            )
        if tokens_before is not None and tokens_after is not None:
            self.minutes.add(now, tokens_before, tokens_after)
            bill = self.bills[billing_provider(endpoint)]
            repeated = decision.tokens_saved_memo
            bill.tokens_saved_repeated += repeated
            bill.tokens_saved_first += tokens_before - tokens_after - repeated

    def stream_closed(self, summary: StreamSummary) -> None:
        """Count one event stream: how it ended and the usage it reported."""
        self.streams[summary.ended] = self.streams.get(summary.ended, 0) + 1
        self._add_usage(summary.provider, summary.digest.model, summary.digest.usage)

    def usage_reported(self, report: ResponseUsage) -> None:
        """Count the usage one JSON response reported."""
        self._add_usage(report.provider, report.model, report.usage)

    def _add_usage(self, provider: str, model: str | None, usage: Usage) -> None:
        if not usage.reported:
            return
        key = f"{provider}/{model or 'unknown'}"
        self.usage.setdefault(capped_key(self.usage, key), UsageTally()).add(usage)
        self.bills["anthropic" if provider == "anthropic" else "openai"].usage.add(usage)

    def snapshot(self, now: float) -> StatsSnapshot:
        """The `/stats` payload: plain JSON-ready data."""
        return {
            "since": self.started,
            "uptime_s": round(now - self.started, 3),
            "percent_formula": PERCENT_FORMULA,
            "bytes_note": BYTES_NOTE,
            "requests": self.requests,
            "requests_by_status_class": dict(sorted(self.by_status_class.items())),
            "compressible_requests": self.total.compressible,
            "compressed_requests": self.total.compressed,
            "decisions": dict(sorted(self.decisions.items())),
            **self.total.savings.as_dict(),
            "by_endpoint": {name: tally.as_dict() for name, tally in sorted(self.by_endpoint.items())},
            "by_compressor": {name: tally.as_dict() for name, tally in sorted(self.by_compressor.items())},
            "by_model": {name: tally.as_dict() for name, tally in sorted(self.by_model.items())},
            "upstream_errors": dict(sorted(self.upstream_errors.items())),
            "sse_streams": dict(sorted(self.streams.items())),
            "provider_usage": {name: tally.as_dict() for name, tally in sorted(self.usage.items())},
            "billing": {
                "rule": BILLING_RULE,
                "by_provider": {name: bill.as_dict() for name, bill in sorted(self.bills.items())},
            },
            "recent_minutes": self.minutes.recent(now),
        }

    def _endpoint(self, endpoint: str) -> EndpointTally:
        tally = self.by_endpoint.get(endpoint)
        if tally is None:
            tally = self.by_endpoint[endpoint] = EndpointTally()
        return tally
