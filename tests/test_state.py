"""The SQLite state on its own: bans, history, positions and pending failures."""

from __future__ import annotations

from pathlib import Path

from logban.state import BanRecord, State


def test_bans_history_and_positions_round_trip(tmp_path: Path) -> None:
    st = State(tmp_path / "s" / "logban.db")
    b = BanRecord("192.0.2.9", "smtp-auth", 1000.0, 4600.0, 3, "postfix-sasl", 1)
    st.commit([b], [], {"file:/var/log/maillog": {"offset": 42}}, 1000.0)
    st.commit([BanRecord("192.0.2.9", "smtp-auth", 5000.0, 12200.0, 3, "dovecot", 2)], [], {}, 5000.0)
    assert st.ban_count("192.0.2.9", "smtp-auth") == 2
    assert [r.filter for r in st.active_bans(6000.0)] == ["dovecot"]
    assert st.active_bans(13000.0) == []
    assert st.load_checkpoint("file:/var/log/maillog") == {"offset": 42}
    st.commit([], [("192.0.2.9", "smtp-auth")], {}, 6000.0)
    assert st.active_bans(6000.0) == []
    st.close()


def test_pending_failures_are_saved_incrementally_and_pruned(tmp_path: Path) -> None:
    st = State(tmp_path / "logban.db")
    st.commit([], [], {}, 0.0, {"smtp-auth": [("198.51.100.1", (100.0, 200.0)),
                                              ("198.51.100.2", (150.0,))]})
    st.commit([], [], {}, 0.0, {"smtp-auth": [("198.51.100.2", None)]})  # banned: gone
    assert st.load_pending() == {"smtp-auth": [("198.51.100.1", (100.0, 200.0))]}
    st.save_pending({"smtp-auth": [("198.51.100.3", (300.0,)), ("198.51.100.4", (900.0,))]})
    assert st.drop_stale_pending(500.0) == 1
    assert st.load_pending() == {"smtp-auth": [("198.51.100.4", (900.0,))]}
