"""An http-01 responder on 127.0.0.1, as an ACME client's standalone server is."""

from __future__ import annotations

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
