"""An http-01 responder on 127.0.0.1, as an ACME client's standalone server is."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class ChallengeServer:
    """Serves http-01 key authorizations on 127.0.0.1 (what an ACME client's standalone server does)."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.rsplit("/", 1)[-1]
                body = answers.get(token)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write((body or "").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class DnsServer:
    """A UDP DNS server on 127.0.0.1 answering TXT questions from ``records`` (name -> values),
    NXDOMAIN for other names: what an ACME client's DNS provider publishes for dns-01."""

    def __init__(self) -> None:
        import socket
        import struct

        self.records: dict[str, list[str]] = {}
        # Lines "NAME VALUE" read at each question too (what a certbot auth hook writes).
        self.records_file: Path | None = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        records = self.records

        def serve() -> None:
            while True:
                try:
                    msg, addr = self.sock.recvfrom(4096)
                except OSError:
                    return
                qid = struct.unpack("!H", msg[:2])[0]
                off, labels = 12, []
                while msg[off]:
                    labels.append(msg[off + 1:off + 1 + msg[off]].decode())
                    off += 1 + msg[off]
                question = msg[12:off + 5]
                name = ".".join(labels).lower()
                if self.records_file is not None and self.records_file.exists():
                    for line in self.records_file.read_text().splitlines():
                        n, _, v = line.partition(" ")
                        if n.lower() == name and v not in records.setdefault(name, []):
                            records[name].append(v)
                values = records.get(name)
                flags = 0x8180 if values is not None else 0x8183
                answers = b""
                for v in values or []:
                    rdata = bytes([len(v)]) + v.encode()
                    answers += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(rdata)) + rdata
                header = struct.pack("!HHHHHH", qid, flags, 1, len(values or []), 0, 0)
                self.sock.sendto(header + question + answers, addr)

        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def tls_alpn_cert(identifier: str, key_authorization: str, *, digest_of: str = "", critical: bool = True,
                  tmp: Path) -> tuple[Path, Path]:
    """RFC 8737's challenge certificate (self-signed, SAN = identifier, critical acmeIdentifier
    holding SHA-256 of the key authorization) as PEM files for an ssl context."""
    import datetime as dt
    import hashlib
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(identifier))
    except ValueError:
        san = x509.DNSName(identifier)
    digest = hashlib.sha256((digest_of or key_authorization).encode()).digest()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme challenge")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31"),
                                                      b"\x04\x20" + digest), critical=critical)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / f"{len(list(tmp.iterdir()))}-cert.pem", tmp / f"{len(list(tmp.iterdir()))}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def tls_alpn_server(cert: tuple[Path, Path], *, alpn: bool = True) -> asyncio.Server:
    """A TLS server on 127.0.0.1 presenting ``cert``, negotiating acme-tls/1 (unless ``alpn`` is off)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    if alpn:
        ctx.set_alpn_protocols(["acme-tls/1"])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
