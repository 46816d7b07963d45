"""A small HTTP/1.1 load generator over TLS that presents a client certificate (wrk cannot).

Not a test. N keep-alive connections on one event loop (uvloop when installed), each sending the
same request again as soon as the previous answer is read; one TLS handshake per connection, so
the client certificate is presented once per connection, as a real client with a pool does.
Prints one JSON object: completed requests per second over the duration, p50/p99 latency, the
count of non-2xx answers and of connection errors.

    python bench/loadgen.py https://127.0.0.1:8200/v1/auth/cert/login -X POST -b '{"name":"c"}' \\
        --cert client.pem --key client-key.pem --cacert ca.pem -c 16 -d 10

bench.py runs it pinned to CPU 1 (taskset), as it does wrk. One Python process drives all the
connections; its ceiling on this kind of machine is several thousand requests per second (see the
`sys/health (https, loadgen)` cell of bench.py), well above what a login costs a server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 30.0  # seconds one request may take before it counts as an error


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the connection stays open)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, keep = 0, False, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            keep = False
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep


async def connection(host: str, port: int, ctx: ssl.SSLContext | None, request: bytes, deadline: float,
                     latencies: list[float], counts: dict[str, int]) -> None:
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < deadline:
        try:
            if stream is None:
                stream = await asyncio.wait_for(
                    asyncio.open_connection(host, port, ssl=ctx, server_hostname=host if ctx else None), TIMEOUT)
            reader, writer = stream
            start = time.perf_counter()
            writer.write(request)
            status, keep = await asyncio.wait_for(read_response(reader), TIMEOUT)
            if time.monotonic() <= deadline:  # answers after the deadline are not counted, as wrk
                latencies.append(time.perf_counter() - start)
                counts["non2xx"] += not 200 <= status < 300
            if not keep:
                writer.close()
                stream = writer = None
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            counts["errors"] += 1
            if writer is not None:
                writer.close()
            stream = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    ctx = None
    if url.scheme == "https":
        ctx = ssl.create_default_context(cafile=args.cacert or None)
        if args.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if args.cert:
            ctx.load_cert_chain(args.cert, args.key or None)
    body = args.body.encode()
    head = [f"{args.method} {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1",
            f"Host: {url.netloc}", "User-Agent: strongroom-bench-loadgen"]
    if body or args.method in ("POST", "PUT"):
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += args.header
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    latencies: list[float] = []
    counts = {"non2xx": 0, "errors": 0}
    deadline = time.monotonic() + args.duration
    await asyncio.gather(*(connection(host, port, ctx, request, deadline, latencies, counts)
                           for _ in range(args.connections)))
    latencies.sort()
    return {"requests": len(latencies), "rps": len(latencies) / args.duration,
            "p50_ms": percentile(latencies, 0.50) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000, **counts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("-X", "--method", default="GET")
    ap.add_argument("-b", "--body", default="")
    ap.add_argument("-H", "--header", action="append", default=[], help="an extra header line, 'Name: value'")
    ap.add_argument("-c", "--connections", type=int, default=16)
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("--cert", default="", help="client certificate (PEM)")
    ap.add_argument("--key", default="", help="its private key (PEM)")
    ap.add_argument("--cacert", default="", help="CA that signed the server's certificate")
    ap.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
    args = ap.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
