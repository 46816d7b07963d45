"""The tools behind bench.py's identity cells (bench/login_scenarios.py, bench/loadgen.py): the JWT
they sign verifies, the client certificate they make is accepted by a TLS server that requires one
from the bench CA, and the load generator reads keep-alive, chunked and closing answers. Speed is
measured by bench/, not here."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import loadgen  # noqa: E402
import login_scenarios  # noqa: E402


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_bench_jwt_is_an_es256_token_its_public_key_verifies() -> None:
    pem, token = login_scenarios.make_jwt()
    head, body, sig = token.split(".")
    assert json.loads(_unb64(head))["alg"] == "ES256"
    claims = json.loads(_unb64(body))
    assert claims["aud"] == login_scenarios.AUDIENCE and claims["sub"]
    raw = _unb64(sig)
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if wrong


def test_the_listener_stanza_names_the_server_certificate(tmp_path: Path) -> None:
    tls = login_scenarios.make_tls(tmp_path)
    stanza = login_scenarios.tls_listener(8443, tls)
    assert '"127.0.0.1:8443"' in stanza and tls["cert"] in stanza and tls["key"] in stanza
    client = x509.load_pem_x509_certificate(Path(tls["client"]).read_bytes())
    ca = x509.load_pem_x509_certificate(Path(tls["ca"]).read_bytes())
    client.verify_directly_issued_by(ca)


async def _serve(tls: dict[str, str], answers: list[bytes], seen: list[object]) -> asyncio.Server:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls["ca"])
    ctx.load_cert_chain(tls["cert"], tls["key"])
    ctx.verify_mode = ssl.CERT_REQUIRED  # no bench client certificate, no handshake

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peercert")["subject"])
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0]) if b"ength:" in head else 0
                await reader.readexactly(length)
                answer = answers[len(seen) % len(answers)]
                writer.write(answer)
                await writer.drain()
                if b"close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
])
def test_loadgen_drives_a_tls_server_that_requires_the_client_certificate(tmp_path: Path, answer: bytes) -> None:
    tls = login_scenarios.make_tls(tmp_path)
    seen: list[object] = []

    async def main() -> dict[str, object]:
        server = await _serve(tls, [answer], seen)
        port = server.sockets[0].getsockname()[1]
        args = argparse.Namespace(url=f"https://127.0.0.1:{port}/v1/auth/cert/login", method="POST",
                                  body='{"name":"bench"}', header=[], connections=2, duration=0.3,
                                  cert=tls["client"], key=tls["client_key"], cacert=tls["ca"], insecure=False)
        try:
            return await loadgen.run(args)
        finally:
            server.close()

    result = asyncio.run(main())
    assert result["requests"] and result["non2xx"] == 0 and result["errors"] == 0, result
    assert seen and all("bench-client" in str(s) for s in seen)
    if b"close" in answer:  # one connection per request
        assert len(seen) >= int(str(result["requests"]))
    else:  # keep-alive: one handshake per connection
        assert len(seen) == 2


def test_loadgen_counts_refusals_and_a_server_without_the_client_certificate_fails(tmp_path: Path) -> None:
    tls = login_scenarios.make_tls(tmp_path)
    seen: list[object] = []

    async def main(cert: str) -> dict[str, object]:
        server = await _serve(tls, [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"], seen)
        port = server.sockets[0].getsockname()[1]
        args = argparse.Namespace(url=f"https://127.0.0.1:{port}/", method="GET", body="", header=[],
                                  connections=1, duration=0.2, cert=cert, key=tls["client_key"] if cert else "",
                                  cacert=tls["ca"], insecure=False)
        try:
            return await loadgen.run(args)
        finally:
            server.close()

    refused = asyncio.run(main(tls["client"]))
    assert refused["requests"] and refused["non2xx"] == refused["requests"]
    no_cert = asyncio.run(main(""))
    assert no_cert["requests"] == 0 and no_cert["errors"]
