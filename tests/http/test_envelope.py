import orjson

from strongroom.errors import NotFound, PermissionDenied
from strongroom.http.envelope import render, render_error
from strongroom.logical import Auth, LeaseInfo, Response


def test_empty_response_is_204() -> None:
    assert render(None, "rid") == (204, b"")
    assert render(Response(), "rid") == (204, b"")


def test_data_envelope_has_all_vault_keys() -> None:
    status, body = render(Response(data={"a": 1}), "rid")
    doc = orjson.loads(body)
    assert status == 200
    assert doc == {"request_id": "rid", "lease_id": "", "renewable": False, "lease_duration": 0,
                   "data": {"a": 1}, "wrap_info": None, "warnings": None, "auth": None}


def test_sys_inline_data_and_lease_fields() -> None:
    _, body = render(Response(data={"term": 1}, secret=LeaseInfo(ttl=60, renewable=True, lease_id="x/1")),
                     "rid", inline_data=True)
    doc = orjson.loads(body)
    assert doc["term"] == 1 and doc["data"] == {"term": 1}
    assert (doc["lease_id"], doc["lease_duration"], doc["renewable"]) == ("x/1", 60, True)


def test_auth_block() -> None:
    _, body = render(Response(auth=Auth(client_token="hvs.x", accessor="acc", policies=["default"],
                                        token_policies=["default"], lease_duration=30)), "rid")
    auth = orjson.loads(body)["auth"]
    assert auth["client_token"] == "hvs.x" and auth["accessor"] == "acc" and auth["lease_duration"] == 30
    assert auth["token_type"] == "service" and auth["metadata"] is None


def test_errors() -> None:
    assert render_error(PermissionDenied()) == (403, b'{"errors":["permission denied"]}')
    assert render_error(NotFound()) == (404, b'{"errors":[]}')


def test_forced_status_with_body() -> None:
    status, body = render(Response(data={"data": None}, status=404), "rid")
    assert status == 404 and orjson.loads(body)["data"] == {"data": None}
