"""Local endpoints: the data pages answer only a Host that names this machine (DNS rebinding)."""

from __future__ import annotations

import pytest
from site_client import SiteClient
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from headroom_twisted.web.local import LocalOnly


class Secret(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"model names and traffic"


def get(host: bytes, names: tuple[str, ...] = ()) -> bytes:
    client = SiteClient(Site(LocalOnly(Secret(), names)))
    client.send(b"GET /stats HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    return bytes(client.transport.value())


@pytest.mark.parametrize(
    "host",
    [b"localhost:8787", b"LOCALHOST", b"127.0.0.1:8787", b"[::1]:8787", b"10.0.0.7", b"app.localhost", b"proxy.lan"],
)
def test_this_machines_names_and_addresses_are_answered(host: bytes) -> None:
    response = get(host, names=("proxy.lan",))
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"model names and traffic")


@pytest.mark.parametrize("host", [b"attacker.example", b"attacker.example:8787", b"127.0.0.1.attacker.example"])
def test_any_other_host_gets_421_and_nothing_of_interest(host: bytes) -> None:
    response = get(host)
    assert response.startswith(b"HTTP/1.1 421")
    assert b"model names" not in response and b"access-control" not in response.lower()
