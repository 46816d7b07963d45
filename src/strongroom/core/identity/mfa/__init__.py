"""Login MFA (Vault 1.10+): TOTP methods, login enforcements, the login gate and sys/mfa/validate.

config.py   methods, enforcements, secrets (JSON, validation) and the header/payload parsers
totp.py     the passcode check with its replay and attempt guards (over framework/otp.py)
pending.py  logins waiting for their second factor (memory only, bounded, expiring, single use)
store.py    LoginMFA, the part core owns: persistence, enrolment, matching, the gate, validation
paths.py    the identity/mfa/* path table (served by the identity/ mount)
"""

from __future__ import annotations

from strongroom.core.identity.mfa.store import LoginMFA

__all__ = ["LoginMFA"]
