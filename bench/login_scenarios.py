"""bench.py's identity scenarios (issue #16): jwt, cert and userpass-with-entity logins, and a kv-v2
read whose policy comes through three nested identity groups.

Both servers get the same set-up (``prepare``):

- a second listener with TLS (a server certificate for 127.0.0.1 signed by a bench CA, all made
  here with ``cryptography``) for the cert method; both servers ask for a client certificate in
  their default listener mode and leave judging it to the method;
- ``auth/cert`` with one role (``certs/bench``) trusting the bench CA; the client certificate is
  an EC P-256 leaf of that CA. wrk cannot present client certificates, so these cells are driven
  by ``bench/loadgen.py`` (keep-alive, one handshake per connection), pinned to CPU 1 like wrk;
- ``auth/jwt`` with a static ES256 public key (``jwt_validation_pubkeys``) and a ``jwt`` role
  (``bound_audiences``, ``user_claim=sub``); one JWT signed here, valid for a year;
- policies ``bench-groups-read`` (read on ``secret/data/*``) and two that grant nothing useful;
  groups A ⊃ B ⊃ C (A has the read policy, B and C the others; C has the entity of userpass user
  ``grouped`` as its member); user ``direct`` has the read policy on its token instead. Both
  users log in once before the cells, so their entities exist, and the set-up checks that the
  grouped token can read only because of the groups.

Every login here creates (first time) or finds an entity on both servers.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Call = Callable[..., tuple[int, Any]]

GROUPS_POLICY = 'path "secret/data/*" {\n  capabilities = ["read"]\n}\n'
NOOP_POLICY = 'path "secret/data/nothing-{}" {{\n  capabilities = ["read"]\n}}\n'
PASSWORD = "correct-horse"
AUDIENCE = "strongroom-bench"

RANDOM_READ = """
request = function()
  return wrk.format("GET", "/v1/secret/data/k" .. math.random(0, 9999))
end
"""

GROUPED = "kv-v2 read, policy via 3 nested groups"
DIRECT = "kv-v2 read, policy on the token (groups baseline)"
GROUPED_RANDOM = "kv-v2 random read, policy via 3 nested groups"
DIRECT_RANDOM = "kv-v2 random read, policy on the token (groups baseline)"

# name -> (path, "" (the script comes from prepare()), what the server needs); "cert"/"https" cells
# run with loadgen.py over the TLS listener, the others with wrk like bench.py's.
SCENARIOS: dict[str, tuple[str, str, str]] = {
    "sys/health (https, loadgen)": ("sys/health", "", "https"),
    "cert login (https, loadgen)": ("auth/cert/login", "", "cert"),
    "jwt login (ES256)": ("auth/jwt/login", "", "jwt"),
    "userpass login (entity in 3 nested groups)": ("auth/userpass/login/grouped", "", "groups"),
    DIRECT: ("secret/data/bench", "", "groups"),
    GROUPED: ("secret/data/bench", "", "groups"),
    DIRECT_RANDOM: ("secret/data/k0", "", "groups"),
    GROUPED_RANDOM: ("secret/data/k0", "", "groups"),
}
LOADGEN = ("https", "cert")
RATIOS = ((GROUPED, DIRECT), (GROUPED_RANDOM, DIRECT_RANDOM))

NOTES = """
userpass: both servers store bcrypt hashes (cost 10, ~70 ms of one core per check). OpenBao runs
  bcrypt on every login; Strongroom on a user's first login, then, for 5 minutes, checks the
  password against an in-memory scrypt tag (~2 ms; auth/userpass.py VerifiedPasswords), as the
  cells' repeated logins of one user do. A first login costs the same on both.
cert login: OpenBao verifies the presented chain on every login; Strongroom remembers a chain it
  verified (until a role changes or the certificate expires), so repeated logins with one
  certificate skip the path validation.
The https cells are driven by bench/loadgen.py (Python, one process on CPU 1), not wrk: compare
  them with each other, not with wrk's cells; sys/health (https, loadgen) shows its ceiling."""


# -- TLS material -------------------------------------------------------------------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = path.with_name(path.name + "-key.pem")
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_file, 0o600)


def make_tls(directory: Path) -> dict[str, str]:
    """A bench CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in
    ``directory``; their paths by role."""
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Bench CA")).issuer_name(_name("Bench CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    _write(directory / "ca", ca_key, ca)

    def leaf(name: str, cn: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(directory / name, key, cert)

    leaf("server", "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH,
         [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    leaf("client", "bench-client", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("bench-client.example")])
    return {role: str(directory / f"{name}.pem") for role, name in
            (("ca", "ca"), ("cert", "server"), ("key", "server-key"), ("client", "client"),
             ("client_key", "client-key"))}


def tls_listener(port: int, tls: dict[str, str]) -> str:
    """A TLS listener stanza both servers accept (default client-certificate mode: ask, don't judge)."""
    return (f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_cert_file = "{tls["cert"]}"\n'
            f'  tls_key_file = "{tls["key"]}"\n}}\n')


# -- JWT ----------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt() -> tuple[str, str]:
    """(the PEM public key, an ES256 JWT for AUDIENCE valid for a year)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"iss": "bench", "sub": "bench-jwt-user", "aud": AUDIENCE, "iat": now - 60, "nbf": now - 60,
              "exp": now + 365 * 86400}
    signing_input = (_b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode()) + "."
                     + _b64(json.dumps(claims).encode()))
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    token = signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode(), token


# -- set-up -------------------------------------------------------------------------------------
def _ok(result: tuple[int, Any], what: str) -> Any:
    status, body = result
    if status not in (200, 204):
        raise RuntimeError(f"{what}: {status} {body}")
    return body


def _post(body: dict[str, Any], token: str = "") -> str:
    header = f'wrk.headers["X-Vault-Token"] = "{token}"\n' if token else ""
    return (header + "wrk.method = \"POST\"\nwrk.body = '" + json.dumps(body) + "'\n"
            "wrk.headers[\"Content-Type\"] = \"application/json\"\n")


def _login(call: Call, addr: str, user: str) -> dict[str, Any]:
    auth: dict[str, Any] = _ok(call(addr, "POST", f"auth/userpass/login/{user}", body={"password": PASSWORD}),
                               f"login {user}")["auth"]
    return auth


def prepare(server: Any, call: Call, tls: dict[str, str], tls_addr: str) -> dict[str, Any]:
    """Set up ``server`` (bench.py's, already initialised, with userpass and secret/ mounted) for
    the cells of SCENARIOS; returns {"scripts": {name: wrk script}, "loadgen": {name: (method,
    body, extra args)}} for the cells it can run."""
    addr, root = server.addr, server.token
    scripts: dict[str, str] = {}
    loadgen: dict[str, tuple[str, str, list[str]]] = {"sys/health (https, loadgen)": ("GET", "", [])}

    if call(addr, "POST", "sys/auth/cert", root, {"type": "cert"})[0] in (200, 204):
        _ok(call(addr, "POST", "auth/cert/certs/bench", root,
                 {"certificate": Path(tls["ca"]).read_text(), "token_policies": ["default"], "token_ttl": "1h"}),
            "cert role")
        loadgen["cert login (https, loadgen)"] = (
            "POST", json.dumps({"name": "bench"}), ["--cert", tls["client"], "--key", tls["client_key"]])

    if call(addr, "POST", "sys/auth/jwt", root, {"type": "jwt"})[0] in (200, 204):
        pem, jwt = make_jwt()
        _ok(call(addr, "POST", "auth/jwt/config", root, {"jwt_validation_pubkeys": [pem]}), "jwt config")
        _ok(call(addr, "POST", "auth/jwt/role/bench", root,
                 {"role_type": "jwt", "user_claim": "sub", "bound_audiences": [AUDIENCE],
                  "token_policies": ["default"], "token_ttl": "1h"}), "jwt role")
        body = {"role": "bench", "jwt": jwt}
        _ok(call(addr, "POST", "auth/jwt/login", body=body), "jwt login")  # the entity exists before the cell
        scripts["jwt login (ES256)"] = _post(body)

    scripts.update(_prepare_groups(call, addr, root))
    return {"scripts": scripts, "loadgen": loadgen, "tls_addr": tls_addr, "ca": tls["ca"]}


def _prepare_groups(call: Call, addr: str, root: str) -> dict[str, str]:
    _ok(call(addr, "PUT", "sys/policies/acl/bench-groups-read", root, {"policy": GROUPS_POLICY}), "policy")
    for g in ("b", "c"):
        _ok(call(addr, "PUT", f"sys/policies/acl/bench-noop-{g}", root, {"policy": NOOP_POLICY.format(g)}), "policy")
    for user, policies in (("grouped", ["default"]), ("direct", ["default", "bench-groups-read"])):
        _ok(call(addr, "POST", f"auth/userpass/users/{user}", root,
                 {"password": PASSWORD, "token_policies": policies, "token_ttl": "24h"}), f"user {user}")
    grouped, direct = _login(call, addr, "grouped"), _login(call, addr, "direct")
    if not grouped.get("entity_id"):
        raise RuntimeError("a userpass login made no entity")
    if call(addr, "GET", "secret/data/bench", grouped["client_token"])[0] != 403:
        raise RuntimeError("the grouped token reads without its groups")
    member: dict[str, Any] = {"member_entity_ids": [grouped["entity_id"]]}
    for name, policy in (("bench-c", "bench-noop-c"), ("bench-b", "bench-noop-b"), ("bench-a", "bench-groups-read")):
        group = _ok(call(addr, "POST", "identity/group", root, {"name": name, "policies": [policy], **member}),
                    f"group {name}")
        member = {"member_group_ids": [group["data"]["id"]]}
    status, _ = call(addr, "GET", "secret/data/bench", grouped["client_token"])
    if status != 200:
        raise RuntimeError(f"the grouped token cannot read through its groups: {status}")
    header = 'wrk.headers["X-Vault-Token"] = "{}"\n'
    return {
        "userpass login (entity in 3 nested groups)": _post({"password": PASSWORD}),
        DIRECT: header.format(direct["client_token"]),
        GROUPED: header.format(grouped["client_token"]),
        DIRECT_RANDOM: header.format(direct["client_token"]) + RANDOM_READ,
        GROUPED_RANDOM: header.format(grouped["client_token"]) + RANDOM_READ,
    }


def script(extra: dict[str, Any], name: str) -> str | None:
    """The wrk script of cell ``name``, "" for a loadgen cell, None when the server cannot run it."""
    if SCENARIOS[name][2] in LOADGEN:
        return "" if name in extra.get("loadgen", {}) else None
    scripts: dict[str, str] = extra.get("scripts", {})
    return scripts.get(name)


def run_loadgen(server: Any, name: str, connections: int, duration: int) -> dict[str, Any]:
    """One loadgen.py cell against the server's TLS listener, in run_wrk's result shape."""
    method, body, args = server.extra["loadgen"][name]
    url = f"{server.extra['tls_addr']}/v1/{SCENARIOS[name][0]}"
    cmd = ["taskset", "-c", "1", sys.executable, str(Path(__file__).with_name("loadgen.py")), url, "-X", method,
           "-c", str(connections), "-d", str(duration), "--cacert", server.extra["ca"], *args]
    if body:
        cmd += ["-b", body]
    cpu_before, wall_before = server.cpu_seconds(), time.monotonic()
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    cpu_share = (server.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
    return {"rps": out["rps"], "p50": f"{out['p50_ms']:.2f}ms", "p99": f"{out['p99_ms']:.2f}ms", "cpu": cpu_share,
            "invalid": bool(out["non2xx"] or out["errors"])}


def ratio_lines(results: dict[tuple[str, str, int], dict[str, Any]], servers: list[str], conns: list[int]) -> list[str]:
    """The groups/baseline ratios (issue #16's target: the groups read at least 0.90 of the direct one)."""
    lines = []
    for grouped, direct in RATIOS:
        for s in servers:
            for c in conns:
                g, d = results.get((s, grouped, c)), results.get((s, direct, c))
                if g and d and d["rps"]:
                    what = re.sub(r", policy via 3 nested groups", "", grouped)
                    lines.append(f"{s}: {what} at {c} conns, 3 nested groups / policy on the token = "
                                 f"{g['rps'] / d['rps']:.2f} (target >= 0.90)")
    return lines
