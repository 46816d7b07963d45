from strongroom.core.mounts import MountEntry
from strongroom.core.router import Router


def _router(*paths: str) -> Router:
    r = Router()
    for p in paths:
        table = "auth" if p.startswith("auth/") else "mounts"
        r.add(MountEntry(table=table, path=p[5:] if table == "auth" else p, type="kv", uuid=p))
    return r


def test_longest_prefix_wins() -> None:
    r = _router("secret/", "secret/team/", "auth/token/")
    hit = r.match("secret/team/app/db")
    assert hit is not None and hit[0].full_path == "secret/team/" and hit[1] == "app/db"
    hit = r.match("secret/teams/app")
    assert hit is not None and hit[0].full_path == "secret/" and hit[1] == "teams/app"
    hit = r.match("auth/token/lookup-self")
    assert hit is not None and hit[0].full_path == "auth/token/" and hit[1] == "lookup-self"


def test_mount_root_and_trailing_slash() -> None:
    r = _router("secret/")
    assert r.match("secret") == (r.get("secret/"), "")
    assert r.match("secret/") == (r.get("secret/"), "")
    assert r.match("secret/a/") == (r.get("secret/"), "a/")


def test_no_match_and_partial_segment() -> None:
    r = _router("secret/")
    assert r.match("secretive/x") is None
    assert r.match("other") is None
    assert r.match("") is None


def test_conflicts_detect_nesting_both_ways() -> None:
    r = _router("secret/")
    assert r.conflicts("secret/inner/") == "secret/"
    assert r.conflicts("se/") is None
    r2 = _router("a/b/")
    assert r2.conflicts("a/") == "a/b/"


def test_remove() -> None:
    r = _router("secret/", "kv/")
    r.remove("secret/")
    assert r.match("secret/x") is None
    assert r.match("kv/x") is not None


class _CountingDict(dict[str, MountEntry]):
    """Records how many characters of probe keys were hashed: the work a match does."""

    hashed = 0

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        _CountingDict.hashed += len(key)
        return super().get(key, default)


def test_match_work_is_bounded_by_the_longest_mount_not_the_path() -> None:
    # Every "/" prefix of the path used to be hashed: 160,000 segments cost ~10 s on the event loop.
    r = _router("secret/", "secret/team/", "auth/token/")
    r._mounts = _CountingDict(r._mounts)
    for n in (10, 160_000):
        _CountingDict.hashed = 0
        hit = r.match("secret/team/" + "a/" * n)
        assert hit is not None and hit[0].full_path == "secret/team/" and hit[1] == "a/" * n
        assert r.match("x/" + "a/" * n) is None
        assert _CountingDict.hashed < 200
    hit = r.match("secret/" + "b" * 100_000)  # one long segment: no "/" within reach
    assert hit is not None and hit[1] == "b" * 100_000


def test_longest_mount_is_forgotten_on_remove_and_clear() -> None:
    r = _router("secret/", "secret/a/b/c/d/e/")
    assert r._longest == len("secret/a/b/c/d/e/")
    r.remove("secret/a/b/c/d/e/")
    assert r._longest == len("secret/")
    assert r.match("secret/a/b/c/d/e/f") == (r.get("secret/"), "a/b/c/d/e/f")
    r.clear()
    assert r._longest == 0 and r.match("secret/x") is None
