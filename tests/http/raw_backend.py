"""A test engine for the raw-body seam: answers with its own Content-Type and headers, echoes a raw
request body, and serves HEAD on one path (as ACME's new-nonce does)."""

from __future__ import annotations

from strongroom.framework import Backend, BackendConfig, FieldData, Op, Path, Request, Response

TYPE = "raw-test"


async def cert(b: RawBackend, req: Request, d: FieldData) -> Response:
    return Response(raw_body=b"\x30\x03\x02\x01\x01", raw_content_type="application/pkix-cert",
                    headers={"Link": '<https://x/ca>;rel="up"'})


async def echo(b: RawBackend, req: Request, d: FieldData) -> Response:
    return Response(raw_body=req.raw_body if req.raw_body is not None else b"parsed:" + repr(sorted(req.data)).encode(),
                    raw_content_type="application/ocsp-response", raw_status=200)


async def nonce(b: RawBackend, req: Request, d: FieldData) -> Response:
    b.nonces += 1
    return Response(headers={"Replay-Nonce": f"n{b.nonces}"}, status=200 if req.operation is Op.HEADER else 0)


async def enveloped(b: RawBackend, req: Request, d: FieldData) -> Response:
    return Response(data={"a": 1}, headers={"Location": "https://x/order/1"})


async def injected(b: RawBackend, req: Request, d: FieldData) -> Response:
    return Response(data={"a": 1}, headers={"X-Evil": "a\r\nSet-Cookie: x=1"})


class RawBackend(Backend):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, [
            Path("cert", operations={Op.READ: cert}, unauthenticated=True),
            Path("echo", operations={Op.UPDATE: echo}),
            Path("nonce", operations={Op.READ: nonce, Op.HEADER: nonce}, unauthenticated=True),
            Path("enveloped", operations={Op.READ: enveloped}),
            Path("injected", operations={Op.READ: injected}),
        ])
        self.nonces = 0
