"""RFC 8555 problem documents (``urn:ietf:params:acme:error:*``, RFC 7807 application/problem+json).

ACME errors are not Vault's ``{"errors": [...]}`` envelope: a handler raises :class:`AcmeProblem`
and the endpoint wrapper answers it as a problem document with its status, a fresh Replay-Nonce
and the directory's index link.
"""

from __future__ import annotations

import orjson

PREFIX = "urn:ietf:params:acme:error:"

#: Each problem type and the HTTP status it is answered with.
STATUS: dict[str, int] = {
    "accountDoesNotExist": 400,
    "alreadyRevoked": 400,
    "badCSR": 400,
    "badNonce": 400,
    "badPublicKey": 400,
    "badRevocationReason": 400,
    "badSignatureAlgorithm": 400,
    "connection": 400,
    "externalAccountRequired": 400,
    "incorrectResponse": 400,
    "invalidContact": 400,
    "malformed": 400,
    "orderNotReady": 403,
    "rejectedIdentifier": 400,
    "serverInternal": 500,
    "unauthorized": 403,
    "unsupportedContact": 400,
    "unsupportedIdentifier": 400,
}


class AcmeProblem(Exception):
    """An ACME error: ``kind`` is the part after ``urn:ietf:params:acme:error:``."""

    def __init__(self, kind: str, detail: str, status: int = 0, *, algorithms: list[str] | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status or STATUS.get(kind, 400)
        self.algorithms = algorithms

    def document(self) -> dict[str, object]:
        doc: dict[str, object] = {"type": PREFIX + self.kind, "detail": self.detail}
        if self.algorithms is not None:
            doc["algorithms"] = self.algorithms
        return doc

    def body(self) -> bytes:
        return orjson.dumps(self.document())


def malformed(detail: str) -> AcmeProblem:
    return AcmeProblem("malformed", detail)


def unauthorized(detail: str) -> AcmeProblem:
    return AcmeProblem("unauthorized", detail)
