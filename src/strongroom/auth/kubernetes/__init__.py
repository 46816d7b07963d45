"""Kubernetes: pods log in with their service account JWT, checked by the cluster's TokenReview API.

Paths (the table of contents; handlers live in the sibling modules)::

    config          where the Kubernetes API is, its CA, the token reviewer JWT     config.py
    role/           LIST roles                                                       roles.py
    role/<name>     bound service account names/namespaces, audience, token_*       roles.py
    login           role + jwt -> token, after a TokenReview                         login.py

The HTTP call and its client pool: review.py. Storage layout: store.py.
"""

from __future__ import annotations

from strongroom.auth.kubernetes import config, login, roles
from strongroom.auth.kubernetes.review import ClientPool
from strongroom.framework import Backend, BackendConfig, Path


def paths() -> list[Path[KubernetesBackend]]:
    return [*config.paths(), *roles.paths(), *login.paths()]


class KubernetesBackend(Backend):
    backend_type = "credential"
    help = ("The Kubernetes auth method lets pods log in with their service account token, which is\n"
            "validated through the TokenReview API of the cluster set at config.")

    #: Seconds a login waits for the TokenReview answer (connect + TLS + answer) before failing.
    review_timeout: float = 10.0

    def __init__(self, cfg: BackendConfig) -> None:
        super().__init__(cfg, paths())
        self.clients = ClientPool()

    def forget_clients(self) -> None:
        """The config changed: the next login builds a client for the new host and CA."""
        self.clients.forget()

    async def invalidate(self, key: str) -> None:
        if key == "config":
            self.forget_clients()

    async def deactivate(self) -> None:
        await self.clients.aclose()
        await super().deactivate()


__all__ = ["KubernetesBackend", "paths"]
