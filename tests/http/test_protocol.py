from strongroom.http.protocol import rewrite_list


def test_list_becomes_get_with_list_true() -> None:
    raw = b"LIST /v1/secret/metadata/app HTTP/1.1\r\nHost: x\r\n\r\n"
    assert rewrite_list(raw) == b"GET /v1/secret/metadata/app?list=true HTTP/1.1\r\nHost: x\r\n\r\n"


def test_existing_query_is_kept() -> None:
    raw = b"LIST /v1/kv/?after=a HTTP/1.1\r\n\r\n"
    assert rewrite_list(raw) == b"GET /v1/kv/?after=a&list=true HTTP/1.1\r\n\r\n"


def test_only_the_request_line_changes() -> None:
    raw = b"LIST /v1/x HTTP/1.1\r\nContent-Length: 9\r\n\r\nLIST body"
    assert rewrite_list(raw).endswith(b"\r\nContent-Length: 9\r\n\r\nLIST body")


async def _pair() -> tuple[object, object]:
    import asyncio
    import socket

    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    return transport, peer


async def test_writes_in_one_loop_turn_leave_together() -> None:
    import asyncio

    from strongroom.http.protocol import CoalescingTransport

    transport, peer = await _pair()
    t = CoalescingTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    t.write(b"{}")
    try:
        peer.recv(1024)  # type: ignore[attr-defined]
        raise AssertionError("nothing may be sent before the turn ends")
    except BlockingIOError:
        pass
    await asyncio.sleep(0)
    assert peer.recv(1024) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"  # type: ignore[attr-defined]
    # close() flushes what is pending before closing; nothing is lost or reordered.
    t.write(b"last")
    t.close()
    await asyncio.sleep(0.01)
    assert peer.recv(1024) == b"last"  # type: ignore[attr-defined]
    assert peer.recv(1024) == b""  # type: ignore[attr-defined]
    peer.close()  # type: ignore[attr-defined]


async def test_other_transport_calls_reach_the_real_transport() -> None:
    import asyncio

    from strongroom.http.protocol import CoalescingTransport

    transport, peer = await _pair()
    t = CoalescingTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert t.get_extra_info("socket") is transport.get_extra_info("socket")  # type: ignore[attr-defined]
    assert t.is_closing() is False
    t.close()
    assert t.is_closing() is True
    peer.close()  # type: ignore[attr-defined]
