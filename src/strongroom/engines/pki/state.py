"""The mount's decoded issuers and keys, cached: a pki request reads its issuer's certificate and
private key on every issue, and PEM decoding (RSA especially) costs more than the signing.

The cache is filled from storage on first use and dropped on every write under ``config/``
(handlers call :meth:`PkiState.forget`; ``invalidate`` does it for writes from elsewhere). Issuer
chains are computed here, once per fill: an issuer's chain is itself, then the issuer in this
mount that signed it, and so on (or its manual_chain).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509

from strongroom.engines.pki import crypto
from strongroom.engines.pki.store import (
    CLUSTER_CONFIG,
    CRL_CONFIG,
    ISSUER_PREFIX,
    ISSUERS_CONFIG,
    KEY_PREFIX,
    KEYS_CONFIG,
    URLS_CONFIG,
    CRLConfig,
    IssuerEntry,
    KeyEntry,
    URLConfig,
    get_json,
    list_all,
)
from strongroom.errors import InvalidRequest
from strongroom.logical import Storage


@dataclass(slots=True)
class LoadedKey:
    entry: KeyEntry
    key: crypto.PrivateKey


@dataclass(slots=True)
class LoadedIssuer:
    entry: IssuerEntry
    cert: x509.Certificate
    key: crypto.PrivateKey | None
    chain: list[str] = field(default_factory=list)  # PEM, this issuer first
    # Derived once per cache fill: what every issue would otherwise recompute.
    ski: bytes = b""
    pem_stripped: str = ""
    chain_stripped: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def pem(self) -> str:
        return self.entry.certificate


@dataclass(slots=True)
class Snapshot:
    issuers: dict[str, LoadedIssuer]
    keys: dict[str, LoadedKey]
    default_issuer: str
    default_follows_latest_issuer: bool
    default_key: str
    urls: URLConfig
    crl: CRLConfig
    cluster_path: str
    cluster_aia_path: str

    def issuer(self, ref: str) -> LoadedIssuer:
        """The issuer ``ref`` names: "default", an id or a name."""
        ref = ref or "default"
        if ref == "default":
            if not self.default_issuer or self.default_issuer not in self.issuers:
                raise InvalidRequest("no default issuer currently configured")
            return self.issuers[self.default_issuer]
        if ref in self.issuers:
            return self.issuers[ref]
        for iss in self.issuers.values():
            if iss.entry.name == ref:
                return iss
        raise InvalidRequest(f"unable to find PKI issuer for reference: {ref}")

    def key(self, ref: str) -> LoadedKey:
        ref = ref or "default"
        if ref == "default":
            if not self.default_key or self.default_key not in self.keys:
                raise InvalidRequest("no default key currently configured")
            return self.keys[self.default_key]
        if ref in self.keys:
            return self.keys[ref]
        for k in self.keys.values():
            if k.entry.name == ref:
                return k
        raise InvalidRequest(f"unable to find PKI key for reference: {ref}")

    def signing_issuer(self, ref: str) -> LoadedIssuer:
        iss = self.issuer(ref)
        if iss.key is None:
            raise InvalidRequest(f"issuer {iss.id} has no private key and cannot issue certificates")
        if "issuing-certificates" not in iss.entry.usage.split(","):
            raise InvalidRequest(f"error while attempting to use issuer {iss.id}: requested usage "
                                 f"issuing-certificates for issuer [id:{iss.id} / name:{iss.entry.name}] but only "
                                 f"had usage {iss.entry.usage}")
        return iss


class PkiState:
    """One per backend: the snapshot of issuers/keys/config, rebuilt after writes."""

    def __init__(self) -> None:
        self._snap: Snapshot | None = None
        # Bumped by every forget(): a fill that started before a write must not be kept after it.
        self._generation = 0

    def forget(self) -> None:
        self._snap = None
        self._generation += 1

    async def get(self, storage: Storage) -> Snapshot:
        snap = self._snap
        if snap is None:
            generation = self._generation
            snap = await _load(storage)
            if generation == self._generation:
                self._snap = snap
        return snap


async def _load(storage: Storage) -> Snapshot:
    keys: dict[str, LoadedKey] = {}
    for kid in await list_all(storage, KEY_PREFIX):
        raw = await storage.get(KEY_PREFIX + kid)
        if raw is not None:
            entry = KeyEntry.from_json(raw)
            keys[entry.id] = LoadedKey(entry, crypto.load_key(entry.private_key))
    issuers: dict[str, LoadedIssuer] = {}
    for iid in await list_all(storage, ISSUER_PREFIX):
        raw = await storage.get(ISSUER_PREFIX + iid)
        if raw is not None:
            ientry = IssuerEntry.from_json(raw)
            lk = keys.get(ientry.key_id)
            cert = crypto.load_cert(ientry.certificate)
            issuers[ientry.id] = LoadedIssuer(ientry, cert, lk.key if lk else None,
                                              ski=crypto.subject_key_id(crypto.public_key_of(cert)),
                                              pem_stripped=ientry.certificate.strip())
    _build_chains(issuers)
    icfg = await get_json(storage, ISSUERS_CONFIG) or {}
    kcfg = await get_json(storage, KEYS_CONFIG) or {}
    raw_urls = await storage.get(URLS_CONFIG)
    raw_crl = await storage.get(CRL_CONFIG)
    cluster = await get_json(storage, CLUSTER_CONFIG) or {}
    return Snapshot(issuers, keys, str(icfg.get("default", "")),
                    bool(icfg.get("default_follows_latest_issuer", False)), str(kcfg.get("default", "")),
                    URLConfig.from_json(raw_urls) if raw_urls else URLConfig(),
                    CRLConfig.from_json(raw_crl) if raw_crl else CRLConfig(),
                    str(cluster.get("path", "")), str(cluster.get("aia_path", "")))


def _build_chains(issuers: dict[str, LoadedIssuer]) -> None:
    by_subject: dict[bytes, list[LoadedIssuer]] = {}
    for iss in issuers.values():
        by_subject.setdefault(iss.cert.subject.public_bytes(), []).append(iss)
    for iss in issuers.values():
        if iss.entry.manual_chain:
            iss.chain = [issuers[i].pem for i in iss.entry.manual_chain if i in issuers]
            iss.chain_stripped = [c.strip() for c in iss.chain]
            continue
        chain, seen, cur = [iss.pem], {iss.id}, iss
        while True:
            parent = next((p for p in by_subject.get(cur.cert.issuer.public_bytes(), [])
                           if p.id not in seen and crypto.verify_signed_by(cur.cert, p.cert)), None)
            if parent is None:
                break
            chain.append(parent.pem)
            seen.add(parent.id)
            cur = parent
        iss.chain = chain
        iss.chain_stripped = [c.strip() for c in chain]
