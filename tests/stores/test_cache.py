from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tinyarms import router
from tinyarms.levels.level0 import Job
from tinyarms.ruleset import load_settings
from tinyarms.stores import cache
from tinyarms.stores.cache import Cache

OUTCOME = {"findings": [], "skipped": [], "suppressed": 0, "lines": 3}


def test_put_then_get_returns_the_value_and_it_survives_reopening(tmp_path: Path) -> None:
    store = Cache(tmp_path / "cache.db")
    k = cache.key("digest", "src/a.py", b"x = 1\n")
    store.put_many([(k, OUTCOME)])
    assert store.get_many([k]) == {k: OUTCOME}
    assert (store.hits, store.misses) == (1, 0)
    store.close()

    reopened = Cache(tmp_path / "cache.db")
    assert reopened.error is None
    assert reopened.get_many([k]) == {k: OUTCOME}
    reopened.close()


def test_values_orjson_refuses_are_kept_too(tmp_path: Path) -> None:
    # A file name that is not UTF-8 reaches the cache as lone surrogates; orjson writes only valid
    # UTF-8, so such a value is stored by the standard library's encoder, and read back the same.
    store = Cache(tmp_path / "cache.db")
    odd = {**OUTCOME, "skipped": [{"path": "odd\udcff.py", "reason": "encoding"}], "big": 2**70}
    k = cache.key("d", "odd\udcff.py", b"")
    store.put_many([(k, odd)])
    assert store.error is None
    assert store.get_many([k]) == {k: odd}
    store.close()


def test_misses_are_counted(tmp_path: Path) -> None:
    store = Cache(tmp_path / "cache.db")
    present, absent = cache.key("d", "a.py", b"a"), cache.key("d", "b.py", b"b")
    store.put_many([(present, OUTCOME)])
    assert store.get_many([present, absent, cache.key("d", "c.py", b"c")]) == {present: OUTCOME}
    assert (store.hits, store.misses) == (1, 2)
    store.close()


def test_many_keys_in_one_lookup(tmp_path: Path) -> None:
    store = Cache(tmp_path / "cache.db")
    keys = [cache.key("d", f"f{i}.py", b"") for i in range(1200)]  # more than one SQL chunk
    store.put_many((k, {"i": i}) for i, k in enumerate(keys))
    found = store.get_many(keys)
    assert len(found) == len(keys) and found[keys[-1]] == {"i": len(keys) - 1}
    store.close()


def test_a_corrupt_cache_file_is_set_aside_and_a_new_cache_made(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    garbage = os.urandom(4096)
    path.write_bytes(garbage)

    store = Cache(path)

    assert store.error is None
    aside = list(tmp_path.glob("cache.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    k = cache.key("d", "a.py", b"a")
    store.put_many([(k, OUTCOME)])
    assert store.get_many([k]) == {k: OUTCOME}
    store.close()


def _unopenable_cache_path(tmp_path: Path) -> Path:
    """A cache path that really cannot be created: a read-only folder, or, for root (whom
    permissions do not stop), a folder that is in fact a regular file."""
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(0o500)
    probe = folder / "probe"
    try:
        probe.touch()
    except PermissionError:
        return folder / "cache.db"
    probe.unlink()
    folder.chmod(0o700)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file\n")
    return blocker / "cache.db"


def test_a_cache_that_cannot_be_opened_sets_error_and_never_raises(tmp_path: Path) -> None:
    path = _unopenable_cache_path(tmp_path)
    try:
        store = Cache(path)
        assert store.error is not None and str(path) in store.error
        k = cache.key("d", "a.py", b"a")
        store.put_many([(k, OUTCOME)])
        assert store.get_many([k]) == {}
        assert store.misses == 1
        store.close()
    finally:
        if path.parent.is_dir():
            path.parent.chmod(0o700)


def test_a_failed_write_sets_error_and_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    store = Cache(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the database past the 2 s timeout
    try:
        store.put_many([(cache.key("d", "a.py", b"a"), OUTCOME)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.error is not None and "write" in store.error
    store.close()


def test_linting_goes_on_when_the_state_directory_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("TINYARMS_HOME", str(blocker / "home"))
    settings = load_settings(None, {})

    result = router.run(settings, [Job("a.css", "a.css", b".a { color: #ff0000; }\n")])

    assert [f.rule for f in result.findings] == ["hardcoded-colors"]
    assert result.stats["cache_error"]


def test_router_reports_a_cache_that_cannot_be_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "cache.db").mkdir(parents=True)  # a folder where the database file should be
    monkeypatch.setenv("TINYARMS_HOME", str(home))
    settings = load_settings(None, {})

    result = router.run(settings, [Job("a.css", "a.css", b".a { color: #ff0000; }\n")])

    assert [f.rule for f in result.findings] == ["hardcoded-colors"]
    assert "cache.db" in result.stats["cache_error"]


def test_router_reuses_cached_results() -> None:
    settings = load_settings(None, {})
    job = Job("a.css", "a.css", b".a { color: #ff0000; }\n")
    first = router.run(settings, [job])
    second = router.run(settings, [Job("shown/elsewhere.css", "a.css", job.raw)])
    assert (first.stats["cache_hits"], second.stats["cache_hits"]) == (0, 1)
    assert [f.path for f in second.findings] == ["shown/elsewhere.css"]
    assert [f.to_dict() | {"path": "a.css"} for f in second.findings] == [f.to_dict() for f in first.findings]


def test_key_changes_with_content_path_digest_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    base = cache.key("digest", "src/a.py", b"x = 1\n")
    assert cache.key("digest", "src/a.py", b"x = 1\n") == base
    assert cache.key("digest", "src/a.py", b"x = 2\n") != base
    assert cache.key("digest", "src/b.py", b"x = 1\n") != base
    assert cache.key("other", "src/a.py", b"x = 1\n") != base
    monkeypatch.setattr(cache, "__version__", "0.0.0-test")
    assert cache.key("digest", "src/a.py", b"x = 1\n") != base


def test_key_fields_cannot_run_into_each_other() -> None:
    # "ab" + "c" and "a" + "bc" must not hash alike
    assert cache.key("ab", "c", b"") != cache.key("a", "bc", b"")


def test_damage_deep_in_the_file_is_recovered_on_first_use(tmp_path) -> None:
    """Pages corrupted after the header open fine and fail on read: set aside, start fresh."""
    from tinyarms.stores.cache import Cache, key

    path = tmp_path / "cache.db"
    cache = Cache(path)
    cache.put_many((key("d", f"f{i}.py", b"x" * i), {"findings": [], "pad": "y" * 2000}) for i in range(300))
    cache.close()
    data = bytearray(path.read_bytes())
    for offset in range(4096 * 2, len(data), 4096):  # keep page 1 (header, schema), wreck the rest
        data[offset : offset + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    cache = Cache(path)
    assert cache.get_many([key("d", "f5.py", b"x" * 5)]) == {}
    assert cache.error is not None and "malformed" in cache.error
    assert list(tmp_path.glob("cache.db.corrupt-*"))
    k = key("d", "new.py", b"new")
    cache.put_many([(k, {"ok": True})])
    assert cache.get_many([k]) == {k: {"ok": True}}
    cache.close()


def test_processes_creating_the_cache_at_once_all_get_it(tmp_path: Path) -> None:
    """Two hooks on a fresh machine: SQLite refuses the second WAL switch at once ("database
    is locked", no busy wait); opening tries again instead of running without a cache."""
    import threading

    errors = []
    for trial in range(40):
        path = tmp_path / str(trial) / "cache.db"
        path.parent.mkdir()
        opened: list[Cache] = []
        # bound as arguments: a lambda would read the loop's names when it runs, not as they are now
        threads = [threading.Thread(target=lambda into, at: into.append(Cache(at)), args=(opened, path))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        errors += [c.error for c in opened if c.error]
        for each in opened:
            each.close()
    assert errors == []


def test_the_cache_key_follows_the_rules_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """An edited rule or finder (a checkout between releases) never answers from the old code's cache."""
    from tinyarms import ruleset

    before = ruleset.load_settings(None).ruleset.digest
    assert before == ruleset.load_settings(None).ruleset.digest  # stable for the same code
    monkeypatch.setattr(ruleset, "_code_stamp", lambda: "edited")
    assert ruleset.load_settings(None).ruleset.digest != before
