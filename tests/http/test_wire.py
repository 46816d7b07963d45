"""http/wire.py: the LIST request-line rewrite and whole-response rendering."""

from strongroom.http.wire import response, rewrite_list


def test_list_becomes_get_with_list_true() -> None:
    raw = b"LIST /v1/secret/metadata/app HTTP/1.1\r\nHost: x\r\n\r\n"
    assert rewrite_list(raw) == b"GET /v1/secret/metadata/app?list=true HTTP/1.1\r\nHost: x\r\n\r\n"


def test_existing_query_is_kept() -> None:
    raw = b"LIST /v1/kv/?after=a HTTP/1.1\r\n\r\n"
    assert rewrite_list(raw) == b"GET /v1/kv/?after=a&list=true HTTP/1.1\r\n\r\n"


def test_only_the_request_line_changes() -> None:
    raw = b"LIST /v1/x HTTP/1.1\r\nContent-Length: 9\r\n\r\nLIST body"
    assert rewrite_list(raw).endswith(b"\r\nContent-Length: 9\r\n\r\nLIST body")


def test_response_has_vaults_headers_and_length() -> None:
    out = response(200, b'{"a":1}', keep_alive=True)
    assert out == (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                   b'Content-Length: 7\r\n\r\n{"a":1}')


def test_close_head_and_http10_keep_alive() -> None:
    assert b"\r\nConnection: close\r\n" in response(400, b"{}", keep_alive=False)
    assert b"\r\nConnection: keep-alive\r\n" in response(200, b"{}", keep_alive=True, http10=True)
    head = response(200, b'{"a":1}', keep_alive=True, head=True)
    assert head.endswith(b"Content-Length: 7\r\n\r\n")


def test_no_content_has_no_length_nor_body() -> None:
    out = response(204, b"ignored", keep_alive=True)
    assert out == b"HTTP/1.1 204 No Content\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n"


def test_unknown_status_still_renders() -> None:
    assert response(599, b"", keep_alive=True).startswith(b"HTTP/1.1 599 \r\n")


def test_request_ids_are_version_4_uuids() -> None:
    import uuid

    from strongroom.http.app import new_request_id

    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for rid in ids:
        u = uuid.UUID(rid)
        assert str(u) == rid and u.version == 4 and u.variant == uuid.RFC_4122
