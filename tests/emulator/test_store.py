"""The store: SQLite in memory or on disk, atomic check-then-insert."""

from __future__ import annotations

from pathlib import Path

import pytest

from roasproof.emulator import Store


def _record(event_id: str, *, duplicate: bool = False, billable: bool = True) -> dict[str, object]:
    return {"event_id": event_id, "event": "purchase", "duplicate": duplicate, "billable": billable}


def test_a_failed_transaction_leaves_nothing_behind() -> None:
    store = Store()

    def fail_halfway() -> None:
        with store.transaction():
            store.add_event(_record("purchase_1"))
            store.increment("refused")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_halfway()
    assert store.events() == []
    assert store.counters() == {}
    assert store.billable_count() == 0


def test_only_non_duplicate_billable_events_count() -> None:
    store = Store()
    store.add_event(_record("a"))
    store.add_event(_record("a", duplicate=True))
    store.add_event(_record("b", billable=False))
    assert store.billable_count() == 1
    assert store.original("a") == {"seq": 1, **_record("a")}
    assert store.original("zzz") is None


def test_a_file_store_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    store = Store(tmp_path / "deep" / "dir" / "emulator.sqlite3")
    store.save_visitor("v1", {"visitor_id": "v1", "gclid": "g"})
    store.save_visitor("v1", {"visitor_id": "v1", "gclid": "h"})
    assert store.visitor("v1") == {"visitor_id": "v1", "gclid": "h"}
    mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    store.close()
    assert mode == "wal"
    assert (tmp_path / "deep" / "dir" / "emulator.sqlite3").exists()
