"""The etcd server the storage tests start (session-wide), shared with these tests."""

from tests.storage.conftest import etcd_server

__all__ = ["etcd_server"]
