"""login: the client certificate presented on the TLS connection in, a token out; and the renewal
check (Vault's pathLoginRenew).

Order (Vault's): a certificate was presented (400 "no client certificate found", as OpenBao); the
roles considered are all of them, or the one named by ``name``; the roles that trust the
certificate (verify.py) are kept when the leaf meets their constraints; the first is used; the
caller's address must be within its token_bound_cidrs.

Renewal: unless ``config.disable_binding``, the renewing request must present a certificate that
logs in as the same role and carries the subject or authority key id of the login's certificate;
the role must still exist with the same policies.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from cryptography import x509

from strongroom.auth.cert.store import CertRole, get_config, get_role, storage
from strongroom.auth.cert.ocsp import OcspError, hex_serial
from strongroom.auth.cert.verify import identity, judge, key_id, key_ids, meets_constraints, parse_pem_chain
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, addr_allowed
from strongroom.logical import RENEWING_CONNECTION, Auth, Connection, Storage

if TYPE_CHECKING:
    from strongroom.auth.cert import CertBackend

# OpenBao's words (Vault's code also has "client certificate must be supplied" further in).
NO_CERT = "no client certificate found"
NOT_TRUSTED = "invalid certificate or no client certificate supplied"
NO_MATCH = "no chain matching all constraints could be found for this login certificate"


def paths() -> list[Path[CertBackend]]:
    return [Path("login", fields={
        "name": Field(FieldType.STRING, "The name of the certificate role to authenticate against."),
    }, operations={Op.UPDATE: login}, unauthenticated=True, synopsis="Authenticate using a client certificate.")]


async def match(b: CertBackend, s: Storage, connection: Connection | None,
                name: str = "") -> tuple[CertRole, x509.Certificate]:
    """The role the connection's client certificate logs in as, and the leaf; 400 otherwise."""
    if connection is None or not connection.peer_certificate:
        raise InvalidRequest(NO_CERT)
    trusted = await b.trusted(s)
    if name:
        role = trusted.roles.get(name.lower())
        if role is None:
            raise InvalidRequest(NOT_TRUSTED)
        trusted = trusted.only(role.name)
    chain = connection.peer_certificate_chain or (connection.peer_certificate,)
    now = datetime.datetime.now(datetime.UTC)
    verdict = judge(trusted, chain, now)
    if verdict is None:
        raise InvalidRequest(NOT_TRUSTED)
    errors: list[str] = []
    revoked_by_crl: bool | None = None
    for role_name in verdict.names:
        role = trusted.roles[role_name]
        if not meets_constraints(role, verdict.who):
            continue
        if revoked_by_crl is None:  # Vault's rule: any serial of the chain in any registered CRL
            serials = await b.crl_serials(s)
            revoked_by_crl = any(str(c.serial_number) in serials for c in verdict.chain)
        if revoked_by_crl:
            continue
        if role.ocsp.enabled and len(verdict.chain) >= 2:
            problem = await _ocsp_problem(b, s, role, verdict.chain, now)
            if problem is not None:
                if problem and problem not in errors:
                    errors.append(problem)
                continue
        return role, verdict.leaf
    if errors:
        raise InvalidRequest(f"{NO_MATCH}; additionally got errors during verification: {_multierror(errors)}")
    raise InvalidRequest(NO_MATCH)


def _multierror(errors: list[str]) -> str:
    """Go's go-multierror text, which Vault's message carries."""
    n = len(errors)
    points = "\n\t* ".join(errors)
    return f"{n} error{'s' if n > 1 else ''} occurred:\n\t* {points}\n\n"


async def _ocsp_problem(b: CertBackend, s: Storage, role: CertRole, chain: list[x509.Certificate],
                        now: datetime.datetime) -> str | None:
    """None when OCSP lets the leaf in; "" when the responder says revoked (Vault keeps that quiet);
    the error otherwise. Unreachable or unknown lets it in only with ocsp_fail_open."""
    leaf, issuer = chain[0], chain[1]
    try:
        client = await b.ocsp_client(s)
        status = await client.status(leaf, issuer, role.ocsp, parse_pem_chain(role.ocsp.ca_certificates),
                                              now)
    except OcspError as e:
        if role.ocsp.fail_open:
            b.system.logger.warning("cert auth: OCSP check of serial %s failed, continuing in fail open mode: %s",
                                    hex_serial(leaf.serial_number), e)
            return None
        return str(e)
    if status.revoked:
        return ""
    if status.unknown and not role.ocsp.fail_open:
        return f"unknown OCSP status for cert with serial number {hex_serial(leaf.serial_number)}"
    return None


async def login(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    s = storage(req)
    role, leaf = await match(b, s, req.connection, d.get("name"))
    addr = req.connection.remote_addr
    if role.token.token_bound_cidrs and not addr_allowed(addr, role.token.token_bound_cidrs):
        raise PermissionDenied("login request originated from invalid CIDR")
    skid, akid = key_ids(leaf)
    common = identity(leaf).common_name
    metadata = {"cert_name": role.name, "common_name": common, "serial_number": str(leaf.serial_number),
                "subject_key_id": key_id(skid), "authority_key_id": key_id(akid)}
    auth = role.token.fill_auth(Auth(metadata=metadata, display_name=role.display_name), addr)
    return Response(auth=auth)


async def renew_auth(b: CertBackend, s: Storage, auth: Auth) -> None:
    config = await get_config(s)
    name = auth.metadata.get("cert_name", "")
    if not config.disable_binding:
        role, leaf = await match(b, s, RENEWING_CONNECTION.get())
        skid, akid = key_ids(leaf)
        # Vault's rule: the subject or the authority key id of the login's certificate (kept in the
        # token's metadata; token entries keep no internal data).
        same = (auth.metadata.get("subject_key_id") == key_id(skid)
                or auth.metadata.get("authority_key_id") == key_id(akid))
        if role.name != name or not same:
            raise InvalidRequest("client identity during renewal not matching client identity used during login")
    current = await get_role(s, name)
    if current is None:
        raise InvalidRequest("the certificate this token logged in with is no longer trusted, not renewing")
    if set(current.token.token_policies) - {"default"} != set(auth.token_policies or auth.policies) - {"default"}:
        raise InvalidRequest("policies have changed, not renewing")
