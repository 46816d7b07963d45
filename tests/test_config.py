"""Server config files: HCL/JSON forms, merging, defaults and every error path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from strongroom.config import (
    ConfigError,
    ListenerConfig,
    ServerConfig,
    StorageConfig,
    dev_config,
    load_config,
)
from strongroom.errors import InvalidRequest

BASE = 'storage "inmem" {}\nlistener "tcp" {\n  tls_disable = true\n}\n'
PLAIN = {"tls_disable": True}


def tcp(*lines: str) -> str:
    """An inmem storage stanza plus one plain-HTTP tcp listener with extra ``lines`` in its body."""
    body = "".join(f" {line}\n" for line in ("tls_disable = true", *lines))
    return f'storage "inmem" {{}}\nlistener "tcp" {{\n{body}}}\n'


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load_hcl(tmp_path: Path, text: str, name: str = "config.hcl") -> ServerConfig:
    return load_config([write(tmp_path, name, text)])


def load_json(tmp_path: Path, data: object, name: str = "config.json") -> ServerConfig:
    return load_config([write(tmp_path, name, json.dumps(data))])


def hcl_error(tmp_path: Path, text: str, name: str = "config.hcl") -> ConfigError:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert str(info.value).startswith(f"{path}: "), "every error names its file"
    return info.value


# ------------------------------------------------------------------------------------ defaults


def test_minimal_config_gets_vault_defaults(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE)
    assert cfg.storage == StorageConfig("inmem", {})
    assert cfg.ha_storage is None
    assert cfg.default_lease_ttl == cfg.max_lease_ttl == 768 * 3600 == 2764800
    assert (cfg.ui, cfg.disable_mlock, cfg.disable_cache, cfg.unsafe_allow_api_audit_creation) == (
        False, False, False, False)
    assert (cfg.log_level, cfg.api_addr, cfg.cluster_addr, cfg.cluster_name) == ("info", "", "", "")
    assert cfg.raw_audit_devices == () and cfg.telemetry == {}
    (listener,) = cfg.listeners
    assert listener == ListenerConfig(tls_disable=True)
    assert listener.address == "127.0.0.1:8200"
    assert listener.max_request_size == 33554432
    assert listener.max_request_duration == 90
    assert listener.tls_min_version == "tls12"


def test_dataclasses_are_frozen(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ui = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.listeners[0].address = "x"  # type: ignore[misc]


def test_config_error_is_a_400_invalid_request() -> None:
    err = ConfigError("config.hcl", 'unknown key "foo"', key="foo")
    assert isinstance(err, InvalidRequest) and err.status_code == 400
    assert str(err) == 'config.hcl: unknown key "foo"'
    assert (err.source, err.key) == ("config.hcl", "foo")


def test_dev_config() -> None:
    cfg = dev_config("127.0.0.1:8300")
    assert cfg.storage == StorageConfig("inmem", {})
    assert cfg.listeners == (ListenerConfig(address="127.0.0.1:8300", tls_disable=True),)
    assert cfg.ui is True
    assert dev_config().listeners[0].address == "127.0.0.1:8200"
    with pytest.raises(ConfigError, match="dev-listen-address"):
        dev_config("8200")


# ------------------------------------------------------------------------------------ HCL and JSON


FULL_HCL = """
ui = true
api_addr = "https://10.0.0.1:8200"
cluster_addr = "https://10.0.0.1:8201"
disable_mlock = true
default_lease_ttl = "1h"
max_lease_ttl = "48h"
log_level = "debug"
unsafe_allow_api_audit_creation = true
cluster_name = "prod"
pid_file = "/run/strongroom.pid"
plugin_directory = "/plugins"
disable_cache = true

storage "sqlite" {
  path = "/var/lib/strongroom/data.db"
}

ha_storage "postgresql" {
  ha_enabled = "true"
}

listener "tcp" {
  address = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_cert_file = "/tls/cert.pem"
  tls_key_file = "/tls/key.pem"
  tls_client_ca_file = "/tls/ca.pem"
  tls_min_version = "tls13"
  max_request_size = 1024
  max_request_duration = "2m"
}
"""

FULL_JSON = {
    "ui": True,
    "api_addr": "https://10.0.0.1:8200",
    "cluster_addr": "https://10.0.0.1:8201",
    "disable_mlock": True,
    "default_lease_ttl": "1h",
    "max_lease_ttl": "48h",
    "log_level": "debug",
    "unsafe_allow_api_audit_creation": True,
    "cluster_name": "prod",
    "pid_file": "/run/strongroom.pid",
    "plugin_directory": "/plugins",
    "disable_cache": True,
    "storage": {"sqlite": {"path": "/var/lib/strongroom/data.db"}},
    "ha_storage": {"postgresql": {"ha_enabled": "true"}},
    "listener": [{"tcp": {
        "address": "0.0.0.0:8200",
        "cluster_address": "0.0.0.0:8201",
        "tls_cert_file": "/tls/cert.pem",
        "tls_key_file": "/tls/key.pem",
        "tls_client_ca_file": "/tls/ca.pem",
        "tls_min_version": "tls13",
        "max_request_size": 1024,
        "max_request_duration": "2m",
    }}],
}


def test_full_hcl(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, FULL_HCL)
    assert cfg.ui and cfg.disable_mlock and cfg.disable_cache and cfg.unsafe_allow_api_audit_creation
    assert (cfg.api_addr, cfg.cluster_addr) == ("https://10.0.0.1:8200", "https://10.0.0.1:8201")
    assert (cfg.default_lease_ttl, cfg.max_lease_ttl) == (3600, 48 * 3600)
    assert (cfg.log_level, cfg.cluster_name, cfg.pid_file, cfg.plugin_directory) == (
        "debug", "prod", "/run/strongroom.pid", "/plugins")
    assert cfg.storage == StorageConfig("sqlite", {"path": "/var/lib/strongroom/data.db"})
    assert cfg.ha_storage == StorageConfig("postgresql", {"ha_enabled": "true"})
    assert cfg.listeners == (ListenerConfig(
        address="0.0.0.0:8200", cluster_address="0.0.0.0:8201", tls_cert_file="/tls/cert.pem",
        tls_key_file="/tls/key.pem", tls_client_ca_file="/tls/ca.pem", tls_min_version="tls13",
        max_request_size=1024, max_request_duration=120),)


def test_json_and_hcl_forms_are_equivalent(tmp_path: Path) -> None:
    assert load_json(tmp_path, FULL_JSON) == load_hcl(tmp_path, FULL_HCL)


def test_format_is_sniffed_when_there_is_no_extension(tmp_path: Path) -> None:
    from_json = load_config([write(tmp_path, "conf-a", json.dumps(FULL_JSON))])
    from_hcl = load_config([write(tmp_path, "conf-b", FULL_HCL)])
    assert from_json == from_hcl
    assert from_json.storage is not None and from_json.storage.type == "sqlite"


def test_strings_are_unquoted_and_unescaped(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE + 'cluster_name = "a \\"quoted\\" name\\\\"\n'
                                     'pid_file = <<EOT\n/run/x.pid\nEOT\n')
    assert cfg.cluster_name == 'a "quoted" name\\'
    assert cfg.pid_file == "/run/x.pid"


def test_comments_are_ignored(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, "# hash\n// slashes\n/* block */\n" + BASE + "ui = true # trailing\n")
    assert cfg.ui is True


# ------------------------------------------------------------------------------------ storage


def test_legacy_backend_and_ha_backend_names(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, 'backend "file" {\n path = "/data"\n}\n'
                             'ha_backend "etcd" {\n address = "x:2379"\n}\n'
                             'listener "tcp" {\n tls_disable = 1\n}\n')
    assert cfg.storage == StorageConfig("file", {"path": "/data"})
    assert cfg.ha_storage == StorageConfig("etcd", {"address": "x:2379"})


def test_storage_options_become_strings_like_vault(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, """
storage "postgresql" {
  connection_url = "postgres://db"
  ha_enabled = true
  max_parallel = 128
  ratio = 1.5
  whole = 2.0
  tags = ["a", "b"]
  retry_join {
    leader_api_addr = "https://a:8200"
  }
}
listener "tcp" {
  tls_disable = true
}
""")
    assert cfg.storage is not None
    assert cfg.storage.options == {
        "connection_url": "postgres://db",
        "ha_enabled": "true",
        "max_parallel": "128",
        "ratio": "1.5",
        "whole": "2",
        "tags": '["a","b"]',
        "retry_join": '[{"leader_api_addr":"https://a:8200"}]',
    }
    assert all(isinstance(v, str) for v in cfg.storage.options.values())


def test_json_storage_list_form(tmp_path: Path) -> None:
    cfg = load_json(tmp_path, {"storage": [{"file": {"path": "/d", "n": 3}}], "listener": {"tcp": PLAIN}})
    assert cfg.storage == StorageConfig("file", {"path": "/d", "n": "3"})


def test_two_storage_blocks_in_one_file(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + 'storage "file" {\n path = "/x"\n}\n')
    assert "storage is already defined in this file" in str(err) and err.key == "storage"


def test_storage_and_legacy_backend_together_is_two_storages(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + 'backend "file" {\n path = "/x"\n}\n')
    assert "storage is already defined in this file" in str(err)


def test_two_ha_storage_blocks(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + 'ha_storage "a" {}\nha_backend "b" {}\n')
    assert "ha_storage is already defined in this file" in str(err)


def test_json_repeated_storage_key_is_two_storages(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json",
                 '{"storage": {"a": {}}, "storage": {"b": {}}, "listener": {"tcp": {"tls_disable": true}}}')
    with pytest.raises(ConfigError, match="storage is already defined in this file"):
        load_config([path])


def test_storage_across_files_names_both(tmp_path: Path) -> None:
    a = write(tmp_path, "a.hcl", BASE)
    b = write(tmp_path, "b.hcl", 'storage "file" {\n path = "/x"\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config([a, b])
    assert str(info.value).startswith(f"{b}: ") and a in str(info.value)
    assert "storage is already defined in" in str(info.value) and "only one is allowed" in str(info.value)


def test_empty_storage_label(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, 'storage "" {}\nlistener "tcp" {\n tls_disable = true\n}\n')
    assert "labels must not be empty" in str(err)


# ------------------------------------------------------------------------------------ listeners


@pytest.mark.parametrize("listener", [
    {"tcp": {"address": "127.0.0.1:8201", "tls_disable": True}},
    [{"tcp": {"address": "127.0.0.1:8201", "tls_disable": True}}],
    {"tcp": [{"address": "127.0.0.1:8201", "tls_disable": True}]},
], ids=["object", "list", "object-of-list"])
def test_json_listener_forms(tmp_path: Path, listener: object) -> None:
    cfg = load_json(tmp_path, {"storage": {"inmem": {}}, "listener": listener})
    assert cfg.listeners == (ListenerConfig(address="127.0.0.1:8201", tls_disable=True),)


def test_hcl_listener_as_attribute_map(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, 'storage "inmem" {}\n'
                             'listener = { tcp = { address = "127.0.0.1:8201", tls_disable = true } }\n')
    assert cfg.listeners == (ListenerConfig(address="127.0.0.1:8201", tls_disable=True),)


def test_two_hcl_listener_blocks_stay_separate_and_ordered(tmp_path: Path) -> None:
    # pyhcl merged repeated blocks into one; each block must stay its own listener.
    cfg = load_hcl(tmp_path, """
storage "inmem" {}
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
}
listener "tcp" {
  address = "10.0.0.1:8200"
  tls_cert_file = "/c.pem"
  tls_key_file = "/k.pem"
}
""")
    assert [(lis.address, lis.tls_disable) for lis in cfg.listeners] == [
        ("127.0.0.1:8200", True), ("10.0.0.1:8200", False)]


def test_two_json_listeners_and_repeated_listener_key(tmp_path: Path) -> None:
    text = ('{"storage": {"inmem": {}}, "listener": {"tcp": {"address": "127.0.0.1:1", "tls_disable": true}},'
            ' "listener": [{"tcp": {"address": "127.0.0.1:2", "tls_disable": true}}]}')
    cfg = load_config([write(tmp_path, "c.json", text)])
    assert [lis.address for lis in cfg.listeners] == ["127.0.0.1:1", "127.0.0.1:2"]


def test_json_repeated_listener_key(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json", '{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": true,'
                                     ' "address": "127.0.0.1:1", "address": "127.0.0.1:2"}}}')
    with pytest.raises(ConfigError, match='listener "tcp": "address" is set more than once'):
        load_config([path])


def test_single_path_string_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "config.hcl", BASE)
    assert load_config(path) == load_config([path])


def test_duplicate_listener_address(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + 'listener "tcp" {\n tls_disable = true\n}\n')
    assert 'address "127.0.0.1:8200" is already used' in str(err)


@pytest.mark.parametrize("value", ["true", '"true"', '"TRUE"', "1", '"1"', '"t"'])
def test_true_spellings(tmp_path: Path, value: str) -> None:
    cfg = load_hcl(tmp_path, f'storage "inmem" {{}}\nui = {value}\n'
                             f'listener "tcp" {{\n tls_disable = {value}\n}}\n')
    assert cfg.ui is True and cfg.listeners[0].tls_disable is True


@pytest.mark.parametrize("value", ["false", '"false"', "0", '"0"'])
def test_false_spellings(tmp_path: Path, value: str) -> None:
    cfg = load_hcl(tmp_path, BASE + f"ui = {value}\ndisable_mlock = {value}\n")
    assert cfg.ui is False and cfg.disable_mlock is False


@pytest.mark.parametrize("value", ['"yes"', "2", "[true]"])
def test_bad_boolean(tmp_path: Path, value: str) -> None:
    err = hcl_error(tmp_path, BASE + f"ui = {value}\n")
    assert "ui must be true or false" in str(err) and err.key == "ui"


def test_max_request_size_zero_means_default_and_negative_unlimited(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, 'storage "inmem" {}\n'
                             'listener "tcp" {\n address = "127.0.0.1:1"\n tls_disable = true\n'
                             ' max_request_size = 0\n}\n'
                             'listener "tcp" {\n address = "127.0.0.1:2"\n tls_disable = true\n'
                             ' max_request_size = "-5"\n}\n')
    assert [lis.max_request_size for lis in cfg.listeners] == [33554432, -1]


def test_bad_max_request_size(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, tcp('max_request_size = "big"'))
    assert 'listener "tcp": max_request_size must be an integer' in str(err)


def test_default_max_request_duration_fills_listeners_without_their_own(tmp_path: Path) -> None:
    a = write(tmp_path, "a.hcl", 'storage "inmem" {}\n'
                                 'listener "tcp" {\n address = "127.0.0.1:1"\n tls_disable = true\n}\n'
                                 'listener "tcp" {\n address = "127.0.0.1:2"\n tls_disable = true\n'
                                 ' max_request_duration = 5\n}\n')
    b = write(tmp_path, "b.hcl", 'default_max_request_duration = "30s"\n')
    cfg = load_config([a, b])
    assert [lis.max_request_duration for lis in cfg.listeners] == [30, 5]


@pytest.mark.parametrize("address", ["0.0.0.0:8200", "[::1]:8200", "[::]:0", "localhost:65535", ":8200",
                                     "vault.example.com:443"])
def test_good_addresses(tmp_path: Path, address: str) -> None:
    cfg = load_hcl(tmp_path, tcp(f'address = "{address}"'))
    assert cfg.listeners[0].address == address


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "expected host:port"),
    ("127.0.0.1:", "expected host:port"),
    ("127.0.0.1:99999", "expected host:port"),
    ("127.0.0.1:http", "expected host:port"),
    ("http://127.0.0.1:8200", "no scheme or path"),
    ("::1:8200", "brackets"),
    ("[nonsense]:8200", "expected host:port"),
    ("{{ GetPrivateIP }}:8200", "templates are not supported"),
])
def test_bad_addresses(tmp_path: Path, address: str, why: str) -> None:
    err = hcl_error(tmp_path, tcp(f'address = "{address}"'))
    assert f'listener "tcp": address "{address}" is invalid' in str(err) or "templates" in str(err)
    assert why in str(err) and err.key == "address"


def test_bad_cluster_address(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, tcp('cluster_address = "x"'))
    assert "cluster_address" in str(err) and err.key == "cluster_address"


def test_tls_min_version_invalid_message(tmp_path: Path) -> None:
    path = write(tmp_path, "config.hcl", tcp('tls_min_version = "tls9"'))
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert str(info.value) == f'{path}: listener "tcp": tls_min_version "tls9" is invalid (tls12 or tls13)'
    assert info.value.key == "tls_min_version"


@pytest.mark.parametrize("version", ["tls10", "tls11"])
def test_old_tls_versions_are_refused_as_insecure(tmp_path: Path, version: str) -> None:
    err = hcl_error(tmp_path, tcp(f'tls_min_version = "{version}"'))
    assert "insecure" in str(err) and version in str(err)


def test_tls_min_above_max(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, tcp('tls_min_version = "tls13"', 'tls_max_version = "tls12"'))
    assert "above tls_max_version" in str(err)


@pytest.mark.parametrize("files", ["", 'tls_cert_file = "/c.pem"', 'tls_key_file = "/k.pem"'])
def test_tls_enabled_needs_cert_and_key(tmp_path: Path, files: str) -> None:
    err = hcl_error(tmp_path, f'storage "inmem" {{}}\nlistener "tcp" {{\n {files}\n}}\n')
    assert "TLS is enabled but tls_cert_file and tls_key_file are not both set" in str(err)


def test_unknown_listener_key(tmp_path: Path) -> None:
    path = write(tmp_path, "config.hcl", tcp('adress = "x:1"'))
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert str(info.value) == f'{path}: listener "tcp": unknown key "adress"'
    assert info.value.key == "adress"


def test_only_tcp_listeners(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, 'storage "inmem" {}\nlistener "unix" {\n address = "/run/s.sock"\n}\n')
    assert 'listener "unix": only "tcp" listeners are supported' in str(err)


@pytest.mark.parametrize("text", ['listener {\n tls_disable = true\n}\n', 'listener = "tcp"\n'])
def test_listener_without_type_label(tmp_path: Path, text: str) -> None:
    err = hcl_error(tmp_path, 'storage "inmem" {}\n' + text)
    assert 'listener must be written as listener "tcp" { ... }' in str(err)


def test_unauthed_ceremony_switches(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, """
storage "inmem" {}
listener "tcp" {
  tls_disable = true
  disable_unauthed_rekey_endpoints = true
  disable_unauthed_generate_root_endpoints = "true"
}
""")
    assert cfg.listeners == (ListenerConfig(tls_disable=True, disable_unauthed_rekey_endpoints=True,
                                            disable_unauthed_generate_root_endpoints=True),)


def test_benign_vault_listener_keys_are_accepted(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, """
storage "inmem" {}
listener "tcp" {
  tls_disable = true
  http_idle_timeout = "5m"
  http_read_header_timeout = "10s"
  http_read_timeout = "30s"
  http_write_timeout = "0"
  tls_max_version = "tls13"
  tls_prefer_server_cipher_suites = false
  max_request_json_memory = 1000
  max_request_json_strings = 1000
  tls_cipher_suites = ""
  x_forwarded_for_reject_not_present = false
  telemetry {
    unauthenticated_metrics_access = true
  }
  profiling {
    unauthenticated_pprof_access = true
  }
}
""")
    # telemetry's unauthenticated_metrics_access is honoured (sys/metrics without a token).
    assert cfg.listeners == (ListenerConfig(tls_disable=True, unauthenticated_metrics_access=True),)


TLS_LISTENER = ('storage "inmem" {}\nlistener "tcp" {\n tls_cert_file = "/c.pem"\n tls_key_file = "/k.pem"\n'
                '%s}\n')


def test_client_certificate_keys_are_read(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, TLS_LISTENER % ' tls_client_ca_file = "/ca.pem"\n tls_require_and_verify_client_cert = true\n')
    (listener,) = cfg.listeners
    assert listener.tls_require_and_verify_client_cert and not listener.tls_disable_client_certs
    assert listener.tls_client_ca_file == "/ca.pem"
    cfg = load_hcl(tmp_path, TLS_LISTENER % ' tls_disable_client_certs = "true"\n')
    assert cfg.listeners[0].tls_disable_client_certs and not cfg.listeners[0].tls_require_and_verify_client_cert
    defaults = load_hcl(tmp_path, TLS_LISTENER % "").listeners[0]
    assert not defaults.tls_disable_client_certs and not defaults.tls_require_and_verify_client_cert


def test_client_certificate_modes_are_mutually_exclusive(tmp_path: Path) -> None:
    both = " tls_require_and_verify_client_cert = true\n tls_disable_client_certs = true\n"
    err = hcl_error(tmp_path, TLS_LISTENER % both)
    assert "tls_disable_client_certs and tls_require_and_verify_client_cert are mutually exclusive" in str(err)
    assert err.key == "tls_disable_client_certs"
    # As in Vault, the check belongs to TLS: a plain-HTTP listener does not care.
    assert load_hcl(tmp_path, tcp(*both.strip().split("\n"))).listeners[0].tls_disable


def test_client_certificate_keys_must_be_booleans(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, TLS_LISTENER % ' tls_require_and_verify_client_cert = "always"\n')
    assert "tls_require_and_verify_client_cert must be true or false" in str(err)


@pytest.mark.parametrize("setting", [
    'tls_cipher_suites = "TLS_AES_128_GCM_SHA256"',
    'x_forwarded_for_authorized_addrs = "10.0.0.0/8"',
    'proxy_protocol_behavior = "use_always"',
    'tls_acme_ca_directory = "https://acme.example/dir"',
    "custom_response_headers {\n default = { X-A = [\"b\"] }\n}",
    "telemetry {\n metrics_only = true\n}",
])
def test_security_relevant_listener_keys_are_refused_not_ignored(tmp_path: Path, setting: str) -> None:
    err = hcl_error(tmp_path, tcp(setting))
    assert "not supported yet" in str(err)


def test_bad_listener_duration(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, tcp('max_request_duration = "soon"'))
    assert 'listener "tcp": invalid max_request_duration: "soon"' in str(err)


# ------------------------------------------------------------------------------------ top-level keys


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "config.hcl", BASE + 'foo = "bar"\n')
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert str(info.value) == f'{path}: unknown key "foo"'
    assert info.value.key == "foo"


def test_unknown_key_in_json(tmp_path: Path) -> None:
    path = write(tmp_path, "config.json", json.dumps({"storage": {"inmem": {}}, "listner": {"tcp": PLAIN}}))
    with pytest.raises(ConfigError, match=r'config\.json: unknown key "listner"'):
        load_config([path])


def test_seal_is_not_supported_yet(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + 'seal "awskms" {\n region = "us-east-1"\n}\n')
    assert "seal is not supported yet" in str(err) and err.key == "seal"


@pytest.mark.parametrize("key", ["service_registration"])
def test_other_unsupported_stanzas(tmp_path: Path, key: str) -> None:
    err = hcl_error(tmp_path, BASE + f'{key} "x" {{}}\n')
    assert "not supported" in str(err)


def test_common_vault_keys_are_accepted_and_ignored(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE + """
log_format = "json"
log_file = "/var/log/vault.log"
raw_storage_endpoint = true
introspection_endpoint = true
enable_response_header_hostname = true
enable_response_header_raft_node_id = true
license_path = "/etc/vault.hclic"
cache_size = "131072"
""")
    assert cfg == load_hcl(tmp_path, BASE, name="plain.hcl")


def test_disable_request_forwarding(tmp_path: Path) -> None:
    """HA standbys redirect instead of forwarding (docs/ha.md); Vault's disable_clustering (no cluster
    port, so no forwarding) means the same."""
    assert load_hcl(tmp_path, BASE).disable_request_forwarding is False
    assert load_hcl(tmp_path, BASE + "disable_request_forwarding = true\n", name="a.hcl").disable_request_forwarding
    assert load_hcl(tmp_path, BASE + "disable_clustering = true\n", name="b.hcl").disable_request_forwarding
    assert not load_hcl(tmp_path, BASE + 'disable_request_forwarding = "false"\n',
                        name="c.hcl").disable_request_forwarding


def test_durations_as_strings_and_ints(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE + 'default_lease_ttl = 3600\nmax_lease_ttl = "1h30m"\n')
    assert (cfg.default_lease_ttl, cfg.max_lease_ttl) == (3600, 5400)
    cfg = load_json(tmp_path, {"storage": {"inmem": {}}, "listener": {"tcp": PLAIN},
                               "default_lease_ttl": "10m", "max_lease_ttl": 7200})
    assert (cfg.default_lease_ttl, cfg.max_lease_ttl) == (600, 7200)


def test_zero_lease_ttl_means_default(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE + 'default_lease_ttl = "0"\nmax_lease_ttl = 0\n')
    assert cfg.default_lease_ttl == cfg.max_lease_ttl == 2764800


def test_lowered_max_lease_ttl_lowers_an_unset_default(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE + 'max_lease_ttl = "1h"\n')
    assert (cfg.default_lease_ttl, cfg.max_lease_ttl) == (3600, 3600)


def test_bad_duration(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + 'max_lease_ttl = "forever"\n')
    assert 'invalid max_lease_ttl: "forever"' in str(err) and err.key == "max_lease_ttl"


def test_default_lease_ttl_above_max(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + 'default_lease_ttl = "800h"\n')
    assert "default_lease_ttl (800h) is larger than max_lease_ttl (768h)" in str(err)


def test_log_level_is_validated_and_normalized(tmp_path: Path) -> None:
    assert load_hcl(tmp_path, BASE + 'log_level = "WARNING"\n').log_level == "warn"
    err = hcl_error(tmp_path, BASE + 'log_level = "loud"\n', name="bad.hcl")
    assert 'log_level "loud" is invalid' in str(err)


@pytest.mark.parametrize(("key", "value"), [
    ("api_addr", "10.0.0.1:8200"),
    ("api_addr", "ftp://10.0.0.1"),
    ("cluster_addr", "not a url"),
    ("api_addr", "{{ GetPrivateIP }}"),
])
def test_bad_advertised_addresses(tmp_path: Path, key: str, value: str) -> None:
    err = hcl_error(tmp_path, BASE + f'{key} = "{value}"\n')
    assert err.key == key and value in str(err)


def test_string_setting_must_be_a_string(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + "cluster_name = 5\n")
    assert "cluster_name must be a string" in str(err)


def test_json_repeated_scalar_key(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json", '{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": true}},'
                                     ' "ui": true, "ui": false}')
    with pytest.raises(ConfigError, match='"ui" is set more than once'):
        load_config([path])


def test_audit_devices_kept_raw(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE + """
audit "file" "to-stdout" {
  description = "Write audit information to standard output."
  options {
    file_path = "stdout"
  }
}
audit "socket" "net" {
  options {
    address = "127.0.0.1:9090"
  }
}
""")
    assert cfg.raw_audit_devices == (
        {"type": "file", "path": "to-stdout", "description": "Write audit information to standard output.",
         "options": {"file_path": "stdout"}},
        {"type": "socket", "path": "net", "options": {"address": "127.0.0.1:9090"}},
    )
    as_json = load_json(tmp_path, {"storage": {"inmem": {}}, "listener": {"tcp": PLAIN}, "audit": [
        {"file": {"to-stdout": {"description": "Write audit information to standard output.",
                                "options": {"file_path": "stdout"}}}},
        {"socket": {"net": {"options": {"address": "127.0.0.1:9090"}}}}]})
    assert as_json.raw_audit_devices == cfg.raw_audit_devices


def test_audit_paths_must_be_unique_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.hcl", BASE + 'audit "file" "x" {}\n')
    b = write(tmp_path, "b.hcl", 'audit "file" "x" {}\n')
    with pytest.raises(ConfigError, match='audit path "x" is already used in') as info:
        load_config([a, b])
    assert str(info.value).startswith(b) and a in str(info.value)


def test_telemetry_kept_raw_and_only_once(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE + 'telemetry {\n statsite_address = "127.0.0.1:8125"\n'
                                    ' disable_hostname = true\n}\n')
    assert cfg.telemetry == {"statsite_address": "127.0.0.1:8125", "disable_hostname": True}
    err = hcl_error(tmp_path, BASE + "telemetry {}\ntelemetry {}\n", name="two.hcl")
    assert "only one telemetry stanza" in str(err)


# ------------------------------------------------------------------------------------ files and merging


def test_directory_is_read_in_sorted_order_and_merged(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    d = tmp_path / "conf.d"
    second = {"tcp": {"address": "127.0.0.1:2", "tls_disable": True}}
    write(d, "20-listener.json", json.dumps({"listener": second, "ui": False, "log_level": "error"}))
    write(d, "10-base.hcl", 'storage "sqlite" {\n path = "/d.db"\n}\nui = true\ncluster_name = "one"\n'
                            'listener "tcp" {\n address = "127.0.0.1:1"\n tls_disable = true\n}\n')
    write(d, "README.md", "not config")
    write(d, "30-broken.hcl.bak", "{{{{")
    (d / "sub.hcl").mkdir()
    cfg = load_config([str(d)])
    assert cfg.storage == StorageConfig("sqlite", {"path": "/d.db"})
    assert [lis.address for lis in cfg.listeners] == ["127.0.0.1:1", "127.0.0.1:2"]  # accumulated in order
    assert cfg.ui is False  # the later file's scalar wins
    assert cfg.cluster_name == "one"  # untouched by the later file
    assert cfg.log_level == "error"


def test_later_paths_override_earlier(tmp_path: Path) -> None:
    a = write(tmp_path, "a.hcl", BASE + 'default_lease_ttl = "1h"\n')
    b = write(tmp_path, "b.hcl", 'default_lease_ttl = "2h"\nlistener "tcp" {\n address = "127.0.0.1:9"\n'
                                 ' tls_disable = true\n}\n')
    assert load_config([a, b]).default_lease_ttl == 7200
    assert load_config([b, a]).default_lease_ttl == 3600
    assert len(load_config([a, b]).listeners) == 2


def test_invalid_value_in_overridden_file_is_still_reported(tmp_path: Path) -> None:
    a = write(tmp_path, "a.hcl", BASE + 'default_lease_ttl = "bogus"\n')
    b = write(tmp_path, "b.hcl", 'default_lease_ttl = "2h"\n')
    with pytest.raises(ConfigError, match=f"^{a}: invalid default_lease_ttl"):
        load_config([a, b])


def test_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.hcl")
    with pytest.raises(ConfigError) as info:
        load_config([missing])
    assert str(info.value) == f"{missing}: no such file or directory"


def test_hcl_syntax_error_names_file(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, 'listener "tcp" {\n address = "x:1"\n')
    assert "HCL syntax error" in str(err) and "line" in str(err)


def test_json_syntax_error_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "config.json", '{"ui": true,}')
    with pytest.raises(ConfigError, match=rf"^{path}: JSON syntax error at line 1 column 13"):
        load_config([path])


def test_json_top_level_must_be_object(tmp_path: Path) -> None:
    path = write(tmp_path, "config.json", "[1, 2]")
    with pytest.raises(ConfigError, match="top level must be an object"):
        load_config([path])


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "config.hcl"
    path.write_bytes(b"ui = \xff\n")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config([str(path)])


def test_storage_and_listener_are_required(tmp_path: Path) -> None:
    only_listener = write(tmp_path, "l.hcl", 'listener "tcp" {\n tls_disable = true\n}\n')
    with pytest.raises(ConfigError, match="no storage stanza") as info:
        load_config([only_listener])
    assert info.value.key == "storage"
    only_storage = write(tmp_path, "s.hcl", 'storage "inmem" {}\n')
    with pytest.raises(ConfigError, match="no listener stanza"):
        load_config([only_storage])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no storage stanza"):
        load_config([str(tmp_path / "empty")])


def test_partial_config_when_not_required(tmp_path: Path) -> None:
    cfg = load_config([write(tmp_path, "c.hcl", "ui = true\n")], require_complete=False)
    assert cfg.storage is None and cfg.listeners == () and cfg.ui is True


# ------------------------------------------------------------------------------------ HCL reader integration


def test_block_labels_and_bodies_come_out_plain(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, BASE + 'cluster_name = "prod"\naudit "file" "a/" {\n options {\n'
                             '  file_path = "/x.log"\n }\n}\n')
    assert cfg.cluster_name == "prod"
    assert cfg.storage == StorageConfig("inmem", {})
    device = cfg.raw_audit_devices[0]
    assert device == {"type": "file", "path": "a/", "options": {"file_path": "/x.log"}}
    assert type(device["options"]) is dict  # not the reader's Block subclass


def test_hcl_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + "ui = yes\n")
    assert "HCL syntax error at line 5 column 6: unexpected 'yes'" in str(err)


def test_block_with_too_few_labels_is_refused(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, 'storage {}\nlistener "tcp" {\n tls_disable = true\n}\n')
    assert 'storage must be written as storage "TYPE" { ... }' in str(err)


def test_attribute_set_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    err = hcl_error(tmp_path, BASE + "ui = true\nui = false\n")
    assert "'ui' is already defined" in str(err) and "line 6" in str(err)


def test_security_stanza(tmp_path: Path) -> None:
    cfg = load_hcl(tmp_path, tcp() + 'security {\n  webhook_urls = ["https://alarm.example:8443/x", '
                   '"http://127.0.0.1:9000/y"]\n  revoke_on_tamper = true\n}\n')
    assert cfg.security_webhook_urls == ("https://alarm.example:8443/x", "http://127.0.0.1:9000/y")
    assert cfg.security_revoke_on_tamper is True
    plain = load_hcl(tmp_path, tcp(), name="plain.hcl")
    assert plain.security_webhook_urls == () and plain.security_revoke_on_tamper is False


def test_security_stanza_errors_name_the_key(tmp_path: Path) -> None:
    e = hcl_error(tmp_path, tcp() + 'security {\n  webhooks = ["http://x"]\n}\n')
    assert "security.webhooks" in str(e)
    e = hcl_error(tmp_path, tcp() + 'security {\n  webhook_urls = ["not a url"]\n}\n', name="b.hcl")
    assert "webhook_urls" in str(e) and "b.hcl" in str(e)
    e = hcl_error(tmp_path, tcp() + 'security {\n  revoke_on_tamper = "maybe"\n}\n', name="c.hcl")
    assert "revoke_on_tamper" in str(e)


def test_user_lockout_stanzas_resolve_as_openbao(tmp_path: Path) -> None:
    from strongroom.config.lockout import UserLockoutConfig

    assert load_hcl(tmp_path, BASE).user_lockouts == {}  # no stanza: the defaults everywhere
    cfg = load_hcl(tmp_path, BASE + """
user_lockout "all" {
  lockout_duration = "10m"
  lockout_counter_reset = "10m"
}
user_lockout "userpass" {
  lockout_threshold = "25"
  lockout_duration = "5m"
}
user_lockout "LDAP" {
  disable_lockout = "true"
}
""")
    assert cfg.user_lockouts == {
        "all": UserLockoutConfig(lockout_threshold=5, lockout_duration=600, lockout_counter_reset=600),
        "userpass": UserLockoutConfig(lockout_threshold=25, lockout_duration=300, lockout_counter_reset=600),
        "ldap": UserLockoutConfig(lockout_threshold=5, lockout_duration=600, lockout_counter_reset=600,
                                  disable_lockout=True),
    }
    only = load_hcl(tmp_path, BASE + 'user_lockout "approle" {\n lockout_threshold = 3\n}\n', name="b.hcl")
    assert only.user_lockouts == {"all": UserLockoutConfig(), "approle": UserLockoutConfig(lockout_threshold=3)}


@pytest.mark.parametrize(("stanza", "key", "words"), [
    ('user_lockout "github" {}', "user_lockout", 'unsupported auth type "github"'),
    ('user_lockout "all" {\n lockout_threshold = "many"\n}', "user_lockout.lockout_threshold", "error parsing"),
    ('user_lockout "all" {\n lockout_threshold = -1\n}', "user_lockout.lockout_threshold", "error parsing"),
    ('user_lockout "all" {\n lockout_duration = "soon"\n}', "user_lockout.lockout_duration", "invalid"),
    ('user_lockout "all" {\n disable_lockout = "maybe"\n}', "user_lockout.disable_lockout", "true or false"),
    ('user_lockout "all" {\n lockout_treshold = 3\n}', "user_lockout.lockout_treshold", "unknown key"),
    ("user_lockout {}", "user_lockout", "user_lockout"),
])
def test_user_lockout_errors(tmp_path: Path, stanza: str, key: str, words: str) -> None:
    err = hcl_error(tmp_path, BASE + stanza + "\n")
    assert err.key == key and words in str(err), str(err)


def test_user_lockout_environment_overrides(tmp_path: Path) -> None:
    from strongroom.config import ConfigError as Err
    from strongroom.server import lockout_config

    cfg = load_hcl(tmp_path, BASE + 'user_lockout "all" {\n lockout_threshold = 3\n}\n')
    core = lockout_config(cfg, {})
    assert core.by_type["all"].threshold == 3 and core.env_disable is None
    assert lockout_config(cfg, {"BAO_DISABLE_USER_LOCKOUT": "true"}).env_disable is True
    assert lockout_config(cfg, {"VAULT_DISABLE_USER_LOCKOUT": "0"}).env_disable is False
    with pytest.raises(Err, match="BAO_DISABLE_USER_LOCKOUT"):
        lockout_config(cfg, {"BAO_DISABLE_USER_LOCKOUT": "perhaps"})


@pytest.mark.parametrize("kind", ["sqlite", "file", "inmem"])
def test_ha_storage_needs_a_backend_with_ha(tmp_path: Path, kind: str) -> None:
    err = hcl_error(tmp_path, BASE + f'ha_storage "{kind}" {{\n  ha_enabled = "true"\n}}\n')
    assert f'ha_storage "{kind}" does not support high availability' in str(err) and err.key == "ha_storage"
    assert "supported: etcd, postgresql" in str(err)


@pytest.mark.parametrize("kind", ["postgresql", "etcd"])
def test_ha_storage_with_ha_backends_is_accepted(tmp_path: Path, kind: str) -> None:
    cfg = load_config([write(tmp_path, "c.hcl", BASE + f'ha_storage "{kind}" {{\n  ha_enabled = "true"\n}}\n')])
    assert cfg.ha_storage == StorageConfig(kind, {"ha_enabled": "true"})
