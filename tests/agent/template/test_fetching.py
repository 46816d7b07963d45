"""Secrets fetched for templates: against a Strongroom dev server over HTTP, what a render used (with
leases), reuse of already fetched values, errors (absent, deleted, denied), redaction, and the Fetcher
protocol with other implementations (pkiCert's reuse of a still-valid certificate in its destination)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.agent.template import (
    AsyncHTTPFetcher,
    Dependency,
    FetchError,
    HTTPFetcher,
    Template,
    TemplateExecError,
)
from strongroom.agent.template.fetcher import JSONDict, Params
from tests.agent.template.test_bao_parity import ROOT, DevServer, _start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    srv = _start("strongroom", tmp_path_factory.mktemp("fetching"))
    try:
        srv.api("POST", "secret/data/app", {"data": {"user": "admin", "password": "hunter2", "port": 5432}})
        srv.api("POST", "secret/data/gone", {"data": {"k": "v"}})
        srv.api("DELETE", "secret/data/gone")
        srv.api("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        srv.api("POST", "kv1/db", {"user": "u1"})
        srv.api("POST", "kv1/pw", {"password": "hunter2"})
        srv.api("POST", "sys/policy/app-only", {"policy": 'path "secret/data/app" { capabilities = ["read"] }'})
        yield srv
    finally:
        srv.proc.terminate()
        srv.proc.wait(15)


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_render_reports_what_it_used_with_leases(server: DevServer) -> None:
    text = ('{{ with secret "secret/app" }}{{ .Data.data.user }}{{ end }} {{ with secret "kv1/db" }}{{ .Data.user }}'
            '{{ end }} {{ secrets "kv1/" }} {{ with secret "auth/token/create" "policies=default" "ttl=1h" }}'
            "{{ .Auth.LeaseDuration }}{{ end }}")
    with HTTPFetcher(server.addr, ROOT) as fetcher:
        result = Template(text).render(fetcher)
    assert result.output == "admin u1 [db pw] 3600"
    used = {(u.dependency.kind, u.dependency.path): u for u in result.used}
    assert set(used) == {("vault.read", "secret/app"), ("vault.read", "kv1/db"), ("vault.list", "kv1"),
                         ("vault.write", "auth/token/create")}
    token = used[("vault.write", "auth/token/create")]
    assert (token.lease_duration, token.renewable) == (3600, True)
    assert token.dependency.query == (("policies", "default"), ("ttl", "1h"))
    assert str(token.dependency).startswith("vault.write(auth/token/create -> ")
    assert used[("vault.read", "secret/app")].lease_id == ""


def test_values_in_the_brain_are_not_fetched_again(server: DevServer) -> None:
    transport = CountingTransport()
    brain: dict[Dependency, Any] = {}
    tmpl = Template('{{ with secret "secret/app" }}{{ .Data.data.password }}{{ end }}'
                    '{{ with secret "kv1/db" }}{{ .Data.user }}{{ end }}')
    with HTTPFetcher(server.addr, ROOT, transport=transport) as fetcher:
        assert tmpl.render(fetcher, brain=brain).output == "hunter2u1"
        first = list(transport.paths)
        # KV v2 detection, then the shimmed data path; the KV v1 secret as it is
        assert first == ["/v1/sys/internal/ui/mounts/secret/app", "/v1/secret/data/app",
                         "/v1/sys/internal/ui/mounts/kv1/db", "/v1/kv1/db"]
        server.api("POST", "kv1/db", {"user": "u2"})
        del brain[Dependency("vault.read", "kv1/db")]  # only the changed secret is refreshed
        assert tmpl.render(fetcher, brain=brain).output == "hunter2u2"
        assert transport.paths[len(first):] == ["/v1/sys/internal/ui/mounts/kv1/db", "/v1/kv1/db"]
    server.api("POST", "kv1/db", {"user": "u1"})


def test_fetch_errors(server: DevServer) -> None:
    with HTTPFetcher(server.addr, ROOT) as fetcher:
        with pytest.raises(FetchError, match="no secret exists at kv1/nope"):
            Template('{{ secret "kv1/nope" }}').render(fetcher)
        with pytest.raises(FetchError, match="no secret exists at secret/data/gone"):
            Template('{{ secret "secret/gone" }}').render(fetcher)
    token = server.api("POST", "auth/token/create", {"policies": ["app-only"]}).json()["auth"]["client_token"]
    with HTTPFetcher(server.addr, token) as fetcher:
        assert Template('{{ (secret "secret/app").Data.data.user }}').render(fetcher).output == "admin"
        with pytest.raises(FetchError, match=r"Code: 403\. Errors:\n\n\* permission denied"):
            Template('{{ secret "kv1/db" }}').render(fetcher)
    with HTTPFetcher("http://127.0.0.1:9", ROOT) as fetcher, pytest.raises(FetchError, match="GET http://127.0.0.1:9"):
        Template('{{ secret "kv1/db" }}').render(fetcher)


def test_secret_values_are_redacted_from_errors(server: DevServer) -> None:
    with HTTPFetcher(server.addr, ROOT) as fetcher, pytest.raises(TemplateExecError) as info:
        Template('{{ with secret "kv1/pw" }}{{ range .Data.password }}{{ end }}{{ end }}').render(fetcher)
    assert "hunter2" not in str(info.value)
    assert str(info.value).endswith("range can't iterate over [redacted]")


async def test_async_render_fetches_nested_dependencies_in_passes(server: DevServer) -> None:
    text = '{{ range secrets "kv1/" }}{{ with secret (printf "kv1/%s" .) }}{{ .Data.user }}{{ end }}{{ end }}'
    brain: dict[Dependency, Any] = {}
    async with AsyncHTTPFetcher(server.addr, ROOT) as fetcher:
        result = await Template(text).render_async(fetcher, brain=brain)
    assert result.output == "u1<no value>"
    assert set(brain) == {Dependency("vault.list", "kv1"), Dependency("vault.read", "kv1/db"),
                          Dependency("vault.read", "kv1/pw")}
    # with everything in the brain, no fetcher is needed at all
    assert Template(text).render(brain=brain).output == "u1<no value>"


async def test_async_render_failure_is_the_fetch_error(server: DevServer) -> None:
    async with AsyncHTTPFetcher(server.addr, ROOT) as fetcher:
        with pytest.raises(FetchError, match="no secret exists at kv1/nope"):
            await Template('{{ secret "kv1/db" }}{{ secret "kv1/nope" }}{{ secrets "kv1" }}').render_async(fetcher)


class DictFetcher:
    """Another Fetcher: answers from a dict and records writes (the protocol is all a template needs)."""

    def __init__(self, answers: Mapping[str, JSONDict]) -> None:
        self.answers = answers
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def read(self, path: str, params: Params | None = None) -> JSONDict | None:
        return self.answers.get(path)

    def list(self, path: str) -> JSONDict | None:
        return self.answers.get(path + "?list")

    def write(self, path: str, data: Mapping[str, Any]) -> JSONDict | None:
        self.writes.append((path, dict(data)))
        return self.answers.get(path)


def _cert(key: ec.EllipticCurvePrivateKey, cn: str, issuer_key: ec.EllipticCurvePrivateKey, issuer_cn: str,
          ca: bool, not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _pems(valid: bool) -> tuple[str, str, str]:
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert(ca_key, "ca", ca_key, "ca", True, now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    end = now + dt.timedelta(hours=10) if valid else now - dt.timedelta(minutes=1)
    leaf = _cert(key, "a.example.com", ca_key, "ca", False, now - dt.timedelta(hours=1), end)
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return leaf.public_bytes(pem).decode(), ca.public_bytes(pem).decode(), key_pem


def test_pki_cert_reuses_a_valid_certificate_in_its_destination(tmp_path: Path) -> None:
    cert, ca, key = _pems(valid=True)
    dest = tmp_path / "cert.pem"
    dest.write_text(f"junk before\n{key}{ca}{cert}")
    fetcher = DictFetcher({})
    text = '{{ with pkiCert "pki/issue/web" "common_name=a.example.com" }}{{ .Cert }}{{ .CA }}{{ .Key }}{{ end }}'
    out = Template(text, destination=str(dest)).render(fetcher).output
    assert out == cert + ca + key and fetcher.writes == []
    # an expired one is issued again through the fetcher (a write with the k=v data)
    old_cert, _, _ = _pems(valid=False)
    dest.write_text(old_cert + ca + key)
    new_cert, new_ca, new_key = _pems(valid=True)
    fetcher = DictFetcher({"pki/issue/web": {"data": {"certificate": new_cert.strip(), "issuing_ca": new_ca.strip(),
                                                      "private_key": new_key.strip(), "serial_number": "01"}}})
    out = Template(text, destination=str(dest)).render(fetcher).output
    assert out == new_cert + new_ca + new_key
    assert fetcher.writes == [("pki/issue/web", {"common_name": "a.example.com"})]


def test_kv2_paths_and_writes_through_another_fetcher() -> None:
    mounts = {"data": {"path": "kv/", "type": "kv", "options": {"version": "2"}}}
    fetcher = DictFetcher({"sys/internal/ui/mounts/kv/a": mounts, "kv/data/a": {"data": {"data": {"x": "1"}}},
                           "sys/internal/ui/mounts/kv": mounts, "sys/internal/ui/mounts/kv/b": mounts,
                           "kv/metadata?list": {"data": {"keys": ["b", "a/"]}}})
    assert Template('{{ (secret "kv/a").Data.data.x }} {{ secrets "kv" }}').render(fetcher).output == "1 [a/ b]"
    with pytest.raises(FetchError, match="no secret exists at kv/b"):  # a KV v2 write must answer
        Template('{{ secret "kv/b" "y = 2" "z=a=b" }}').render(fetcher)
    assert fetcher.writes == [("kv/data/b", {"data": {"y": "2", "z": "a=b"}})]


def test_env_and_file_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPL_FROM_OS", "os")
    (tmp_path / "f.txt").write_text("inside")
    text = '{{ env "TMPL_FROM_OS" }} {{ env "GIVEN" }} {{ file "f.txt" }}'
    assert Template(text, env={"GIVEN": "given"}, sandbox_path=str(tmp_path)).render().output == "os given inside"
    with pytest.raises(TemplateExecError, match="outside of allowed sandbox"):
        Template('{{ file "../etc/passwd" }}', sandbox_path=str(tmp_path)).render()
    with pytest.raises(FetchError, match="No such file"):
        Template(f'{{{{ file "{tmp_path}/absent" }}}}').render()
    with pytest.raises(FetchError, match=r"no fetcher to get vault.read\(kv1/db\)"):
        Template('{{ secret "kv1/db" }}').render()
