import pytest

from strongroom import framework
from strongroom.errors import InvalidRequest, UnsupportedOperation, UnsupportedPath
from strongroom.framework import Backend, BackendConfig, Field, FieldData, FieldType, Op, Path, name_regex
from strongroom.logical import Request, Response

calls: list[tuple[str, object]] = []


async def read_user(b: Backend, req: Request, d: FieldData) -> Response:
    return Response(data={"name": d.get("name"), "age": d.get("age")})


async def write_user(b: Backend, req: Request, d: FieldData) -> None:
    calls.append((req.operation.value, d.get("age")))


async def user_exists(b: Backend, req: Request, d: FieldData) -> bool:
    return d.get("name") == "known"


def make() -> Backend:
    return Backend(BackendConfig(), [
        Path(f"users/{name_regex('name')}", fields={"name": Field(FieldType.STRING), "age": Field(FieldType.INT)},
             operations={Op.READ: read_user, Op.UPDATE: write_user}, exists=user_exists, synopsis="Users."),
        Path("login", operations={Op.UPDATE: write_user}, unauthenticated=True),
        Path("admin", operations={Op.UPDATE: write_user}, root=True),
    ])


async def test_dispatch_with_path_captures_overriding_body() -> None:
    b = make()
    resp = await b.handle(Request(Op.READ, "users/alice", data={"name": "mallory", "age": "7"}))
    assert resp is not None and resp.data == {"name": "alice", "age": 7}


async def test_create_falls_back_to_update_handler() -> None:
    calls.clear()
    await make().handle(Request(Op.CREATE, "users/bob", data={"age": 3}))
    assert calls == [("create", 3)]


async def test_404_405_and_type_errors() -> None:
    b = make()
    with pytest.raises(UnsupportedPath):
        await b.handle(Request(Op.READ, "nothing/here"))
    with pytest.raises(UnsupportedOperation):
        await b.handle(Request(Op.DELETE, "users/alice"))
    with pytest.raises(InvalidRequest, match='"age"'):
        await b.handle(Request(Op.UPDATE, "users/alice", data={"age": "old"}))


async def test_existence_check_and_special_paths() -> None:
    b = make()
    assert await b.exists(Request(Op.UPDATE, "users/known")) == (True, True)
    assert await b.exists(Request(Op.UPDATE, "users/new")) == (True, False)
    assert await b.exists(Request(Op.UPDATE, "login")) == (False, False)
    assert b.is_unauthenticated("login") and not b.is_unauthenticated("users/x")
    assert b.is_root_path("admin") and not b.is_root_path("login")


async def test_help() -> None:
    resp = await make().handle(Request(Op.HELP, "users/x"))
    assert resp is not None and "Users." in resp.data["help"] and "age (int)" in resp.data["help"]


def test_public_surface_is_deliberate() -> None:
    assert sorted(framework.__all__) == sorted([
        "Backend", "BackendConfig", "Field", "FieldData", "FieldType", "Handler", "Op", "Path", "Request",
        "Response", "Salt", "SecretType", "StripedLocks", "TokenParams", "addr_allowed", "cidrs_subset", "match_all", "name_regex",
        "optional_param", "parse_cidrs", "storage_of", "token_fields",
        "UsernameTemplate", "UsernameTemplateError", "compile_username_template"])
    for name in framework.__all__:
        assert hasattr(framework, name)
