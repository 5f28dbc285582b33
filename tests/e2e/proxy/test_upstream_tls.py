"""Upstream HTTPS: certificates are verified against the platform trust store."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import pytest_twisted
import treq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from http_fakes import FakeUpstream, _Recorder, http_client
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.web.server import Site


def _issue(common_name: str, issuer_key: ec.EllipticCurvePrivateKey | None = None, issuer: x509.Name | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    certificate = builder.sign(issuer_key or key, hashes.SHA256())
    return key, certificate


@pytest.fixture
def tls_upstream(tmp_path: Path):
    ca_key, ca_cert = _issue("headroom test CA")
    key, cert = _issue("localhost", ca_key, ca_cert.subject)
    pem = tmp_path / "server.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    fake = FakeUpstream()
    fake.site = Site(_Recorder(fake))
    fake.port = pytest_twisted.blockon(
        serverFromString(reactor, f"ssl:0:interface=127.0.0.1:privateKey={pem}").listen(fake.site)
    )
    fake.url = f"https://localhost:{fake.port.getHost().port}"
    yield fake, ca_file
    pytest_twisted.blockon(fake.stop())


@pytest_twisted.ensureDeferred
async def test_untrusted_upstream_certificate_is_a_502(make_proxy, tls_upstream) -> None:
    fake, _ = tls_upstream
    proxy = make_proxy(openai_upstream=fake.url)
    response = await http_client().post(proxy.url + "/v1/chat/completions", data=b"{}")
    payload = json.loads(await treq.content(response))
    assert response.code == 502
    assert payload["error"]["code"] == "upstream_unreachable"
    assert fake.requests == []


@pytest_twisted.ensureDeferred
async def test_trusted_upstream_certificate_is_used(make_proxy, tls_upstream, monkeypatch) -> None:
    fake, ca_file = tls_upstream
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # OpenSSL's default trust path
    proxy = make_proxy(openai_upstream=fake.url)
    response = await http_client().post(proxy.url + "/v1/chat/completions", data=b'{"x": 1}')
    assert response.code == 200
    assert await treq.content(response) == b'{"ok": true}'
    assert fake.last.body == b'{"x": 1}'
