"""When a failed upstream request goes out once more: unit tests with a scripted agent, no reactor."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.web.client import RequestNotSent, RequestTransmissionFailed, ResponseFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers

from headroom_twisted.upstream.agent import BytesProducer
from headroom_twisted.upstream.retry import request_with_one_retry


class ScriptedAgent:
    """Answers each `request` with the next Deferred of its script, and records the methods."""

    def __init__(self, *answers: Deferred[object]) -> None:
        self._answers = list(answers)
        self.calls: list[bytes] = []

    def request(
        self, method: bytes, uri: bytes, headers: Headers | None = None, bodyProducer: object = None
    ) -> Deferred[object]:
        self.calls.append(method)
        return self._answers.pop(0)


class Log:
    def info(self, event: str, **fields: object) -> None:
        """Retries are logged; these tests look at what was sent."""


def closed_before_response() -> Failure:
    return Failure(ResponseNeverReceived([Failure(ConnectionDone())]))


def closed_while_sending() -> Failure:
    return Failure(RequestTransmissionFailed([Failure(ConnectionDone())]))


def send(agent: ScriptedAgent, method: bytes, body: bytes | None) -> tuple[Deferred[object], list[object]]:
    outcome: list[object] = []
    producer = BytesProducer(body) if body is not None else None
    call = request_with_one_retry(agent, method, b"http://up/v1/x", Headers(), producer, Log())
    call.addBoth(outcome.append)
    return call, outcome


@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
@pytest.mark.parametrize("failure", [closed_before_response, closed_while_sending])
def test_idempotent_request_lost_on_a_closing_connection_is_sent_once_more(
    method: bytes, failure: Callable[[], Failure]
) -> None:
    agent = ScriptedAgent(fail(failure()), succeed("fine"))
    _, outcome = send(agent, method, None)
    assert (agent.calls, outcome) == ([method, method], ["fine"])


def test_request_that_never_left_is_sent_once_more_whatever_its_method() -> None:
    agent = ScriptedAgent(fail(RequestNotSent()), succeed("fine"))
    _, outcome = send(agent, b"POST", b'{"n": 1}')
    assert (agent.calls, outcome) == ([b"POST", b"POST"], ["fine"])


@pytest.mark.parametrize(
    "failure",
    [
        closed_before_response,
        lambda: Failure(ResponseFailed([Failure(ConnectionDone())])),
        lambda: Failure(ConnectionRefusedError()),
    ],
)
def test_post_whose_body_may_have_arrived_is_not_sent_twice(failure: Callable[[], Failure]) -> None:
    agent = ScriptedAgent(fail(failure()))
    _, outcome = send(agent, b"POST", b'{"n": 1}')
    assert agent.calls == [b"POST"] and isinstance(outcome[0], Failure)


def test_only_once_then_the_second_failure_is_the_answer() -> None:
    agent = ScriptedAgent(fail(closed_before_response()), fail(closed_before_response()))
    _, outcome = send(agent, b"GET", None)
    assert agent.calls == [b"GET", b"GET"]
    assert isinstance(outcome[0], Failure) and outcome[0].check(ResponseNeverReceived)


def test_a_request_cancelled_by_the_proxy_is_not_retried() -> None:
    agent = ScriptedAgent(fail(ResponseNeverReceived([Failure(CancelledError())])))
    _, outcome = send(agent, b"GET", None)
    assert agent.calls == [b"GET"] and isinstance(outcome[0], Failure)


def test_cancelling_reaches_the_attempt_in_progress() -> None:
    """The exchange cancels the Deferred it was given (client gone, idle timeout)."""
    second: Deferred[object] = Deferred()
    agent = ScriptedAgent(fail(closed_before_response()), second)
    call, outcome = send(agent, b"GET", None)
    assert agent.calls == [b"GET", b"GET"] and not outcome
    call.cancel()
    assert second.called
    assert isinstance(outcome[0], Failure) and outcome[0].check(CancelledError)
