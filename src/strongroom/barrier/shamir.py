"""Shamir secret sharing over GF(2^8); pure functions, no I/O.

Each byte of the secret is the constant term of its own random polynomial of degree
``threshold - 1``. A share is the evaluation of every polynomial at one x-coordinate.

Share format (the same shape Vault's operators see): ``len(secret)`` y-values followed by ONE
trailing byte holding the share's x-coordinate. x-coordinates are random, distinct and nonzero
(x = 0 would be the secret itself).

Field: GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11B). Addition is XOR;
multiplication goes through log/exp tables built once at import, using 0x03 (a generator of the
multiplicative group) as the base.

Combining fewer than ``threshold`` shares does not fail: it yields an unrelated value. Callers
detect that one level up (the barrier's authenticated decryption of the root key fails).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

from strongroom.errors import InvalidRequest

MAX_PARTS = 255  # x-coordinates are the 255 nonzero field elements
_POLY = 0x11B
_GENERATOR = 0x03


def _build_tables() -> tuple[list[int], list[int]]:
    exp = [0] * 510  # doubled so exp[log a + log b] never needs a modulo
    log = [0] * 256  # log[0] is undefined; every use masks the zero case out
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        # value *= 3, i.e. value ^ (value * 2), reducing by 0x11B when the degree reaches 8
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= _POLY
        value ^= doubled
    for power in range(255, 510):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _build_tables()


def _mul(a: int, b: int) -> int:
    """Field product. The zero case is masked rather than branched on, since a or b may be a secret byte."""
    product = _EXP[_LOG[a] + _LOG[b]]
    return product & -((a != 0) & (b != 0))


def _div(a: int, b: int) -> int:
    """a / b for a public, nonzero divisor b (an x-coordinate expression)."""
    quotient = _EXP[_LOG[a] + 255 - _LOG[b]]
    return quotient & -(a != 0)


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    """Horner evaluation of coefficients[0] + coefficients[1]*x + ... at x."""
    result = 0
    for coefficient in reversed(coefficients):
        result = _mul(result, x) ^ coefficient
    return result


def split(secret: bytes, parts: int, threshold: int) -> list[bytes]:
    """Split ``secret`` into ``parts`` shares, any ``threshold`` of which recover it."""
    if not 2 <= parts <= MAX_PARTS:
        raise InvalidRequest(f"parts must be between 2 and {MAX_PARTS}")
    if not 2 <= threshold <= parts:
        raise InvalidRequest("threshold must be at least 2 and at most parts")
    if not secret:
        raise InvalidRequest("cannot split an empty secret")

    # SECURITY: x-coordinates are drawn at random (distinct, nonzero) so a share's position in the
    # output list says nothing; the coefficients come from the OS CSPRNG and are uniform over the
    # whole field (zero included), which is what makes threshold-1 shares reveal nothing.
    xs = secrets.SystemRandom().sample(range(1, 256), parts)
    shares = [bytearray(len(secret) + 1) for _ in range(parts)]
    for share, x in zip(shares, xs):
        share[-1] = x

    degree = threshold - 1
    randomness = os.urandom(len(secret) * degree)
    for index, byte in enumerate(secret):
        coefficients = [byte, *randomness[index * degree : (index + 1) * degree]]
        for share, x in zip(shares, xs):
            share[index] = _evaluate(coefficients, x)
    return [bytes(share) for share in shares]


def combine(shares: Sequence[bytes]) -> bytes:
    """Recover the secret from shares produced by :func:`split` (Lagrange interpolation at x = 0)."""
    if len(shares) < 2:
        raise InvalidRequest("at least two shares are required to combine")
    length = len(shares[0])
    if length < 2:
        raise InvalidRequest("shares must be at least two bytes long")
    if any(len(share) != length for share in shares):
        raise InvalidRequest("all shares must be the same length")
    xs = [share[-1] for share in shares]
    if len(set(xs)) != len(xs):
        raise InvalidRequest("duplicate share detected")

    # The Lagrange basis at 0 depends only on the (public) x-coordinates: compute it once.
    # basis_j = prod_{m != j} x_m / (x_m - x_j); subtraction in GF(2^8) is XOR.
    basis: list[int] = []
    for j, xj in enumerate(xs):
        weight = 1
        for m, xm in enumerate(xs):
            if m != j:
                weight = _mul(weight, _div(xm, xm ^ xj))
        basis.append(weight)

    secret = bytearray(length - 1)
    for share, weight in zip(shares, basis):
        for index in range(length - 1):
            secret[index] ^= _mul(share[index], weight)
    return bytes(secret)


__all__ = ["MAX_PARTS", "combine", "split"]
