"""A real OpenLDAP ``slapd`` (Debian's slapd + ldap-utils) started for the tests: its own slapd.conf
in a temporary directory, an mdb database with the memberof overlay, ldap:// and ldaps:// on free
ports with a server certificate from a test CA, users and groups loaded with ldapadd. Skips with
the reason when slapd or ldap-utils is missing or slapd cannot start."""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.auth.conftest import Vault
from tests.storage.services import end_process

from strongroom.testing import asgi_client, unsealed_core

SLAPD = "/usr/sbin/slapd"
BASE = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PW = "admin-secret"
USERS = f"ou=users,{BASE}"
GROUPS = f"ou=groups,{BASE}"
# An alias entry pointing at alice (dereference_aliases).
ALIASES = f"ou=aliases,{BASE}"
# Groups only authenticated clients may read (anonymous searches find nothing there).
PRIVATE_GROUPS = f"ou=private-groups,{BASE}"
# uid -> (password, groups it is a member of)
PEOPLE: dict[str, tuple[str, list[str]]] = {
    "alice": ("alice-pw", ["devs"]),
    "bob": ("bob-pw", ["devs", "ops"]),
    "carol": ("carol-pw", []),
    # A (legal) uid full of filter syntax: unescaped in a group filter it would match every group.
    "eve*)(cn=*": ("eve-pw", []),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Directory:
    url: str
    ldaps_url: str
    ca_pem: str
    other_ca_pem: str
    workdir: Path

    def ldap(self, tool: str, *args: str, stdin: str = "") -> None:
        subprocess.run([tool, "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PW, *args], input=stdin,
                       text=True, check=True, capture_output=True, timeout=20)


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _tls_files(workdir: Path) -> tuple[str, str]:
    ca_key, ca = _ca("strongroom ldap test CA")
    _, other = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (workdir / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (workdir / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    (workdir / "ca.crt").write_text(ca_pem)
    return ca_pem, other.public_bytes(serialization.Encoding.PEM).decode()


def _ldif() -> str:
    parts = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n",
             f"dn: {USERS}\nobjectClass: organizationalUnit\nou: users\n",
             f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
             f"dn: {PRIVATE_GROUPS}\nobjectClass: organizationalUnit\nou: private-groups\n",
             f"dn: cn=secret-team,{PRIVATE_GROUPS}\nobjectClass: groupOfNames\ncn: secret-team\n"
             f"member: uid=alice,{USERS}\n",
             f"dn: {ALIASES}\nobjectClass: organizationalUnit\nou: aliases\n",
             f"dn: uid=ally,{ALIASES}\nobjectClass: alias\nobjectClass: extensibleObject\nuid: ally\n"
             f"aliasedObjectName: uid=alice,{USERS}\n"]
    for uid, (pw, _) in PEOPLE.items():
        parts.append(f"dn: uid={uid},{USERS}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
                     f"sn: {uid}\nuserPassword: {pw}\n")
    for group in sorted({g for _, gs in PEOPLE.values() for g in gs}):
        members = "".join(f"member: uid={u},{USERS}\n" for u, (_, gs) in PEOPLE.items() if group in gs)
        parts.append(f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n{members}")
    return "\n".join(parts)


@pytest.fixture(scope="session")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    if not Path(SLAPD).exists() or shutil.which("ldapadd") is None:
        pytest.skip("slapd/ldap-utils not installed (apt-get install slapd ldap-utils)")
    workdir = tmp_path_factory.mktemp("slapd")
    (workdir / "db").mkdir()
    ca_pem, other_ca = _tls_files(workdir)
    conf = workdir / "slapd.conf"
    conf.write_text(
        "".join(f"include /etc/ldap/schema/{s}.schema\n" for s in ("core", "cosine", "nis", "inetorgperson"))
        + "modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n"
        + f"pidfile {workdir}/slapd.pid\n"
        + f"TLSCACertificateFile {workdir}/ca.crt\nTLSCertificateFile {workdir}/server.crt\n"
        + f"TLSCertificateKeyFile {workdir}/server.key\n"
        + f'database mdb\nmaxsize 10485760\nsuffix "{BASE}"\nrootdn "{ADMIN_DN}"\nrootpw {ADMIN_PW}\n'
        + f"directory {workdir}/db\noverlay memberof\n"
        + "access to attrs=userPassword by anonymous auth by self write by * none\n"
        + f'access to dn.subtree="{PRIVATE_GROUPS}" by users read by * none\n'
        + "access to * by * read\n")
    port, tls_port = free_port(), free_port()
    url, ldaps_url = f"ldap://127.0.0.1:{port}", f"ldaps://localhost:{tls_port}"
    log = open(workdir / "slapd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([SLAPD, "-f", str(conf), "-h", f"{url}/ ldaps://127.0.0.1:{tls_port}/", "-d", "0"],
                            stdout=log, stderr=subprocess.STDOUT)
    d = Directory(url, ldaps_url, ca_pem, other_ca, workdir)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.skip(f"slapd could not start: {(workdir / 'slapd.log').read_text()[-500:]}")
            if subprocess.run(["ldapwhoami", "-x", "-H", url], capture_output=True, timeout=5).returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.skip("slapd did not answer within 15 s")
            time.sleep(0.1)
        d.ldap("ldapadd", stdin=_ldif())
        yield d
    finally:
        end_process(proc)
        log.close()


@pytest.fixture
async def vault(directory: Directory) -> AsyncIterator[Vault]:
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/ldap", {"type": "ldap"})
        yield v


def search_config(d: Directory, **extra: object) -> dict[str, object]:
    """Search-then-bind as the admin, groups by groupOfNames member."""
    return {"url": d.url, "binddn": ADMIN_DN, "bindpass": ADMIN_PW, "userdn": USERS, "userattr": "uid",
            "groupdn": GROUPS, "groupfilter": "(&(objectClass=groupOfNames)(member={{.UserDN}}))",
            "groupattr": "cn", "request_timeout": 5, "connection_timeout": 2, **extra}
