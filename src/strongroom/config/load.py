"""Reading config files and directories, and the two entry points, ``load_config`` and ``dev_config``.

A path is a file or a directory; a directory contributes its ``*.hcl`` and ``*.json`` files in
sorted name order (other files are skipped). A file is JSON when it ends in ``.json``, or when it
has neither suffix and its text starts with ``{``; otherwise it is HCL. A JSON object that repeats
a key keeps every value (as :class:`_Repeated`), because HCL's JSON syntax reads a repeated key as
several blocks (two ``"listener"`` keys are two listeners), and a repeated scalar must be refused
rather than silently take the last value.

Files are handed to the builder in ``server`` one by one, in order; it merges them as Vault does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from strongroom import hcl
from strongroom.config.listener import DEFAULT_ADDRESS, ListenerConfig
from strongroom.config.server import ServerConfig, StorageConfig, _Builder
from strongroom.config.values import ConfigError, _address, _Bad, _Repeated


def load_config(paths: Sequence[str], *, require_complete: bool = True) -> ServerConfig:
    """Read, merge and validate config files and directories, in the order given.

    With ``require_complete`` (the default) a storage stanza and at least one listener are
    required, as Vault requires them outside dev mode.
    """
    if isinstance(paths, str):  # a lone path, not a sequence of one-character paths
        paths = [paths]
    builder = _Builder()
    for path in paths:
        for file in _expand(path):
            builder.add_file(_read(file), file)
    return builder.build(", ".join(paths) or "config", require_complete)


def dev_config(listen_address: str = DEFAULT_ADDRESS) -> ServerConfig:
    """``server -dev``: in-memory storage, one plain-HTTP tcp listener, UI on."""
    try:
        address = _address(listen_address, "dev-listen-address")
    except _Bad as exc:
        raise ConfigError("-dev-listen-address", exc.message, key=exc.key) from None
    return ServerConfig(
        storage=StorageConfig("inmem", {}),
        listeners=(ListenerConfig(address=address, tls_disable=True),),
        disable_mlock=True,
        ui=True,
    )



def _expand(path: str) -> list[str]:
    p = Path(path)
    if p.is_dir():
        return [str(p / name) for name in sorted(c.name for c in p.iterdir() if c.is_file()
                                                  and c.suffix.lower() in (".hcl", ".json"))]
    if not p.exists():
        raise ConfigError(path, "no such file or directory")
    return [path]


def _read(path: str) -> dict[str, object]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(path, "not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}") from None
    suffix = Path(path).suffix.lower()
    is_json = suffix == ".json" or (suffix != ".hcl" and text.lstrip().startswith("{"))
    data = _parse_json(text, path) if is_json else _parse_hcl(text, path)
    if not isinstance(data, dict):
        raise ConfigError(path, "the top level must be an object")
    return data


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = _Repeated([*prev, value]) if isinstance(prev, _Repeated) else _Repeated([prev, value])
        else:
            out[key] = value
    return out


def _parse_json(text: str, path: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ConfigError(path, f"JSON syntax error at {where}: {exc.msg}") from None


def _parse_hcl(text: str, path: str) -> object:
    try:
        return hcl.loads(text)
    except hcl.HCLError as exc:
        raise ConfigError(path, f"HCL syntax error at line {exc.line} column {exc.column}: {exc.detail}") from None
