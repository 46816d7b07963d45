"""The PKI secrets engine (an internal CA): issuers, roles, issuance, revocation, CRL, OCSP, ACME."""
