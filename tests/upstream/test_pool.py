"""A request a reused connection failed to send goes out once more, fresh; nothing else is sent twice."""

from __future__ import annotations

import pytest
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.web._newclient import Request
from twisted.web.client import RequestTransmissionFailed, ResponseFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers

from headroom_twisted.upstream.agent import BytesProducer
from headroom_twisted.upstream.pool import ReusedConnection, lost_while_sending


class Connection:
    """Answers each request with the next Deferred of its script."""

    def __init__(self, *answers: Deferred[object]) -> None:
        self._answers = list(answers)
        self.requests: list[Request] = []

    def request(self, request: Request) -> Deferred[object]:
        self.requests.append(request)
        return self._answers.pop(0)


def post(body: object = None) -> Request:
    producer = BytesProducer(b'{"model": "m"}') if body is None else body
    return Request._construct(b"POST", b"/v1/chat/completions", Headers(), producer, False, None)


def while_sending(*reasons: BaseException) -> Failure:
    return Failure(RequestTransmissionFailed([Failure(reason) for reason in reasons]))


def test_a_post_a_reused_connection_failed_to_send_goes_out_once_more_fresh() -> None:
    stale, fresh = Connection(fail(while_sending(ConnectionDone()))), Connection(succeed("response"))
    outcome: list[object] = []
    ReusedConnection(stale, lambda: succeed(fresh)).request(post()).addBoth(outcome.append)
    assert outcome == ["response"] and len(stale.requests) == len(fresh.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        # Sent whole, then closed: the upstream may have acted on it (an LLM call billed twice).
        Failure(ResponseNeverReceived([Failure(ConnectionDone())])),
        Failure(ResponseFailed([Failure(ConnectionDone())])),  # some response bytes had arrived
        while_sending(CancelledError()),  # the proxy cancelled it (client gone, idle timeout)
        while_sending(ConnectionDone(), CancelledError()),
        Failure(ValueError("not a connection failure")),
    ],
)
def test_nothing_else_is_sent_twice(failure: Failure) -> None:
    fresh = Connection(succeed("response"))
    outcome: list[object] = []
    ReusedConnection(Connection(fail(failure)), lambda: succeed(fresh)).request(post()).addBoth(outcome.append)
    assert fresh.requests == [] and isinstance(outcome[0], Failure)


def test_get_and_bodies_that_cannot_be_produced_again_are_left_alone() -> None:
    get = Request._construct(b"GET", b"/v1/models", Headers(), None, False, None)
    assert not lost_while_sending(get, while_sending(ConnectionLost()))
    assert not lost_while_sending(post(body=object()), while_sending(ConnectionLost()))
    assert lost_while_sending(post(), while_sending(ConnectionLost()))
