"""The stable pipeline: same rewrite on every turn, memo hits for resent blocks, fail open."""

from __future__ import annotations

import json
import threading
import time

import pytest
import pytest_twisted
import structlog
from stable_support import AGENTS, corpus_text, prefix_breaks, session
from twisted.internet.defer import CancelledError
from twisted.internet.task import deferLater
from twisted.web.http_headers import Headers

from headroom_twisted.compress.blocks.policy import compress_block
from headroom_twisted.compress.blocks.tokens import counter_for_encoding
from headroom_twisted.compress.memo import RewriteMemo
from headroom_twisted.compress.pipeline import CompressionRunner, InlineWorkers, compress_request
from headroom_twisted.compress.rewrite import Rewrite
from headroom_twisted.compress.version import COMPRESSOR_VERSION
from headroom_twisted.endpoints import Endpoint

LOG = corpus_text("pytest_failures.txt")
ROWS = corpus_text("pip_list_json.txt")


def chat_body(model: str, *outputs: str) -> bytes:
    messages = [{"role": "user", "content": "Which tests failed?"}]
    for number, output in enumerate(outputs):
        messages.append({"role": "assistant", "tool_calls": [{"id": f"c{number}", "type": "function"}]})
        messages.append({"role": "tool", "tool_call_id": f"c{number}", "content": output})
    return json.dumps({"model": model, "messages": messages}).encode()


def runner(memo_bytes: int = 1 << 26) -> CompressionRunner:
    return CompressionRunner(InlineWorkers(compress_block), "stable", RewriteMemo(memo_bytes))


def test_every_tool_output_is_compressed_not_only_the_newest():
    outcome = runner().compress(chat_body("gpt-4o", LOG, ROWS), Endpoint.CHAT)
    assert outcome.decision == "compressed"
    assert {block.path: block.rewritten for block in outcome.blocks if block.kind == "tool"} == {
        ("messages", 2, "content"): True,
        ("messages", 4, "content"): True,
    }


def test_resent_blocks_come_from_the_memo_and_keep_their_bytes():
    shared = runner()
    first = shared.compress(chat_body("gpt-4o", LOG), Endpoint.CHAT)
    second = shared.compress(chat_body("gpt-4o", LOG, ROWS), Endpoint.CHAT)
    assert (first.blocks_from_memo, second.blocks_from_memo) == (0, 2)
    assert second.log_fields()["blocks_compressed"] == 1
    assert second.body.startswith(first.body[: first.body.rindex(b"]")])


def test_a_memo_miss_recomputes_the_same_bytes_in_another_process_or_after_a_restart():
    bodies = [chat_body("gpt-4o", LOG), chat_body("gpt-4o", LOG, ROWS)]
    remembered = runner()
    with_memo = [remembered.compress(body, Endpoint.CHAT).body for body in bodies]
    without_memo = [runner(memo_bytes=0).compress(body, Endpoint.CHAT).body for body in bodies]
    assert with_memo == without_memo


def test_a_model_switch_does_not_change_an_earlier_rewrite():
    before = runner().compress(chat_body("gpt-4o", LOG, ROWS), Endpoint.CHAT).body
    after = runner().compress(chat_body("gpt-3.5-turbo", LOG, ROWS), Endpoint.CHAT).body
    assert before.replace(b"gpt-4o", b"gpt-3.5-turbo", 1) == after


def test_the_decision_log_says_what_came_from_the_memo_and_which_version_compressed():
    shared = runner()
    shared.compress(chat_body("gpt-4o", LOG), Endpoint.CHAT)
    fields = shared.compress(chat_body("gpt-4o", LOG, ROWS), Endpoint.CHAT).log_fields()
    assert fields["mode"] == "stable"
    assert fields["compressor_version"] == COMPRESSOR_VERSION
    assert (fields["blocks_considered"], fields["blocks_from_memo"], fields["blocks_compressed"]) == (3, 2, 1)
    assert [block["path"] for block in fields["blocks"]] == ["messages[4].content"]
    assert fields["tokens_saved_memo"] > 0


def test_the_memo_is_bounded_and_evicts_the_least_recently_used():
    memo = RewriteMemo(max_bytes=1100)
    entry = Rewrite(b'"' + b"x" * 300 + b'"', "log", "s", "compressed", 10, 5, 1.0)
    for key in (b"a", b"b"):
        memo.put(key, entry)
    memo.get(b"a")
    memo.put(b"c", entry)
    assert (memo.get(b"a"), memo.get(b"b"), memo.get(b"c")) == (entry, None, entry)
    assert memo.size_bytes <= 1100
    memo.put(b"huge", Rewrite(b"x" * 5000, "log", "s", "compressed", 10, 5, 1.0))
    assert memo.get(b"huge") is None and len(memo) == 2


def test_a_failing_worker_forwards_the_original_body():
    class BrokenWorkers(InlineWorkers):
        def rewrite(self, jobs, encoding, deadline):
            raise RuntimeError("worker died")

    body = chat_body("gpt-4o", LOG)
    outcome = CompressionRunner(BrokenWorkers(compress_block), "stable").compress(body, Endpoint.CHAT)
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("passthrough", "internal_error")


@pytest.mark.parametrize("agent", AGENTS)
def test_recorded_sessions_have_no_prefix_break_and_send_fewer_tokens(agent):
    turns = session(agent)
    shared = runner()
    outcomes = [shared.compress(turn.body, turn.endpoint) for turn in turns]
    sent = [turn.body for turn in turns]
    forwarded = [outcome.body for outcome in outcomes]
    assert prefix_breaks(sent, forwarded) == []
    counter = counter_for_encoding("cl100k_base")
    assert sum(counter.count(body.decode()) for body in forwarded) < sum(counter.count(b.decode()) for b in sent)
    assert all(outcome.log_fields()["blocks_compressed"] <= 2 for outcome in outcomes[1:])
    restarted = [runner(memo_bytes=0).compress(turn.body, turn.endpoint).body for turn in turns]
    assert restarted == forwarded


def test_live_zone_mode_still_breaks_the_prefix_it_was_kept_for_parity():
    turns = session("chat-agent")
    forwarded = [compress_request(t.body, t.endpoint, compress_block, mode="live_zone").body for t in turns]
    assert prefix_breaks([turn.body for turn in turns], forwarded) != []


def test_a_job_whose_client_left_is_dropped_before_any_work():
    class CountingWorkers(InlineWorkers):
        calls = 0

        def plan(self, body, endpoint, mode, deadline):
            CountingWorkers.calls += 1
            return super().plan(body, endpoint, mode, deadline)

    gone = threading.Event()
    gone.set()
    body = chat_body("gpt-4o", LOG)
    outcome = CompressionRunner(CountingWorkers(compress_block), "stable").compress(body, Endpoint.CHAT, gone)
    assert (outcome.body, outcome.reason, CountingWorkers.calls) == (body, "client_gone", 0)


@pytest_twisted.ensureDeferred
async def test_cancelling_the_stage_flags_the_queued_job():
    from twisted.internet import reactor

    from headroom_twisted.compression_service import CompressionService
    from headroom_twisted.config import build_config
    from headroom_twisted.upstream.routing import route
    from headroom_twisted.web.compression import CompressionStage

    seen: list[bool] = []
    release = threading.Event()

    def job(body, endpoint, cancelled, submitted):
        release.wait(10)
        seen.append(cancelled.is_set())
        return runner().compress(body, endpoint, cancelled)

    compression = CompressionService(reactor, job, threads=1)
    compression.startService()
    try:
        config = build_config({}, [], {})
        stage = CompressionStage(compression, config)
        headers = Headers({b"content-type": [b"application/json"]})
        working = stage(
            b"POST", route(b"/v1/chat/completions", config), headers, chat_body("gpt-4o", LOG), structlog.get_logger()
        )
        working.addErrback(lambda failure: failure.trap(CancelledError))
        working.cancel()
        release.set()
        for _ in range(200):
            if seen:
                break
            await deferLater(reactor, 0.01)
        assert seen == [True]
    finally:
        await compression.stopService()


def test_a_body_that_waited_its_whole_deadline_in_the_queue_goes_upstream_without_reaching_a_worker():
    """Behind eight heavy bodies an ordinary one once waited 21 s: the deadline starts at submission."""

    class Untouchable:
        def plan(self, *args: object) -> object:
            raise AssertionError("a worker was asked to plan an expired job")

        rewrite = plan

    body = chat_body("gpt-4o", LOG)
    expired = CompressionRunner(Untouchable(), "stable", timeout=5.0)
    outcome = expired.compress(body, Endpoint.CHAT, threading.Event(), submitted=time.monotonic() - 5.0)
    assert (outcome.decision, outcome.reason, outcome.body) == ("passthrough", "deadline_exceeded", body)
    fresh = CompressionRunner(InlineWorkers(compress_block), "stable", timeout=5.0)
    assert fresh.compress(body, Endpoint.CHAT, threading.Event(), submitted=time.monotonic()).decision == "compressed"


def test_a_history_too_large_for_one_deadline_is_compressed_over_the_next_turns(monkeypatch):
    """Each batch of new blocks is remembered as it comes back: a timeout loses only the batch in flight."""
    from headroom_twisted.compress import pipeline
    from headroom_twisted.compress.pipeline import JobTimedOut

    monkeypatch.setattr(pipeline, "REWRITE_BATCH_BYTES", 1)  # one block per batch

    class SlowWorkers(InlineWorkers):
        """Gets through ``budget`` batches per request, then runs out of time."""

        def __init__(self, budget: int) -> None:
            super().__init__(compress_block)
            self.budget = budget
            self.batches = 0

        def rewrite(self, jobs, encoding, deadline):
            if self.batches == self.budget:
                raise JobTimedOut()
            self.batches += 1
            return super().rewrite(jobs, encoding, deadline)

    memo = RewriteMemo(1 << 26)
    body = chat_body("gpt-4o", LOG, ROWS, LOG + "\nmore", ROWS + " ")
    outcomes = []
    for _ in range(3):
        workers = SlowWorkers(budget=2)
        outcomes.append(CompressionRunner(workers, "stable", memo).compress(body, Endpoint.CHAT))
    assert [o.reason for o in outcomes[:2]] == ["deadline_exceeded", "deadline_exceeded"]
    assert outcomes[2].decision == "compressed" and outcomes[2].blocks_from_memo == 4


def test_past_the_deadline_between_batches_no_worker_is_handed_another(monkeypatch):
    """A worker is killed only when a batch itself overruns, not for one it never started."""
    from headroom_twisted.compress import pipeline

    monkeypatch.setattr(pipeline, "REWRITE_BATCH_BYTES", 1)

    class SlowWorkers(InlineWorkers):
        def __init__(self) -> None:
            super().__init__(compress_block)
            self.batches = 0

        def rewrite(self, jobs, encoding, deadline):
            self.batches += 1
            time.sleep(0.3)
            return super().rewrite(jobs, encoding, deadline)

    workers = SlowWorkers()
    memo = RewriteMemo(1 << 26)
    outcome = CompressionRunner(workers, "stable", memo, timeout=0.2).compress(
        chat_body("gpt-4o", LOG, ROWS), Endpoint.CHAT
    )
    assert (outcome.reason, workers.batches, len(memo)) == ("deadline_exceeded", 1, 1)
