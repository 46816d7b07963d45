"""The pki secrets engine: an internal certificate authority, wire-compatible with OpenBao's.

Paths (the table of contents; handlers live in the sibling modules)::

    root/generate/<type>, intermediate/generate/<type>      new CA keys and certificates   new_issuers.py
    root/sign-intermediate, intermediate/set-signed, config/ca, issuers/import/*           new_issuers.py
    issuers, issuer/<ref>[/pem|der|json|revoke], config/issuers, root/replace             issuers.py
    keys, keys/generate/*, key/<ref>, config/keys                                          keys.py
    ca[/pem], ca_chain, cert/ca_chain, root (DELETE)                                      ca.py
    roles, roles/<name>                                                                    roles.py
    [issuer/<ref>/]issue/<role>, sign/<role>, sign-verbatim                                issue.py
    revoke, certs, cert/<serial>, crl[/pem], issuer/<ref>/crl, config/crl|urls|cluster        revoke.py
    tidy, tidy-status, config/auto-tidy                                                    tidy.py
    ocsp, ocsp/<request>                                                                   ocsp.py
    config/acme, acme/..., the EAB paths (the ACME server)                                acme/

Storage layout: store.py; what creating a key or an issuer writes: provision.py. Decoded issuers and
keys are cached per mount (state.py) and dropped on every write under ``config/``. The ACME server (the ``acme`` subpackage) calls
:meth:`PkiBackend.acme_issue`, :meth:`PkiBackend.acme_revoke` and :meth:`PkiBackend.cluster_path`
(its ``AcmeCA`` seam); its paths are appended to :func:`paths`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.durations import parse_duration
from strongroom.engines._request import warn_ignored_params
from strongroom.engines.pki import ca, crypto, issue, issuers, keys, new_issuers, ocsp, revoke, roles, tidy
from strongroom.engines.pki.acme import acme_deactivate, acme_paths
from strongroom.engines.pki.acme_hooks import AcmeIssued
from strongroom.engines.pki.state import LoadedIssuer, PkiState, Snapshot
from strongroom.engines.pki.store import (
    CERT_PREFIX,
    CRL_PREFIX,
    REVOKED_PREFIX,
    ROLE_PREFIX,
    get_json,
    list_all,
    serial_key,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import Backend, BackendConfig, Op, Path, Request, Response
from strongroom.logical import Storage


def paths() -> list[Path[PkiBackend]]:
    """The whole path table, in one place: pki's own paths, then ACME's (config/acme, the EAB paths
    and the ACME endpoints, whose handlers receive this backend as an ``AcmeCA``)."""
    return [*new_issuers.paths(), *issuers.paths(), *keys.paths(), *ca.paths(), *roles.paths(), *issue.paths(),
            *revoke.paths(), *tidy.paths(), *ocsp.paths(), *acme_paths()]


class PkiBackend(Backend):
    help = ("The PKI secrets engine generates X.509 certificates: create a root or intermediate CA at "
            "root/generate or intermediate/generate, define roles at roles/<name>, then issue/<role>.")
    # Only certificates of roles with generate_lease carry a lease (issue.CERT_SECRET).

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths(), secrets=[issue.CERT_SECRET])
        self.state = PkiState()
        self.write_lock = asyncio.Lock()  # config/ writes (issuers, keys, defaults) one at a time
        self.revoke_lock = asyncio.Lock()
        self._crl_lock = asyncio.Lock()
        # serial -> (revocation time, issuer id) of every revoked certificate; None until loaded.
        self._revoked: dict[str, tuple[float, str]] | None = None
        self._revoked_generation = 0  # bumped on forget: a load racing a revocation is not kept
        self.roles: dict[str, dict[str, Any]] = {}  # decoded roles (roles.load_role)
        self.roles_generation = 0
        self.tidy_status: dict[str, Any] = tidy.initial_status()

    async def handle(self, req: Request) -> Response | None:
        resp = await super().handle(req)
        if req.operation in (Op.RENEW, Op.REVOKE):
            return resp
        return warn_ignored_params(self, req, resp)  # OpenBao's "Endpoint ignored ..." warning

    # -- cache ---------------------------------------------------------------------------------
    def storage(self, req: Request | None) -> Storage:
        if req is not None and req.storage is not None:
            return req.storage
        return self.system.storage

    async def snapshot(self, req: Request | None) -> Snapshot:
        return await self.state.get(self.storage(req))

    def forget(self) -> None:
        self.state.forget()

    def forget_role(self, name: str) -> None:
        self.roles.pop(name, None)
        self.roles_generation += 1

    def revoked_forget(self) -> None:
        self._revoked = None
        self._revoked_generation += 1

    async def setup(self) -> None:
        self._drop_caches()

    async def deactivate(self) -> None:
        """Seal, unmount or tune: nothing decoded (private keys included) outlives the mount's life."""
        self._drop_caches()
        await acme_deactivate(self)  # ACME's background validations and nonces
        await super().deactivate()

    def _drop_caches(self) -> None:
        self.forget()
        self.revoked_forget()
        self.roles.clear()
        self.roles_generation += 1

    async def invalidate(self, key: str) -> None:
        if key.startswith("config/"):
            self.forget()
        elif key.startswith(REVOKED_PREFIX):
            self.revoked_forget()
        elif key.startswith(ROLE_PREFIX):
            self.forget_role(key[len(ROLE_PREFIX):])

    async def _revoked_index(self, storage: Storage) -> dict[str, tuple[float, str]]:
        idx = self._revoked
        if idx is None:
            generation = self._revoked_generation
            idx = {}
            for name in await list_all(storage, REVOKED_PREFIX):
                rec = await get_json(storage, REVOKED_PREFIX + name)
                if rec is not None:
                    idx[name.replace("-", ":")] = (float(rec["revocation_time"]), str(rec.get("issuer_id", "")))
            if generation == self._revoked_generation:
                self._revoked = idx
        return idx

    async def is_revoked(self, req: Request, serial: str) -> bool:
        return serial in await self._revoked_index(self.storage(req))

    # -- issuing helpers -----------------------------------------------------------------------
    async def store_cert(self, req: Request, cert: x509.Certificate, issuer_id: str, *, pem: str = "",
                         serial: str = "") -> None:
        """Keep ``cert`` under its serial; ``pem``/``serial``: its PEM and "xx:xx" serial if known."""
        serial = serial or crypto.format_serial(cert.serial_number)
        await self.storage(req).put(CERT_PREFIX + serial_key(serial), orjson.dumps(
            {"certificate": pem or crypto.cert_pem(cert), "issuer_id": issuer_id}))

    def bound_not_after(self, issuer: LoadedIssuer, not_after: dt.datetime, *, acme: bool = False) -> dt.datetime:
        """``not_after`` held to the issuer's own expiry by its leaf_not_after_behavior. ``acme``:
        "err" acts as "truncate", as OpenBao does for ACME orders (a client cannot pick a TTL)."""
        limit = issuer.cert.not_valid_after_utc
        if not_after <= limit:
            return not_after
        behavior = issuer.entry.leaf_not_after_behavior
        if acme and behavior == "err":
            behavior = "truncate"
        if behavior == "truncate":
            return limit
        if behavior == "permit":
            return not_after
        raise InvalidRequest(f"cannot satisfy request, as TTL would result in notAfter of "
                             f"{_go_time(not_after)} that is beyond the expiration of the "
                             f"CA certificate at {limit.strftime('%Y-%m-%dT%H:%M:%SZ')}")

    def apply_aia(self, snap: Snapshot, issuer: LoadedIssuer, spec: crypto.CertSpec) -> None:
        e = issuer.entry
        if e.issuing_certificates or e.crl_distribution_points or e.ocsp_servers:
            urls, templ = (e.issuing_certificates, e.crl_distribution_points, e.ocsp_servers), \
                e.enable_aia_url_templating
        else:
            u = snap.urls
            urls, templ = (u.issuing_certificates, u.crl_distribution_points, u.ocsp_servers), u.enable_templating

        def fill(values: list[str]) -> list[str]:
            if not templ:
                return list(values)
            return [v.replace("{{issuer_id}}", issuer.id).replace("{{cluster_path}}", snap.cluster_path)
                    .replace("{{cluster_aia_path}}", snap.cluster_aia_path or snap.cluster_path) for v in values]

        spec.issuing_certificates, spec.crl_distribution_points, spec.ocsp_servers = (fill(v) for v in urls)

    # -- CRLs ----------------------------------------------------------------------------------
    async def rebuild_crl(self, req: Request | None, issuer_id: str, *, want_delta: bool = False) -> bytes:
        """Rebuild the issuer's complete CRL (and its delta); the complete one's DER, or the delta's."""
        storage = self.storage(req)
        snap = await self.state.get(storage)
        issuer = snap.issuers.get(issuer_id)
        if issuer is None or issuer.key is None:
            return b""
        async with self._crl_lock:
            old = await get_json(storage, CRL_PREFIX + issuer_id) or {}
            number = int(old.get("number", 0)) + 1
            now = self.system.now()
            expiry = parse_duration(snap.crl.expiry) or 259200

            def base(n: int) -> x509.CertificateRevocationListBuilder:
                return (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
                        .last_update(crypto.to_datetime(now - 1)).next_update(crypto.to_datetime(now + expiry))
                        .add_extension(x509.CRLNumber(n), critical=False)
                        .add_extension(x509.AuthorityKeyIdentifier(issuer.ski, None, None), critical=False))

            builder = base(number)
            if not snap.crl.disable:
                for serial, (when, owner) in sorted((await self._revoked_index(storage)).items()):
                    if owner == issuer_id:
                        builder = builder.add_revoked_certificate(
                            x509.RevokedCertificateBuilder().serial_number(int(serial.replace(":", ""), 16))
                            .revocation_date(crypto.to_datetime(when)).build())
            hash_alg = crypto.hash_for(issuer.key)
            der = builder.sign(issuer.key, hash_alg).public_bytes(serialization.Encoding.DER)
            # Every revocation rebuilds the complete CRL, so the delta against it is always empty;
            # it shares the numbering (RFC 5280 5.2.3): number + 1, pointing at the base.
            delta = (base(number + 1).add_extension(x509.DeltaCRLIndicator(number), critical=True)
                     .sign(issuer.key, hash_alg).public_bytes(serialization.Encoding.DER))
            await storage.put(CRL_PREFIX + issuer_id, orjson.dumps(
                {"number": number + 1, "der": base64.b64encode(der).decode(),
                 "delta": base64.b64encode(delta).decode(), "next_update": now + expiry}))
            return delta if want_delta else der

    async def crl_der(self, req: Request, issuer_id: str, *, delta: bool = False) -> bytes:
        rec = await get_json(self.storage(req), CRL_PREFIX + issuer_id)
        if rec is None or (delta and "delta" not in rec):
            return await self.rebuild_crl(req, issuer_id, want_delta=delta)
        return base64.b64decode(rec["delta" if delta else "der"])

    async def delete_crl(self, req: Request, issuer_id: str) -> None:
        await self.storage(req).delete(CRL_PREFIX + issuer_id)

    async def periodic(self, now: float) -> None:
        """Rebuild every CRL that expires within the grace period (or has expired), so the CRL
        served is always current even with no revocation to trigger a rebuild."""
        await super().periodic(now)
        if not self.system.active():
            return
        storage = self.system.storage
        snap = await self.state.get(storage)
        grace = parse_duration(snap.crl.auto_rebuild_grace_period) or 43200
        for iid, iss in snap.issuers.items():
            if iss.key is None:
                continue
            rec = await get_json(storage, CRL_PREFIX + iid)
            if rec is None or float(rec.get("next_update", 0)) - grace <= now:
                await self.rebuild_crl(None, iid)
        await tidy.auto_tidy(self, now)

    # -- ACME hooks (the acme subpackage's handlers receive this backend first) ----------------
    async def acme_issue(self, req: Request, csr_der: bytes, identifiers: Sequence[str], *,
                         issuer_ref: str = "default", role_name: str = "") -> AcmeIssued:
        """Sign an ACME order's CSR for identifiers ACME already validated (DNS names / IP strings);
        role_name "" = sign-verbatim semantics with the mount's TTLs; InvalidRequest if the CSR is
        unacceptable or names differ."""
        csr = crypto.load_csr_der(csr_der)
        pub = crypto.public_key_of(csr)
        names = issue.verbatim_names(csr)
        wanted = {i.lower() for i in identifiers}
        got = {n.lower() for n in [*names.dns, *names.ips]}
        if names.common_name and names.common_name.lower() not in wanted:
            raise InvalidRequest(f"CSR common name {names.common_name} is not among the order's identifiers")
        if names.emails or names.uris:
            raise InvalidRequest("CSR contains names other than DNS names and IP addresses")
        if got != wanted:
            raise InvalidRequest("CSR names do not match the order's identifiers")
        if names.common_name and names.common_name.lower() not in got:
            (names.ips if issue.is_ip(names.common_name) else names.dns).insert(0, names.common_name)
        ttl = max_ttl = 0
        role: dict[str, Any] = {"key_type": "any"}
        if role_name:
            found = await roles.load_role(self, req, role_name)
            if found is None:
                raise InvalidRequest(f"unknown role: {role_name}")
            role = found
            issue.check_names(role, names)
            ttl, max_ttl = role["ttl"], role["max_ttl"]
        issue.check_csr_key(role, pub)
        issued = await issue.sign_leaf(self, req, issuer_ref=issuer_ref or "default", pub=pub, names=names,
                                       ttl=ttl, max_ttl=max_ttl,
                                       key_usage=["DigitalSignature", "KeyAgreement", "KeyEncipherment"],
                                       ext_key_usage=["serverauth", "clientauth"],
                                       no_store=bool(role.get("no_store", False)), acme=True)
        return AcmeIssued(issued.pem, [c.strip() for c in issued.issuer.chain], issued.serial)

    async def acme_revoke(self, req: Request, cert_der: bytes) -> None:
        """Revoke a certificate this mount issued (unknown → InvalidRequest)."""
        try:
            cert = x509.load_der_x509_certificate(cert_der)
        except ValueError:
            raise InvalidRequest("unable to parse the certificate to revoke") from None
        serial = crypto.format_serial(cert.serial_number)
        entry = await get_json(self.storage(req), CERT_PREFIX + serial_key(serial))
        if entry is None or crypto.load_cert(str(entry["certificate"])) != cert:
            raise InvalidRequest(f"certificate with serial {serial} not found.")
        await revoke.revoke_entry(self, req, serial, entry)

    async def cluster_path(self, req: Request) -> str:
        """config/cluster ``path`` (e.g. "https://host:8200/v1/pki"), "" when unset."""
        return (await self.snapshot(req)).cluster_path


def _go_time(t: dt.datetime) -> str:
    """Go's RFC 3339 with nanoseconds, trailing zeros dropped (how OpenBao prints a notAfter)."""
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


__all__ = ["AcmeIssued", "PkiBackend", "paths"]
