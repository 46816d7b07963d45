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
