"""certs/<name>: a trusted certificate (a CA, or the client's own certificate) with the constraints
a presented certificate must meet and the token it gets; config: binding on renewal.

Writes merge: a field not sent keeps its stored value; the whole entry is validated (the PEM parses,
the extension constraints are ``oid:value``) before anything is stored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.auth.cert.store import (CERT_PREFIX, CONSTRAINTS, DEFAULT_OCSP_CACHE_SIZE, MAX_OCSP_CACHE_SIZE,
                                        CertRole, get_config, get_role, put_config, put_role, storage)
from strongroom.auth.cert.verify import parse_pem_chain
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex, token_fields

if TYPE_CHECKING:
    from strongroom.auth.cert import CertBackend

_OID = re.compile(r"[0-9]+(\.[0-9]+)+")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?")

_FIELDS: dict[str, Field] = {
    "name": Field(FieldType.STRING, "The name of the certificate"),
    "certificate": Field(FieldType.STRING, "The public certificate that should be trusted. Must be x509 "
                         "PEM encoded."),
    "display_name": Field(FieldType.STRING, "The display name to use for clients using this certificate."),
    "allowed_names": Field(FieldType.COMMA_STRING_SLICE, "A list of names. At least one must exist in either the "
                           "Common Name or SANs. Supports globbing. This parameter is deprecated, please use "
                           "allowed_common_names, allowed_dns_sans, allowed_email_sans, allowed_uri_sans."),
    "allowed_common_names": Field(FieldType.COMMA_STRING_SLICE, "A list of names. At least one must exist in the "
                                  "Common Name. Supports globbing."),
    "allowed_dns_sans": Field(FieldType.COMMA_STRING_SLICE, "A list of DNS names. At least one must exist in the "
                              "SANs. Supports globbing."),
    "allowed_email_sans": Field(FieldType.COMMA_STRING_SLICE, "A list of Email Addresses. At least one must exist "
                                "in the SANs. Supports globbing."),
    "allowed_uri_sans": Field(FieldType.COMMA_STRING_SLICE, "A list of URIs. At least one must exist in the SANs. "
                              "Supports globbing."),
    "allowed_organizational_units": Field(FieldType.COMMA_STRING_SLICE, "A list of Organizational Units names. At "
                                          "least one must exist in the OU field."),
    "required_extensions": Field(FieldType.COMMA_STRING_SLICE, "A comma-separated string or array of extensions "
                                 "formatted as \"oid:value\". Expects the extension value to be some type of ASN1 "
                                 "encoded string. All values much match. Supports globbing on \"value\"."),
    "ocsp_enabled": Field(FieldType.BOOL, "Whether to attempt OCSP verification of certificates at login"),
    "ocsp_ca_certificates": Field(FieldType.STRING, "Any additional CA certificates needed to communicate with OCSP "
                                  "servers"),
    "ocsp_servers_override": Field(FieldType.COMMA_STRING_SLICE, "A comma-separated list of OCSP server addresses. "
                                   "If unset, the OCSP server is determined from the AuthorityInformationAccess "
                                   "extension on the certificate being inspected."),
    "ocsp_fail_open": Field(FieldType.BOOL, "If set to true, if an OCSP revocation cannot be made successfully, "
                            "login will proceed rather than failing. If false, failing to get an OCSP status fails "
                            "the request.", default=False),
    "ocsp_query_all_servers": Field(FieldType.BOOL, "If set to true, rather than accepting the first successful "
                                    "OCSP response, query all servers and consider the certificate valid only if "
                                    "all servers agree.", default=False),
    "ocsp_max_retries": Field(FieldType.INT, "The number of retries the OCSP client should attempt per query.",
                              default=4),
    "ocsp_this_update_max_age": Field(FieldType.DURATION, "If greater than 0, specifies the maximum age of an OCSP "
                                      "thisUpdate field to avoid accepting old responses without a nextUpdate field.",
                                      default=0),
    **token_fields(legacy=("policies", "ttl", "max_ttl", "period", "bound_cidrs")),
}

_CONFIG_FIELDS: dict[str, Field] = {
    "disable_binding": Field(FieldType.BOOL, "If set, during renewal, skips the matching of presented client "
                             "identity with the client identity used during login. Defaults to false."),
    "enable_identity_alias_metadata": Field(FieldType.BOOL, "If set, metadata of the certificate including the "
                                            "metadata corresponding to allowed_metadata_extensions will be stored "
                                            "in the alias. Defaults to false."),
    "ocsp_cache_size": Field(FieldType.INT, "The size of the in memory OCSP response cache, shared by all "
                             "configured certs", default=DEFAULT_OCSP_CACHE_SIZE),
}


def paths() -> list[Path[CertBackend]]:
    return [
        Path("certs/?", operations={Op.LIST: list_certs}, synopsis="Manage trusted certificates used for "
             "authentication."),
        Path(f"certs/{name_regex('name')}", fields=_FIELDS,
             operations={Op.READ: read_cert, Op.CREATE: write_cert, Op.UPDATE: write_cert, Op.DELETE: delete_cert},
             exists=cert_exists, synopsis="Manage trusted certificates used for authentication."),
        Path("config", fields=_CONFIG_FIELDS, operations={Op.READ: read_config, Op.UPDATE: write_config},
             synopsis="Configure the cert auth method."),
    ]


def _apply(role: CertRole, d: FieldData) -> None:
    role.token.update(d)
    if d.has("certificate"):
        role.certificate = d.get("certificate")
    if not parse_pem_chain(role.certificate):
        raise InvalidRequest("failed to parse certificate")
    if d.has("display_name"):
        role.display_name = d.get("display_name")
    role.display_name = role.display_name or role.name
    for key in CONSTRAINTS:
        if d.has(key):
            role.constraints[key] = [v.strip() for v in d.get(key) if v.strip()]
    _apply_ocsp(role, d)
    for ext in role.constraints["required_extensions"]:
        oid, sep, _ = ext.partition(":")
        if not sep or not _OID.fullmatch(oid):
            raise InvalidRequest(f'invalid required_extensions value "{ext}": expected "oid:value"')


def _apply_ocsp(role: CertRole, d: FieldData) -> None:
    o = role.ocsp
    if d.has("ocsp_enabled"):
        o.enabled = d.get("ocsp_enabled")
    if d.has("ocsp_ca_certificates"):
        o.ca_certificates = d.get("ocsp_ca_certificates")
        if o.ca_certificates.strip() and not parse_pem_chain(o.ca_certificates):
            raise InvalidRequest("failed to parse ocsp_ca_certificates")
    if d.has("ocsp_servers_override"):
        o.servers_override = [v.strip() for v in d.get("ocsp_servers_override") if v.strip()]
        for url in o.servers_override:
            if not _URL.fullmatch(url):
                raise InvalidRequest(f"invalid OCSP server URL: {url}")
    if d.has("ocsp_fail_open"):
        o.fail_open = d.get("ocsp_fail_open")
    if d.has("ocsp_query_all_servers"):
        o.query_all_servers = d.get("ocsp_query_all_servers")
    if d.has("ocsp_max_retries"):
        o.max_retries = d.get("ocsp_max_retries")
        if o.max_retries < 0:
            raise InvalidRequest("ocsp_max_retries can not be a negative number")
    if d.has("ocsp_this_update_max_age"):
        o.this_update_max_age = d.get("ocsp_this_update_max_age")
        if o.this_update_max_age < 0:
            raise InvalidRequest("ocsp_this_update_max_age can not be a negative number")


async def list_certs(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    keys = await storage(req).list(CERT_PREFIX)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def cert_exists(b: CertBackend, req: Request, d: FieldData) -> bool:
    return await get_role(storage(req), d.get("name")) is not None


async def read_cert(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    role = await get_role(storage(req), d.get("name"))
    if role is None:
        raise NotFound()
    return Response(data=role.to_response())


async def write_cert(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("name").lower()
    s = storage(req)
    role = await get_role(s, name) or CertRole(name=name)
    _apply(role, d)
    await put_role(s, role)
    b.forget_trusted()
    return None


async def delete_cert(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(CERT_PREFIX + d.get("name").lower())
    b.forget_trusted()
    return None


async def read_config(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    return Response(data=(await get_config(storage(req))).to_json())


async def write_config(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    s = storage(req)
    config = await get_config(s)
    if d.has("disable_binding"):
        config.disable_binding = d.get("disable_binding")
    if d.has("enable_identity_alias_metadata"):
        config.enable_identity_alias_metadata = d.get("enable_identity_alias_metadata")
    if d.has("ocsp_cache_size"):
        size = d.get("ocsp_cache_size")
        if size < 2 or size > MAX_OCSP_CACHE_SIZE:
            raise InvalidRequest(f"invalid cache size, must be >= 2 and <= {MAX_OCSP_CACHE_SIZE}")
        config.ocsp_cache_size = size
    await put_config(s, config)
    await b.resize_ocsp_cache(config.ocsp_cache_size)
    return None
