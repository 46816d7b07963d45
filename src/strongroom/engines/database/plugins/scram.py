"""SCRAM-SHA-256 verifiers as PostgreSQL stores them (RFC 5802/7677): for the postgresql plugin's
``password_authentication = "scram-sha-256"``, so the generated password never reaches the database
in clear and PostgreSQL stores the verifier as it is. 4096 iterations and a 16-byte salt, as
PostgreSQL's own (and OpenBao's); the password is used as given (the generated ones are ASCII, which
SASLprep leaves alone)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

ITERATIONS = 4096
SALT_SIZE = 16


def verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64), a fresh salt unless given."""
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"
