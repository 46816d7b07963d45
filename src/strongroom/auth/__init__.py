"""Auth methods (userpass, approle, ...): backends that log clients in. Same import rules as engines/.

``AUTH_METHODS`` is the mount-type registry core consults for sys/auth; the token method is core's own.
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.auth.approle import AppRoleBackend
from strongroom.auth.userpass import UserpassBackend
from strongroom.framework import Backend, BackendConfig

AUTH_METHODS: dict[str, Callable[[BackendConfig], Backend]] = {
    "userpass": UserpassBackend,
    "approle": AppRoleBackend,
}
