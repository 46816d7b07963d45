"""The HTTP edge: Vault's wire format over our own HTTP/1.1 server. Knows nothing about policy."""
