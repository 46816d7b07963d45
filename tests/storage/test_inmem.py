"""Inmem backend: the bisect skip-scan listing agrees with the reference children() fold."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.storage import children
from strongroom.storage.inmem import InmemStorage, open_inmem

_segment = st.text(alphabet="ab/-0_é", min_size=1, max_size=3)
_keys = st.lists(st.lists(_segment, min_size=1, max_size=4).map("/".join), max_size=30)


@settings(max_examples=200, deadline=None)
@given(keys=_keys, prefix=st.text(alphabet="ab/-0_é", max_size=4), deleted=st.data())
def test_list_agrees_with_reference(keys: list[str], prefix: str, deleted: st.DataObject) -> None:
    async def run() -> None:
        storage = InmemStorage()
        for key in keys:
            await storage.put(key, b"v")
        gone = deleted.draw(st.lists(st.sampled_from(keys), max_size=5)) if keys else []
        for key in gone:
            await storage.delete(key)
        remaining = sorted(set(keys) - set(gone))
        assert len(storage) == len(remaining)
        assert await storage.list(prefix) == children(remaining, prefix)
        assert await storage.list("") == children(remaining, "")

    asyncio.run(run())


async def test_factory_and_copy_on_put() -> None:
    storage = await open_inmem({})
    buffer = bytearray(b"abc")
    await storage.put("k", buffer)  # type: ignore[arg-type]
    buffer[0] = ord("z")
    assert await storage.get("k") == b"abc"
    await storage.close()
    assert await storage.get("k") == b"abc"
