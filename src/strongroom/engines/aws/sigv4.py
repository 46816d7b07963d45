"""The engine's SigV4 signer is the shared one (``strongroom.sigv4``), re-exported here."""

from strongroom.sigv4 import ALGORITHM, Credentials, canonical_query, sign, signing_key

__all__ = ["ALGORITHM", "Credentials", "canonical_query", "sign", "signing_key"]
