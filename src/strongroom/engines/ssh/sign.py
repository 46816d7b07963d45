"""sign/<role>: an OpenSSH certificate for the client's public key, within what the role allows.

The rules and their error wording follow OpenBao: principals (valid_principals, else the role's
default_user for user certificates) must be allowed by allowed_users (user) or allowed_domains
(host); extensions and critical options asked for must be on the role's allowed lists, else the
role's defaults apply; the TTL is capped by the role's max_ttl or the mount's; the signed key's
type and size must be in allowed_user_key_lengths when the role sets it.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from strongroom.engines.ssh import wire
from strongroom.engines.ssh.store import Role
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

if TYPE_CHECKING:
    from strongroom.engines.ssh import SSHBackend

_TEMPLATE = re.compile(r"{{\s*(.+?)\s*}}")

SIGN_FIELDS: dict[str, Field] = {
    "role": Field(FieldType.STRING, "Name of the role."),
    "public_key": Field(FieldType.STRING, "SSH public key to sign (OpenSSH format)."),
    "ttl": Field(FieldType.DURATION, "Requested certificate lifetime."),
    "valid_principals": Field(FieldType.STRING, "Comma-separated usernames or hostnames."),
    "cert_type": Field(FieldType.STRING, '"user" or "host".', default="user"),
    "key_id": Field(FieldType.STRING, "Key id of the certificate (if the role allows it)."),
    "critical_options": Field(FieldType.MAP, "Critical options of the certificate."),
    "extensions": Field(FieldType.MAP, "Extensions of the certificate."),
}


ISSUE_FIELDS: dict[str, Field] = {
    **{k: v for k, v in SIGN_FIELDS.items() if k != "public_key"},
    "key_type": Field(FieldType.STRING, "Type of the key pair to generate: rsa, ec or ed25519.", default="rsa"),
    "key_bits": Field(FieldType.INT, "Size of the generated key (rsa: 4096, ec: 256 by default)."),
}


def paths() -> list[Path[SSHBackend]]:
    return [Path(f"sign/{name_regex('role')}", fields=SIGN_FIELDS, operations={Op.UPDATE: sign_key},
                 synopsis="Sign a public key with the role's issuer."),
            Path(f"issue/{name_regex('role')}", fields=ISSUE_FIELDS, operations={Op.UPDATE: issue_key},
                 synopsis="Generate a key pair and sign its public key with the role's issuer.")]


def _split(text: str) -> list[str]:
    """OpenBao's ParseStringSlice + RemoveDuplicates: trimmed, non-empty, first occurrence kept."""
    out: list[str] = []
    for item in (s.strip() for s in text.split(",")):
        if item and item not in out:
            out.append(item)
    return out


async def _render(b: SSHBackend, req: Request, template: str) -> str | None:
    """Identity templates ({{identity.entity.id}}, .name, .metadata.KEY) rendered against the
    caller's entity. Without an entity the text is returned as it is (OpenBao does the same);
    None when the entity lacks what a template names."""
    if not _TEMPLATE.search(template) or not req.entity_id:
        return template
    entity = await b.system.entity(req.entity_id)
    if entity is None:
        return template
    values: dict[str, str] = {"identity.entity.id": entity.id, "identity.entity.name": entity.name}
    values.update({f"identity.entity.metadata.{k}": v for k, v in entity.metadata.items()})
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        if m.group(1) not in values:
            missing = True
            return ""
        return values[m.group(1)]

    out = _TEMPLATE.sub(sub, template)
    return None if missing else out


def _str_values(name: str, value: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise InvalidRequest(f"{name}: value of {k!r} must be a string")
        out[str(k)] = v
    return out


def _check_key_lengths(key: wire.SubjectKey, role: Role) -> None:
    allowed = role.allowed_user_key_lengths
    if not allowed:
        return
    names = {"rsa": ["rsa", "ssh-rsa"], "ed25519": ["ed25519", "ssh-ed25519"],
             "ecdsa": ["ecdsa", "ec", f"ecdsa-sha2-nistp{key.bits}"]}[key.family]
    present = passed = False
    for name in names:
        if name not in allowed:
            continue
        present = True
        for value in allowed[name]:
            if key.family == "rsa" or name in ("ec", "ecdsa"):
                passed = passed or value == key.bits
            else:
                passed = True
    if not present:
        raise InvalidRequest(f"key of type {key.family} is not allowed")
    if not passed:
        raise InvalidRequest(f"key is of an invalid size: {key.bits}")


async def _principals(b: SSHBackend, req: Request, d: FieldData, role: Role, host: bool) -> list[str]:
    if host:
        default, allowed_text, templated = "", role.allowed_domains, role.allowed_domains_template
    else:
        default, allowed_text, templated = role.default_user, role.allowed_users, role.allowed_users_template
        if role.default_user_template:
            default = await _render(b, req, default) or ""
    requested, given = d.get_ok("valid_principals")
    principals = _split(requested if given else default)
    if templated:
        allowed = _split(",".join(filter(None, [await _render(b, req, t) for t in _split(allowed_text)])))
    else:
        allowed = _split(allowed_text)
    if not principals:
        if not role.allow_empty_principals and allowed_text != "*":
            raise InvalidRequest("refusing to issue unsafe, globally-valid certificate with no principals "
                                 "specified; set valid_principals or default_user")
        return []
    if not allowed:
        raise InvalidRequest("role is not configured to allow any principals")
    if allowed_text == "*":
        return principals
    for p in principals:
        if host:
            ok = any((p == a and role.allow_bare_domains) or (role.allow_subdomains and p.endswith("." + a))
                     for a in allowed)
        else:
            ok = p in allowed
        if not ok:
            raise InvalidRequest(f"{p} is not a valid value for valid_principals")
    return principals


def _ttl(b: SSHBackend, d: FieldData, role: Role) -> int:
    default_ttl, mount_max = b.system.lease_ttls()
    ttl, specified = d.get_ok("ttl")
    if not specified:
        ttl = role.ttl
    ttl = ttl or default_ttl
    max_ttl = role.max_ttl or mount_max
    if ttl > max_ttl:
        if specified:
            raise InvalidRequest(f"ttl is larger than maximum allowed {max_ttl}")
        ttl = max_ttl
    return int(ttl)


async def _extensions(b: SSHBackend, req: Request, d: FieldData, role: Role) -> tuple[dict[str, str], bool]:
    asked = _str_values("extensions", d.get("extensions"))
    if asked:
        if role.allowed_extensions != "*":
            allowed = role.allowed_extensions.split(",")
            denied = sorted(k for k in asked if k not in allowed)
            if denied:
                raise InvalidRequest(f"extensions [{' '.join(denied)}] are not on allowed list")
        return asked, False
    if not role.default_extensions_template:
        return dict(role.default_extensions), False
    out: dict[str, str] = {}
    skipped = False
    for k, v in role.default_extensions.items():
        if _TEMPLATE.search(v) and not req.entity_id:
            skipped = True
            continue
        rendered = await _render(b, req, v)
        if rendered is None:
            raise InvalidRequest(f"template '{v}' could not be rendered")
        out[k] = rendered
    return out, skipped


def _critical_options(d: FieldData, role: Role) -> dict[str, str]:
    asked = _str_values("critical_options", d.get("critical_options"))
    if not asked:
        return dict(role.default_critical_options)
    if role.allowed_critical_options:
        allowed = role.allowed_critical_options.split(",")
        denied = sorted(k for k in asked if k not in allowed)
        if denied:
            raise InvalidRequest(f"critical options not on allowed list: [{' '.join(denied)}]")
    return asked


async def sign_key(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("role")
    role = await b.store(req).role(name)
    if role is None:
        raise InvalidRequest(f"Unknown role: {name}")
    text = d.get("public_key")
    if not text:
        raise InvalidRequest("missing public_key")
    key = wire.parse_public_key(text)
    _check_key_lengths(key, role)
    return await certify(b, req, d, name, role, key)


async def issue_key(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    """issue/<role>: a key pair generated here (key_type rsa, ec or ed25519) and its certificate."""
    name = d.get("role")
    role = await b.store(req).role(name)
    if role is None:
        raise InvalidRequest(f"unknown role: {name}")
    # In a thread: an RSA key takes up to seconds of CPU.
    private = await asyncio.to_thread(wire.generate_ca_key, d.get("key_type"), d.get("key_bits"))
    subject = wire.parse_public_key(wire.public_key_line(private))
    _check_key_lengths(subject, role)
    resp = await certify(b, req, d, name, role, subject)
    assert resp.data is not None
    resp.data.update(private_key=wire.private_key_pem(private, traditional=True),
                     private_key_type={"ecdsa": "ec"}.get(subject.family, subject.family))
    return resp


async def certify(b: SSHBackend, req: Request, d: FieldData, name: str, role: Role,
                  key: wire.SubjectKey) -> Response:
    """Sign ``key`` under ``role`` with what the request asks for, within what the role allows."""
    store = b.store(req)
    key_id = d.get("key_id")
    if key_id and not role.allow_user_key_ids:
        raise InvalidRequest("setting key_id is not allowed by role")
    if not key_id:
        fmt = role.key_id_format or ("vault-{{token_display_name}}-{{public_key_hash}}" if req.display_name
                                     else "vault-{{public_key_hash}}")
        key_id = (fmt.replace("{{token_display_name}}", req.display_name).replace("{{role_name}}", name)
                  .replace("{{public_key_hash}}", wire.sha256_hex(key.blob)))
    cert_type = d.get("cert_type")
    if cert_type == "user":
        if not role.allow_user_certificates:
            raise InvalidRequest("cert_type 'user' is not allowed by role")
    elif cert_type == "host":
        if not role.allow_host_certificates:
            raise InvalidRequest("cert_type 'host' is not allowed by role")
    else:
        raise InvalidRequest("cert_type must be either 'user' or 'host'")
    principals = await _principals(b, req, d, role, cert_type == "host")
    ttl = _ttl(b, d, role)
    critical = _critical_options(d, role)
    extensions, skipped = await _extensions(b, req, d, role)

    issuer = await store.resolve(role.issuer_ref)
    ca = b.ca_key(issuer)
    signer = role.algorithm_signer if role.algorithm_signer not in ("", "default") else "rsa-sha2-256"
    now = int(b.system.now())
    cert = wire.CertRequest(key, wire.HOST_CERT if cert_type == "host" else wire.USER_CERT, key_id, principals,
                            max(0, now - role.not_before_duration), now + ttl, critical, extensions)
    signed, serial = wire.sign_certificate(ca, cert, rsa_signer=signer)
    resp = Response(data={"serial_number": format(serial, "x"), "signed_key": signed, "issuer_id": issuer.id})
    if skipped:
        resp.warnings.append("default_extension templating enabled with at least one extension requiring "
                             "identity templating. However, this request lacked identity entity information, "
                             "causing one or more extensions to be skipped from the generated certificate.")
    return resp
