"""The HTTP edge: Vault's wire format over ASGI. Knows nothing about policy."""
