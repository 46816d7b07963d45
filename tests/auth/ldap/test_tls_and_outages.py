"""ldaps:// and StartTLS with a test CA; several URLs; a directory that is down or silent."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from tests.auth.conftest import Vault
from tests.auth.ldap.conftest import Directory, free_port, search_config


async def _login(vault: Vault, status: int = 200) -> list[str] | dict[str, object]:
    r = await vault.call("POST", "auth/ldap/login/alice", {"password": "alice-pw"}, token=None)
    assert r.status_code == status, r.text
    return dict(r.json()["auth"]) if status == 200 else list(r.json()["errors"])


async def test_ldaps_with_the_test_ca(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory, url=directory.ldaps_url,
                                                               certificate=directory.ca_pem))
    assert (await _login(vault))["metadata"] == {"username": "alice"}  # type: ignore[index]
    # Another CA: the server's certificate is refused, so no login.
    await vault.done("POST", "auth/ldap/config", {"certificate": directory.other_ca_pem})
    errors = await _login(vault, 500)
    assert "error connecting to host" in errors[0] and directory.ldaps_url in errors[0]
    # The right CA but a name the certificate is not for (it names localhost only): refused.
    by_ip = directory.ldaps_url.replace("localhost", "127.0.0.1")
    await vault.done("POST", "auth/ldap/config", {"certificate": directory.ca_pem, "url": by_ip})
    assert "error connecting to host" in (await _login(vault, 500))[0]
    # insecure_tls skips verification (not recommended, but Vault's option).
    await vault.done("POST", "auth/ldap/config", {"insecure_tls": True})
    await _login(vault)


async def test_starttls_with_the_test_ca(vault: Vault, directory: Directory) -> None:
    url = directory.url.replace("127.0.0.1", "localhost")  # the name the certificate is for
    await vault.done("POST", "auth/ldap/config", search_config(directory, url=url, starttls=True,
                                                               certificate=directory.ca_pem))
    await _login(vault)
    await vault.done("POST", "auth/ldap/config", {"certificate": directory.other_ca_pem})
    assert "error connecting to host" in (await _login(vault, 500))[0]


async def test_tls_version_floor_is_applied(vault: Vault, directory: Directory) -> None:
    # slapd (GnuTLS) speaks TLS 1.3 too; a range of exactly 1.3 still connects, proving the range is
    # passed on, while a 1.0-only range cannot (OpenSSL here refuses TLS 1.0 outright).
    await vault.done("POST", "auth/ldap/config", search_config(
        directory, url=directory.ldaps_url, certificate=directory.ca_pem, tls_min_version="tls13",
        tls_max_version="tls13"))
    await _login(vault)
    await vault.done("POST", "auth/ldap/config", {"tls_min_version": "tls10", "tls_max_version": "tls10"})
    await _login(vault, 500)


async def test_next_url_is_tried_when_the_first_is_down(vault: Vault, directory: Directory) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    await vault.done("POST", "auth/ldap/config", search_config(directory, url=f"{dead},{directory.url}"))
    await _login(vault)


async def test_directory_down_is_a_clear_error(vault: Vault, directory: Directory) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    await vault.done("POST", "auth/ldap/config", search_config(directory, url=dead))
    errors = await _login(vault, 500)
    assert errors[0].startswith(f'error connecting to host "{dead}"')


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts and then never says a word (a hung directory)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"ldap://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    sock.close()


async def test_silent_directory_times_out_within_request_timeout(vault: Vault, directory: Directory,
                                                                 silent_server: str) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory, url=silent_server, request_timeout=1,
                                                               connection_timeout=1))
    started = time.monotonic()
    errors = await _login(vault, 500)
    assert time.monotonic() - started < 5
    assert errors == ["ldap operation failed: error receiving data: timed out"]
    # Meanwhile the server stays responsive (the LDAP call ran in a worker thread).
    await vault.ok("GET", "sys/health")
