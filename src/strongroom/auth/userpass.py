"""Username/password login. Users live at users/<name>; login is login/<name>.

Storage layout (in the mount's barrier-encrypted view)::

    user/<username>     {"password_hash": "$2b$10$...", "token": {TokenParams}}

SECURITY: a password exists only in the request that carries it. What is stored is its bcrypt
hash (cost 10, Vault's). Hashing and checking run in a worker thread (bcrypt costs ~70 ms) so the
event loop never stalls; bcrypt's check compares in constant time. A login for an unknown user
still checks the password against a dummy hash and fails with the same message, so neither the
answer nor its timing tells whether the user exists. Usernames are case-insensitive, as in Vault.

Beyond Vault, a user's next logins within a few minutes skip bcrypt (see :class:`VerifiedPasswords`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import bcrypt

from strongroom.durations import parse_duration
from strongroom.errors import InvalidCredentials, InvalidRequest, NotFound
from strongroom.framework import (
    Backend,
    BackendConfig,
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
    TokenParams,
    name_regex,
    storage_of,
    token_fields,
)
from strongroom.framework.records import load_record, save_record
from strongroom.logical import Alias, Auth

USER_PREFIX = "user/"
# Vault's bcrypt.DefaultCost.
BCRYPT_COST = 10
# Bounds on the cost of a pre-hashed password (OpenBao's): weaker is unsafe, stronger a DoS lever.
MIN_HASH_COST, MAX_HASH_COST = 5, 12
INVALID_CREDENTIALS = "invalid username or password"
# What an unknown user's password is checked against: a cost-10 hash of random bytes nobody kept,
# so the check takes as long as a real one and can never succeed.
DUMMY_HASH = b"$2b$10$LdxO34Z.F7rddBNV5TwO9u4aVOlfZB3HtWiVBv3D76GS/YB8lQSva"


def paths() -> list[Path[UserpassBackend]]:
    username = Field(FieldType.LOWERCASE_STRING, "Username for this user.")
    password_fields = {
        "password": Field(FieldType.STRING, "Password for this user.", sensitive=True),
        "password_hash": Field(FieldType.STRING, "Pre-hashed bcrypt password for this user. Mutually "
                               "exclusive with password.", sensitive=True),
    }
    return [
        Path("users/?", operations={Op.LIST: list_users}, synopsis="List the users."),
        Path(
            f"users/{name_regex('username')}",
            fields={"username": username, **password_fields,
                    **token_fields(legacy=("policies", "ttl", "max_ttl", "bound_cidrs"))},
            operations={Op.READ: read_user, Op.CREATE: write_user, Op.UPDATE: write_user,
                        Op.DELETE: delete_user},
            exists=user_exists,
            synopsis="Manage users allowed to authenticate.",
            description="Deleting a user does not revoke the tokens it has already logged in for.",
        ),
        Path(
            f"users/{name_regex('username')}/password",
            fields={"username": username, **password_fields},
            operations={Op.UPDATE: update_password},
            synopsis="Reset a user's password.",
        ),
        Path(
            f"users/{name_regex('username')}/policies",
            fields={"username": username, **token_fields(legacy=("policies",))},
            operations={Op.UPDATE: update_policies},
            synopsis="Update the policies of a user's tokens.",
        ),
        Path(
            f"login/{name_regex('username')}",
            fields={"username": username,
                    "password": Field(FieldType.STRING, "Password for this user.", sensitive=True)},
            operations={Op.UPDATE: login},
            unauthenticated=True,
            synopsis="Log in with a username and password.",
        ),
    ]


@dataclass(slots=True)
class User:
    password_hash: str = ""
    token: TokenParams = field(default_factory=TokenParams)

    def to_json(self) -> dict[str, Any]:
        return {"password_hash": self.password_hash, "token": self.token.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> User:
        return cls(password_hash=str(d.get("password_hash", "")), token=TokenParams.from_json(d.get("token") or {}))


class UserpassBackend(Backend):
    backend_type = "credential"
    help = ("The userpass auth method lets users log in with a username and password.\n"
            "Operators manage users at users/<name>; users log in at login/<name>.")

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths())
        ttl = parse_duration(config.options.get(VERIFIED_TTL_OPTION) or VERIFIED_TTL,
                             name=VERIFIED_TTL_OPTION)
        self.verified = VerifiedPasswords(float(ttl))

    async def deactivate(self) -> None:
        self.verified.forget()  # unmount, tune, seal: nothing verified survives
        await super().deactivate()

    async def login_alias(self, req: Request) -> str:
        """The user a login request names (Vault's alias lookahead), for core's user lockout."""
        if req.operation in (Op.UPDATE, Op.CREATE) and req.path.startswith("login/"):
            return req.path[len("login/"):].lower()
        return ""


# -- password hashing (in a thread: bcrypt is deliberately slow) --------------------------------
async def hash_password(password: str) -> bytes:
    return await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(BCRYPT_COST))


async def check_password(password: str, hashed: bytes) -> bool:
    return await asyncio.to_thread(_bcrypt_check, password.encode(), hashed)


def _bcrypt_check(password: bytes, hashed: bytes) -> bool:
    # bcrypt.checkpw compares the digests in constant time.
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a malformed stored hash matches nothing
        return False


# -- recently verified passwords ----------------------------------------------------------------
VERIFIED_TTL_OPTION = "verified_password_ttl"  # mount option; "0" turns the cache off
VERIFIED_TTL = "5m"
VERIFIED_MAX = 4096  # users remembered per mount; the oldest go first
# scrypt's cost for a remembered password: ~2 ms and 1 MiB per guess, against bcrypt's ~70 ms.
_SCRYPT = {"n": 1024, "r": 8, "p": 1, "dklen": 32}


class VerifiedPasswords:
    """Users whose password bcrypt accepted in the last ``ttl`` seconds, so that their next logins
    cost a cheap keyed check instead of bcrypt's ~70 ms of CPU (services that log in often, a user
    opening several sessions).

    SECURITY:
      - Kept per user: ``scrypt(password, salt = key || stored bcrypt hash)``, where ``key`` is 32
        random bytes made when the mount is set up, held in memory only and never stored; no
        password. The stored hash in the salt means a new password (or a re-created user) never
        matches an entry made for the old one.
      - Every login computes that tag, cached or not, known user or not, so timing tells neither
        whether the user exists nor whether it logged in recently; a wrong password never matches
        and still pays bcrypt, so guessing online costs what it did.
      - What it gives up: someone who can read the server's memory (who then holds the barrier's
        keys and every secret anyway) can test guesses of a recent user's password at scrypt's
        cost instead of bcrypt's. ``verified_password_ttl=0`` (mount option) turns it off.
      - Entries end at ``ttl``, on the mount's unmount, tune or seal, and past ``VERIFIED_MAX``.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._key = os.urandom(32)
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def forget(self) -> None:
        self._entries.clear()
        self._key = os.urandom(32)

    async def check(self, name: str | None, password: str, hashed: bytes) -> bool:
        """Whether ``password`` is the one ``hashed`` was made from: from a remembered verification
        of ``name`` (None: an unknown user, never remembered) or by bcrypt, remembered if it holds."""
        if self.ttl <= 0:
            return await check_password(password, hashed)
        held = self._entries.get(name) if name is not None else None
        known = held[0] if held is not None and held[1] > time.monotonic() else None
        ok, tag, remembered = await asyncio.to_thread(self._verify, password.encode(), hashed, known)
        if ok and name is not None and not remembered:
            self._entries[name] = (tag, time.monotonic() + self.ttl)
            self._entries.move_to_end(name)
            while len(self._entries) > VERIFIED_MAX:
                self._entries.popitem(last=False)
        return ok

    def _verify(self, password: bytes, hashed: bytes, known: bytes | None) -> tuple[bool, bytes, bool]:
        """(matched, tag, matched from memory); on a worker thread (scrypt and bcrypt drop the GIL)."""
        tag = hashlib.scrypt(password, salt=self._key + hashed, **_SCRYPT)
        if known is not None and hmac.compare_digest(known, tag):
            return True, tag, True
        return _bcrypt_check(password, hashed), tag, False


def _valid_prehash(value: str) -> str:
    """A client-supplied bcrypt hash, checked for form and cost."""
    parts = value.split("$")
    if len(parts) != 4 or parts[0] or parts[1] not in ("2a", "2b", "2y") or not parts[2].isdigit() \
            or len(parts[3]) != 53:
        raise InvalidRequest("password_hash is not a valid bcrypt hash")
    cost = int(parts[2])
    if cost < MIN_HASH_COST:
        raise InvalidRequest(f"bcrypt cost of {cost} is too low, want {MIN_HASH_COST} at minimum")
    if cost > MAX_HASH_COST:
        raise InvalidRequest(f"bcrypt cost of {cost} exceeds maximum cost of {MAX_HASH_COST}")
    return value


async def _new_hash(d: FieldData) -> str:
    password: str = d.get("password")
    prehashed: str = d.get("password_hash")
    if password and prehashed:
        raise InvalidRequest("only one of password or password_hash may be provided")
    if not password and not prehashed:
        raise InvalidRequest("must provide either password or password_hash")
    if prehashed:
        return _valid_prehash(prehashed)
    return (await hash_password(password)).decode()


# -- storage ------------------------------------------------------------------------------------
_storage = storage_of  # the mount's storage view


async def get_user(req: Request, name: str) -> User | None:
    return await load_record(_storage(req), USER_PREFIX + name.lower(), User.from_json)


async def put_user(req: Request, name: str, user: User) -> None:
    await save_record(_storage(req), USER_PREFIX + name.lower(), user)


# -- handlers -----------------------------------------------------------------------------------
async def list_users(b: UserpassBackend, req: Request, d: FieldData) -> Response | None:
    keys = await _storage(req).list(USER_PREFIX)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def user_exists(b: UserpassBackend, req: Request, d: FieldData) -> bool:
    return await get_user(req, d.get("username")) is not None


async def read_user(b: UserpassBackend, req: Request, d: FieldData) -> Response | None:
    user = await get_user(req, d.get("username"))
    if user is None:
        raise NotFound()
    return Response(data=dict(sorted(user.token.to_response().items())))


async def write_user(b: UserpassBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("username")
    user = await get_user(req, name)
    if user is None and not (d.get("password") or d.get("password_hash")):
        raise InvalidRequest("must provide either password or password_hash")
    user = user or User()
    user.token.update(d)  # validates before anything is written
    if d.get("password") or d.get("password_hash"):
        user.password_hash = await _new_hash(d)
    await put_user(req, name, user)
    return None


async def delete_user(b: UserpassBackend, req: Request, d: FieldData) -> Response | None:
    await _storage(req).delete(USER_PREFIX + d.get("username"))
    return None


async def update_password(b: UserpassBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("username")
    user = await get_user(req, name)
    if user is None:
        raise InvalidRequest("username does not exist")
    user.password_hash = await _new_hash(d)
    await put_user(req, name, user)
    return None


async def update_policies(b: UserpassBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("username")
    user = await get_user(req, name)
    if user is None:
        raise InvalidRequest("username does not exist")
    user.token.update(d)
    await put_user(req, name, user)
    return None


async def login(b: UserpassBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("username")
    password: str = d.get("password")
    if not password:
        raise InvalidRequest("missing password")
    user = await get_user(req, name)
    stored = user.password_hash if user is not None else ""
    # SECURITY: an unknown user (or one without a hash) costs the same checks and gets the same
    # error as a wrong password. The password itself never reaches an error or a log.
    matched = await b.verified.check(name if stored else None, password, stored.encode() if stored else DUMMY_HASH)
    if not matched or user is None or not stored:
        # A known user's wrong password counts toward its lockout (core/lockout.py), as OpenBao;
        # the answer is the same either way.
        raise (InvalidCredentials if stored else InvalidRequest)(INVALID_CREDENTIALS)
    user.token.check_source(req.connection.remote_addr)
    auth = Auth(metadata={"username": name}, display_name=name, alias=Alias(name=name))
    return Response(auth=user.token.fill_auth(auth, req.connection.remote_addr))
