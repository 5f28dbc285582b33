"""One more attempt for a request that died on an upstream connection that was already closing.

The pool keeps idle upstream connections for reuse, and an upstream closes
them on its own schedule (its keep-alive timeout). A request sent just as
that happens fails with no response, and the client would get a 502 for a
race it cannot see. The request goes out once more, on a fresh connection,
when that is safe: it provably never left (`RequestNotSent`), or it is a GET
or HEAD, which the proxy sends without a body and which the upstream may
receive twice.
"""

from __future__ import annotations

from structlog.typing import FilteringBoundLogger
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure
from twisted.web.client import RequestNotSent, RequestTransmissionFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse

IDEMPOTENT = frozenset({b"GET", b"HEAD"})


def request_with_one_retry(
    agent: IAgent, method: bytes, url: bytes, headers: Headers, body: IBodyProducer | None, log: FilteringBoundLogger
) -> Deferred[IResponse]:
    """`agent.request(...)`, sent a second time if the first attempt may be retried.

    Cancelling the result cancels whichever attempt is in progress.
    """
    attempt = agent.request(method, url, headers, body)
    attempt.addErrback(_retry_once, agent, method, url, headers, body, log)
    return attempt


def may_retry(method: bytes, failure: Failure) -> bool:
    error = failure.value
    if isinstance(error, RequestNotSent):
        return True
    if method not in IDEMPOTENT or not isinstance(error, RequestTransmissionFailed | ResponseNeverReceived):
        return False
    return not any(reason.check(CancelledError) for reason in error.reasons)


def _retry_once(
    failure: Failure,
    agent: IAgent,
    method: bytes,
    url: bytes,
    headers: Headers,
    body: IBodyProducer | None,
    log: FilteringBoundLogger,
) -> Deferred[IResponse] | Failure:
    if not may_retry(method, failure):
        return failure
    log.info("upstream_retry", method=method.decode("ascii", "replace"), failed_with=type(failure.value).__name__)
    return agent.request(method, url, headers, body)
