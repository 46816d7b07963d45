"""The public API for backend authors: declare a path table, write handlers, raise errors.

    def paths() -> list[Path[MyBackend]]:
        return [Path(f"users/{name_regex('name')}", fields={...}, operations={Op.READ: read_user})]

Builtin backends import only this package, :mod:`strongroom.logical` and :mod:`strongroom.errors`.

Helpers a backend needs beyond the path table: ``SecretType.response`` (a leased secret whose
internal data names its type), ``Backend.put_wal``/``rollback`` (framework/wal.py: external creates
that a crash must not orphan), :class:`StripedLocks` (framework/locks.py) and :class:`Salt`
(framework/salt.py), :func:`compile_username_template` (framework/usernames.py: Vault's
``username_template`` language; parsed in usernames_parse.py, functions in usernames_funcs.py).
``Path[MyBackend]``: handlers are type-checked against their backend.
"""

from strongroom.framework.backend import Backend, BackendConfig, SecretType
from strongroom.framework.fields import Field, FieldData, FieldType
from strongroom.framework.locks import StripedLocks
from strongroom.framework.path import Handler, Path, match_all, name_regex, optional_param, storage_of
from strongroom.framework.salt import Salt
from strongroom.framework.tokenutil import TokenParams, addr_allowed, cidrs_subset, parse_cidrs, token_fields
from strongroom.framework.usernames import UsernameTemplate, compile_username_template
from strongroom.framework.usernames_funcs import UsernameTemplateError
from strongroom.logical import Operation as Op
from strongroom.logical import Request, Response

__all__ = [
    "Backend",
    "BackendConfig",
    "Field",
    "FieldData",
    "FieldType",
    "Handler",
    "Op",
    "Path",
    "Request",
    "Response",
    "Salt",
    "SecretType",
    "StripedLocks",
    "storage_of",
    "TokenParams",
    "UsernameTemplate",
    "UsernameTemplateError",
    "addr_allowed",
    "cidrs_subset",
    "compile_username_template",
    "match_all",
    "name_regex",
    "optional_param",
    "parse_cidrs",
    "token_fields",
]
