"""Strongroom: a secrets manager, wire-compatible with Vault and OpenBao."""

__version__ = "0.1.0"
