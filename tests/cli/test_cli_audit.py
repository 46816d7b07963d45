"""``audit enable/disable/list`` against a real server allowing API audit creation (with
STRONGROOM_TEST_REFERENCE=bao, against OpenBao's), and ``audit verify`` on the log it writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.conftest import CLI, REFERENCE, Server, free_port, start_server


@pytest.fixture(scope="module")
def audit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("auditserver")
    (workdir / "config.hcl").write_text("unsafe_allow_api_audit_creation = true\n")
    port = free_port()
    server = start_server(workdir, ["-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}",
                                    f"-config={workdir / 'config.hcl'}"], port)
    yield server
    server.stop()


@pytest.fixture
def acli(audit_server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         tmp_path: Path) -> CLI:
    return CLI(audit_server, monkeypatch, capsys, tmp_path)


def test_enable_list_disable(acli: CLI, tmp_path: Path) -> None:
    empty = acli("audit", "list")
    assert (empty.code, empty.out) == (2, "No audit devices are enabled.\n")
    assert acli.ok("audit", "list", "-format=json").strip() == "{}"
    log = tmp_path / "a.log"
    out = acli.ok("audit", "enable", "-path=one", "-description=first", "file", f"file_path={log}",
                  "hmac_accessor=false")
    assert out == "Success! Enabled the file audit device at: one/\n"
    again = acli("audit", "enable", "-path=one", "file", f"file_path={log}")
    assert again.code == 2 and "path already in use" in again.err
    table = acli.ok("audit", "list").splitlines()
    assert table[0].split() == ["Path", "Type", "Description"] and table[2].split() == ["one/", "file", "first"]
    detailed = acli.ok("audit", "list", "-detailed").splitlines()
    assert detailed[0].split() == ["Path", "Type", "Description", "Replication", "Options"]
    assert detailed[2].split() == ["one/", "file", "first", "replicated", f"file_path={log}", "hmac_accessor=false"]
    listed = json.loads(acli.ok("audit", "list", "-format=json"))
    assert listed["one/"]["options"] == {"file_path": str(log), "hmac_accessor": "false"}
    assert acli.ok("audit", "disable", "one") == "Success! Disabled audit device (if it was enabled) at: one/\n"
    assert acli.ok("audit", "disable", "one/") == "Success! Disabled audit device (if it was enabled) at: one/\n"
    bad = acli("audit", "enable", "-path=two", "file")
    assert bad.code == 2 and "file_path is required" in bad.err


@pytest.mark.skipif(REFERENCE == "bao", reason="the line chain and `audit verify` are Strongroom's own")
def test_verify_finds_edited_deleted_and_reordered_lines(acli: CLI, tmp_path: Path) -> None:
    log = tmp_path / "chain.log"
    acli.ok("audit", "enable", "-path=chain", "file", f"file_path={log}")
    try:
        for i in range(3):
            acli.ok("kv", "put", f"secret/audit{i}", f"v={i}")
        ok = acli.ok("audit", "verify", "-path=chain", str(log))
        assert ok.startswith("Success! Verified ") and str(log) in ok
        key = json.loads(acli.ok("read", "-format=json", "sys/audit-chain/chain"))["data"]["key"]
        lines = log.read_bytes().splitlines(keepends=True)

        def check(name: str, content: list[bytes], *flags: str) -> str:
            path = tmp_path / name
            path.write_bytes(b"".join(content))
            r = acli("audit", "verify", *(flags or (f"-key={key}",)), str(path))
            assert r.code == 2, r
            return r.err

        edited = list(lines)
        edited[3] = edited[3].replace(b'"operation":"', b'"operation":"x', 1)
        assert "edited.log:4: HMAC mismatch" in check("edited.log", edited)
        assert "deleted.log:3: sequence number 4, expected 3" in check("deleted.log", lines[:2] + lines[3:])
        swapped = lines[:1] + [lines[2], lines[1]] + lines[3:]
        assert "swapped.log:2: sequence number 3, expected 2" in check("swapped.log", swapped)
        assert "deleted from the end" in check("cut.log", lines[:-2], "-path=chain")
        # A last line cut short by a crash or a full disk is not tampering: its own message, exit 3.
        torn_log = tmp_path / "torn.log"
        torn_log.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])
        torn = acli("audit", "verify", f"-key={key}", str(torn_log))
        assert torn.code == 3, torn
        assert "line(s) are torn, cut short by a crash or a full disk" in torn.err
        assert f"{torn_log}:{len(lines)}" in torn.err and "not tampering" in torn.err
        assert "broken" not in torn.err
        assert acli.ok("audit", "verify", f"-key={key}", str(log)).startswith("Success!")
        usage = acli("audit", "verify", str(log))
        assert usage.code == 1 and "Exactly one of -key or -path" in usage.err
    finally:
        acli.ok("audit", "disable", "chain")


def test_devices_declared_in_the_server_config(tmp_path_factory: pytest.TempPathFactory,
                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    workdir = tmp_path_factory.mktemp("declared")
    log = workdir / "declared.log"
    (workdir / "config.hcl").write_text(
        'audit "file" "declared" {\n  description = "from config"\n'
        f'  options {{\n    file_path = "{log}"\n    hmac_accessor = \"false\"\n  }}\n}}\n')
    port = free_port()
    server = start_server(workdir, ["-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}",
                                    f"-config={workdir / 'config.hcl'}"], port)
    try:
        cli = CLI(server, monkeypatch, capsys, tmp_path)
        assert cli.ok("audit", "list").splitlines()[2].split() == ["declared/", "file", "from", "config"]
        refused = cli("audit", "enable", "file", f"file_path={tmp_path / 'x.log'}")
        assert refused.code == 2 and "cannot enable audit device via API" in refused.err
        pinned = cli("audit", "disable", "declared")
        assert pinned.code == 2 and "cannot disable configuration-managed audit device" in pinned.err
        cli.ok("kv", "put", "secret/declared", "k=v")
        entries = [json.loads(line) for line in log.read_bytes().splitlines()]
        assert any(e["request"].get("path") == "secret/data/declared" for e in entries)
    finally:
        server.stop()
