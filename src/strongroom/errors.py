"""The one error hierarchy. Each class carries its HTTP status code; this is the only place codes are chosen.

    StrongroomError (500)
     ├── InvalidRequest (400)
     │    ├── CheckAndSetMismatch (400)
     │    └── InvalidCredentials (400; a failed login: counts toward user lockout, core/lockout.py)
     ├── PermissionDenied (403)
     ├── UnsupportedPath (404)
     │    └── NotFound (404, empty "errors": a missing secret)
     ├── UnsupportedOperation (405)
     ├── RequestTooLarge (413)
     ├── URITooLong (414)
     ├── UnsupportedMediaType (415)
     ├── RateLimited (429)
     ├── HeadersTooLarge (431)
     ├── Internal (500)
     ├── Sealed (503)
     └── Standby (503; the HTTP edge may redirect instead)

Handlers raise; they never build error responses. The message is what the client sees in
``{"errors": [message]}``: it must never contain a secret.
"""

from __future__ import annotations


class StrongroomError(Exception):
    """Base class. ``status_code`` is the HTTP status the edge answers with."""

    status_code: int = 500

    def __init__(self, *messages: str) -> None:
        super().__init__(*messages)
        self.messages: list[str] = [m for m in messages if m]

    @property
    def message(self) -> str:
        return "; ".join(self.messages)

    def __str__(self) -> str:
        return self.message


class InvalidRequest(StrongroomError):
    status_code = 400


class CheckAndSetMismatch(InvalidRequest):
    """KV v2 check-and-set failed; Vault answers 400 with this wording."""


class InvalidCredentials(InvalidRequest):
    """A login whose credentials are wrong for a user that exists (Vault's ErrInvalidCredentials):
    answered as any 400, and counted by core toward the user's lockout (core/lockout.py)."""


class PermissionDenied(StrongroomError):
    status_code = 403

    def __init__(self, *messages: str) -> None:
        super().__init__(*(messages or ("permission denied",)))


class UnsupportedPath(StrongroomError):
    status_code = 404


class NotFound(UnsupportedPath):
    """Nothing at this path: Vault answers 404 with an empty errors list."""

    def __init__(self) -> None:
        super().__init__()


class UnsupportedOperation(StrongroomError):
    status_code = 405

    def __init__(self, *messages: str) -> None:
        super().__init__(*(messages or ("unsupported operation",)))


class RequestTooLarge(StrongroomError):
    status_code = 413


class URITooLong(StrongroomError):
    status_code = 414


class UnsupportedMediaType(StrongroomError):
    status_code = 415


class RateLimited(StrongroomError):
    status_code = 429


class HeadersTooLarge(StrongroomError):
    status_code = 431


class Internal(StrongroomError):
    status_code = 500


class StoreUnreachable(Internal):
    """A storage backend that could not be reached (refused, timed out): worth trying again, unlike
    a configuration it refuses. The server retries at start (server.py)."""


class Sealed(StrongroomError):
    status_code = 503

    def __init__(self, *messages: str) -> None:
        super().__init__(*(messages or ("Vault is sealed",)))


class Standby(StrongroomError):
    status_code = 503

    def __init__(self, *messages: str) -> None:
        super().__init__(*(messages or ("node is in standby mode",)))
