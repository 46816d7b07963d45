"""Process entry: config → storage → Core → http App → our HTTP/1.1 listeners; signals; graceful stop.

This module and ``cli`` are the only places that read the environment or print to the terminal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Mapping
from typing import Any

from strongroom import __version__
from strongroom.config import ConfigError, ListenerConfig, ServerConfig, dev_config, load_config
from strongroom.core import Core, CoreConfig
from strongroom.core.audit import AuditConfig
from strongroom.core.follow import Follower
from strongroom.core.lockout import LockoutConfig, LockoutSettings
from strongroom.core.metrics import TelemetryConfig
from strongroom.core.readcache import DEFAULT_SIZE as READ_CACHE_SIZE
from strongroom.core.security import SecurityConfig
from strongroom.errors import InvalidRequest, StoreUnreachable, StrongroomError
from strongroom.http.app import App
from strongroom.http.forwarding import Forwarder, trust_for
from strongroom.http.server import HttpServer
from strongroom.http.tls import ClientCerts, server_context
from strongroom.logical import Storage
from strongroom.migrate import migration_in_progress
from strongroom.storage import PhysicalStorage, open_storage
from strongroom.storage.cache import CachedStorage
from strongroom.telemetry import TimedStorage

log = logging.getLogger("strongroom.server")

def tls_context(listener: ListenerConfig) -> ssl.SSLContext:
    """The listener's TLS 1.2+ server context. Client certificates, as Vault: asked for and accepted
    unchecked, or required and verified against ``tls_client_ca_file``, or not asked for."""
    client_certs: ClientCerts = ("require" if listener.tls_require_and_verify_client_cert
                                 else "none" if listener.tls_disable_client_certs else "request")
    return server_context(listener.tls_cert_file, listener.tls_key_file, min_version=listener.tls_min_version,
                          client_certs=client_certs, client_ca_file=listener.tls_client_ca_file)


async def _listen(app: App, listener: ListenerConfig) -> HttpServer:
    """Bind one listener; a busy address is reported by name (OSError → "Error starting server")."""
    host, _, port = listener.address.rpartition(":")
    server = HttpServer(app, asyncio.get_running_loop())
    ctx = None if listener.tls_disable else tls_context(listener)
    try:
        await server.start(host.strip("[]") or "0.0.0.0", int(port), ctx)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise OSError(e.errno, f"cannot listen on {listener.address}: {reason}") from None
    return server


def _scheme(listener: ListenerConfig) -> str:
    return "http" if listener.tls_disable else "https"


def with_cache(physical: Storage, storage_type: str, *, disable_cache: bool) -> Storage:
    """Vault's physical cache: a read-through LRU of ciphertext in front of durable storage, unless
    the config sets ``disable_cache`` (inmem needs none). Every write goes through it (one process)."""
    if disable_cache or storage_type == "inmem":
        return physical
    return CachedStorage(physical)


_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})


def lockout_config(config: ServerConfig, environ: Mapping[str, str]) -> LockoutConfig:
    """The user_lockout stanzas for core, and OpenBao's BAO_DISABLE_USER_LOCKOUT (VAULT_ too), which
    overrides them and every mount's tuning both ways; an unparsable value is refused at start."""
    by_type = {kind: LockoutSettings(threshold=c.lockout_threshold, duration=c.lockout_duration,
                                     counter_reset=c.lockout_counter_reset, disable=c.disable_lockout)
               for kind, c in config.user_lockouts.items()}
    raw = environ.get("BAO_DISABLE_USER_LOCKOUT", environ.get("VAULT_DISABLE_USER_LOCKOUT", "")).strip().lower()
    if raw and raw not in _TRUE | _FALSE:
        raise ConfigError("environment", "Error parsing the environment variable BAO_DISABLE_USER_LOCKOUT",
                          key="BAO_DISABLE_USER_LOCKOUT")
    return LockoutConfig(by_type=by_type, env_disable=(raw in _TRUE) if raw else None)


async def _run(config: ServerConfig, *, dev: bool, dev_root_token_id: str | None) -> int:
    storage_type = config.storage.type if config.storage else "inmem"
    physical = await open_until_reachable(storage_type, dict(config.storage.options) if config.storage else {})
    migrating = await migration_in_progress(physical)
    if migrating is not None:  # Vault: never serve a store an offline migration is copying
        await physical.close()
        raise InvalidRequest(f"Storage migration in progress (started: {migrating}).")
    timed = TimedStorage(physical)  # sys/metrics: the store's own latency (under the cache)
    core = Core(with_cache(timed, storage_type, disable_cache=config.disable_cache), CoreConfig(default_lease_ttl=config.default_lease_ttl,
                                     max_lease_ttl=config.max_lease_ttl, storage_type=storage_type,
                                     cluster_name=config.cluster_name, api_addr=config.api_addr,
                                     security=SecurityConfig(webhook_urls=config.security_webhook_urls,
                                                             revoke_on_tamper=config.security_revoke_on_tamper),
                                     audit=AuditConfig.from_raw(config.unsafe_allow_api_audit_creation,
                                                                config.raw_audit_devices),
                                     read_cache_size=0 if config.disable_cache else READ_CACHE_SIZE,
                                     min_unsealed_nodes=config.min_unsealed_nodes,
                                     user_lockout=lockout_config(config, os.environ),
                                     telemetry=TelemetryConfig.from_raw(dict(config.telemetry))))
    ha_physical = await open_ha_storage(config)
    lock = getattr(ha_physical if ha_physical is not None else physical, "ha", None)
    follower: Follower | None = None
    forwarder = None  # HA request forwarding (http/forwarding.py), only with HA
    if lock is not None:  # storage/ha_storage "..." { ha_enabled = "true" }: compete for the lock (docs/ha.md)
        from strongroom.core.ha import HA

        first = config.listeners[0] if config.listeners else None
        api_addr = config.api_addr or (f"{_scheme(first)}://{first.address}" if first else "")
        core.ha = HA(lock, api_addr, config.cluster_addr)
        follower = follow_writes(core, physical)
        forwarder = Forwarder(core, enabled=not config.disable_request_forwarding,
                              verify=trust_for([lst.tls_cert_file for lst in config.listeners if lst.tls_cert_file]))
    elif config.min_unsealed_nodes:
        log.warning("min_unsealed_nodes has no effect without HA (a storage backend with ha_enabled)")
    unseal_key = root_token = ""
    if dev:
        key, root_token = await core.dev_bootstrap(dev_root_token_id)
        unseal_key = __import__("base64").b64encode(key).decode()
    servers: list[HttpServer] = []
    try:
        for lst in config.listeners:
            servers.append(await _listen(_app_for(core, lst, forwarder,
                                                  follower if config.standby_reads else None), lst))
        _banner(config, storage_type, dev, unseal_key, root_token)
        await _until_signalled()
        print("==> Strongroom shutdown triggered", flush=True)
        await asyncio.gather(*(s.stop() for s in servers))
    finally:
        for s in servers:  # a failed start or a second signal: nothing may keep listening
            if s.server is not None:
                s.server.close()
        if follower is not None:
            await follower.stop()
        await core.seal()
        if forwarder is not None:
            await forwarder.close()
        await physical.close()
        if ha_physical is not None:
            await ha_physical.close()
    return 0


def follow_writes(core: Core, physical: PhysicalStorage) -> Follower | None:
    """HA: this node publishes its writes (PostgreSQL NOTIFY) and, while standby, follows the active's
    (core/follow.py), when the data store has a change feed."""
    feed = getattr(physical, "changes", None)
    if feed is None:
        log.warning("HA: storage has no change feed; standbys reload everything when they become active")
        return None
    publish = getattr(physical, "publish_changes", None)
    if publish is not None:
        publish()
    from strongroom.core.follow import Follower

    follower = Follower(core, feed, announce=getattr(physical, "announce", None),
                        revision=getattr(physical, "write_revision", None))
    follower.start()
    return follower


async def open_until_reachable(kind: str, options: dict[str, Any], *, first_delay: float = 0.5,
                               max_delay: float = 10.0) -> PhysicalStorage:
    """The storage backend, once it can be reached: a store that is down at start (the database
    not up yet) is tried again, with a growing pause, each failure said on stderr; a configuration
    it refuses stops the server at once."""
    delay = first_delay
    while True:
        try:
            return await open_storage(kind, options)
        except StoreUnreachable as e:
            print(f"Error opening storage ({e}); trying again in {delay:g}s", file=sys.stderr, flush=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


async def open_ha_storage(config: ServerConfig) -> PhysicalStorage | None:
    """The ``ha_storage`` stanza's store (its HA lock only; data stays in ``storage``), as Vault: its
    backend must support HA and have it enabled."""
    if config.ha_storage is None:
        return None
    store = await open_until_reachable(config.ha_storage.type, dict(config.ha_storage.options))
    if getattr(store, "ha", None) is None:
        await store.close()
        raise InvalidRequest(f'ha_storage "{config.ha_storage.type}" has HA support disabled: '
                             'set ha_enabled = "true" in the ha_storage stanza')
    return store


async def _until_signalled() -> None:
    """Return on the first SIGINT or SIGTERM (later ones are ignored: the graceful stop is bounded)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _app_for(core: Core, listener: ListenerConfig, forwarder: Forwarder | None = None,
             standby_reads: Follower | None = None) -> App:
    """One app per listener: request limits and the ceremony switches are per listener."""
    return App(core, max_request_size=listener.max_request_size,
               unauthenticated_metrics=listener.unauthenticated_metrics_access,
               disable_unauthed_rekey=listener.disable_unauthed_rekey_endpoints,
               disable_unauthed_generate_root=listener.disable_unauthed_generate_root_endpoints,
               forwarder=forwarder, standby_reads=standby_reads)


def _banner(config: ServerConfig, storage_type: str, dev: bool, unseal_key: str, root_token: str) -> None:
    first = config.listeners[0]
    addr = f"{_scheme(first)}://{first.address}"
    listeners = ", ".join(f'{lst.address} (tls: "{"disabled" if lst.tls_disable else "enabled"}")' for lst in config.listeners)
    print("==> Strongroom server configuration:\n", flush=False)
    print(f"             Api Address: {config.api_addr or addr}")
    print(f"               Log Level: {config.log_level}")
    print(f"              Listener 1: tcp ({listeners})")
    print(f"                 Storage: {storage_type}")
    print(f"                 Version: Strongroom v{__version__}\n")
    if dev:
        print("WARNING! dev mode is enabled! In this mode, Strongroom runs entirely in-memory")
        print("and starts unsealed with a single unseal key. The root token is already")
        print("authenticated to the CLI, so you can immediately begin using Strongroom.\n")
        print("You may need to set the following environment variables:\n")
        print(f"    $ export VAULT_ADDR='{addr}'\n")
        print("The unseal key and root token are displayed below in case you want to")
        print("seal/unseal the server or re-authenticate.\n")
        print(f"Unseal Key: {unseal_key}")
        print(f"Root Token: {root_token}\n")
        print("Development mode should NOT be used in production installations!\n")
    print("==> Strongroom server started! Log data will stream in below:\n", flush=True)


def serve(*, dev: bool = False, dev_root_token_id: str | None = None, dev_listen_address: str = "127.0.0.1:8200",
          config_paths: list[str] | None = None, log_level: str | None = None) -> int:
    """Run the server until SIGINT/SIGTERM. Returns the process exit code."""
    try:
        if config_paths:
            config = load_config(config_paths, require_complete=not dev)
            if dev:
                config = _with_dev_listener(config, dev_listen_address)
        elif dev:
            config = dev_config(dev_listen_address)
        else:
            print("No configuration files found. Please provide configurations with the\n"
                  "-config flag. If you are supplying the path to a directory, please\n"
                  "ensure the directory contains files with the .hcl or .json extension.", file=sys.stderr)
            return 1
        if log_level:
            config = _replace(config, log_level=log_level)
        if not config.listeners:
            print("Error: no listener configured", file=sys.stderr)
            return 1
    except ConfigError as e:
        print(f"Error loading configuration: {e}", file=sys.stderr)
        return 1
    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.INFO),
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/Linux
        runner = asyncio.run
    try:
        return int(runner(_run(config, dev=dev, dev_root_token_id=dev_root_token_id)))
    except (StrongroomError, OSError) as e:
        print(f"Error starting server: {e}", file=sys.stderr)
        return 1


def _replace(config: ServerConfig, **changes: Any) -> ServerConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


def _with_dev_listener(config: ServerConfig, address: str) -> ServerConfig:
    return _replace(config, listeners=dev_config(address).listeners)
