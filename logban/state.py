"""Durable state in SQLite (WAL): active bans, ban history for repeat offenders, source positions.

The daemon writes one transaction per batch of lines: the bans that batch made and the source
positions just after it, together. After ``kill -9`` either both are saved or neither, so a
restart never counts a line twice and never loses a ban that reached the saved position.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS bans (
    address TEXT NOT NULL, jail TEXT NOT NULL, created REAL NOT NULL, expires REAL,
    failures INTEGER NOT NULL, filter TEXT NOT NULL, ban_number INTEGER NOT NULL,
    PRIMARY KEY (address, jail));
CREATE TABLE IF NOT EXISTS ban_history (
    address TEXT NOT NULL, jail TEXT NOT NULL, count INTEGER NOT NULL, last REAL NOT NULL,
    PRIMARY KEY (address, jail));
CREATE TABLE IF NOT EXISTS pending (
    jail TEXT NOT NULL, address TEXT NOT NULL, times TEXT NOT NULL, last REAL NOT NULL,
    PRIMARY KEY (jail, address));
CREATE TABLE IF NOT EXISTS checkpoints (
    source TEXT PRIMARY KEY, data TEXT NOT NULL, updated REAL NOT NULL);
"""
# After the migrations: an index on a column an older database does not have yet would fail.
INDEXES = "CREATE INDEX IF NOT EXISTS pending_last ON pending (last);"


class StateError(Exception):
    """The state database cannot be opened or brought up to date; the message says what to do."""


def _times_max(times: str) -> float:
    best = 0.0
    for t in times.split(","):
        try:
            best = max(best, float(t))
        except ValueError:
            pass
    return best


@dataclass(frozen=True, slots=True)
class BanRecord:
    address: str
    jail: str
    created: float
    expires: float | None   # None: permanent
    failures: int
    filter: str
    ban_number: int

    def remaining(self, now: float) -> float | None:
        return None if self.expires is None else max(0.0, self.expires - now)


class State:
    def __init__(self, path: Path) -> None:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.path = path
        try:
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self.db.executescript(SCHEMA)
            self._migrate()
            self.db.executescript(INDEXES)
        except sqlite3.DatabaseError as e:
            raise StateError(
                f"state database {path} cannot be used: {e}. Move it aside (the kernel sets "
                "keep their bans until their timeouts) and start logban again: it starts with "
                "no saved bans, positions or ban history") from None

    def _migrate(self) -> None:
        """Bring a database made by an older logban up to this schema."""
        db = self.db
        cols = {r[1] for r in db.execute("PRAGMA table_info(pending)")}
        if "last" not in cols:  # before pending failures were pruned by time
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("ALTER TABLE pending ADD COLUMN last REAL NOT NULL DEFAULT 0")
                rows = db.execute("SELECT jail, address, times FROM pending").fetchall()
                db.executemany("UPDATE pending SET last=? WHERE jail=? AND address=?",
                               ((_times_max(t), j, a) for j, a, t in rows))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self.db.close()

    def active_bans(self, now: float) -> list[BanRecord]:
        rows = self.db.execute(
            "SELECT address, jail, created, expires, failures, filter, ban_number FROM bans "
            "WHERE expires IS NULL OR expires > ?", (now,)).fetchall()
        return [BanRecord(*r) for r in rows]

    def ban_count(self, address: str, jail: str) -> int:
        row = self.db.execute("SELECT count FROM ban_history WHERE address=? AND jail=?",
                              (address, jail)).fetchone()
        return int(row[0]) if row else 0

    def load_checkpoint(self, source: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data FROM checkpoints WHERE source=?", (source,)).fetchone()
        return json.loads(row[0]) if row else None

    def commit(self, added: list[BanRecord], removed: list[tuple[str, str]],
               checkpoints: dict[str, dict[str, Any]], now: float,
               pending: dict[str, list[tuple[str, tuple[float, ...] | None]]] | None = None) -> None:
        """One transaction: new bans (and their history), removed bans, source positions, and
        the pending failures that changed with them (None: none left), so after ``kill -9``
        the failures counted before the saved positions are not lost."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for b in added:
                db.execute("INSERT OR REPLACE INTO bans VALUES (?,?,?,?,?,?,?)",
                           (b.address, b.jail, b.created, b.expires, b.failures, b.filter, b.ban_number))
                db.execute("INSERT INTO ban_history VALUES (?,?,1,?) ON CONFLICT(address, jail) "
                           "DO UPDATE SET count=count+1, last=excluded.last",
                           (b.address, b.jail, b.created))
            for address, jail in removed:
                db.execute("DELETE FROM bans WHERE address=? AND jail=?", (address, jail))
            for source, data in checkpoints.items():
                db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?)",
                           (source, json.dumps(data), now))
            for jail, rows in (pending or {}).items():
                db.executemany("DELETE FROM pending WHERE jail=? AND address=?",
                               ((jail, a) for a, t in rows if not t))
                db.executemany("INSERT OR REPLACE INTO pending VALUES (?,?,?,?)",
                               ((jail, a, ",".join(repr(x) for x in t), max(t)) for a, t in rows if t))
            db.execute("COMMIT")
        except BaseException:
            # SQLite already rolled back after some errors (a full disk at COMMIT); a second
            # ROLLBACK would raise and hide the error that says what went wrong.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def save_pending(self, pending: dict[str, list[tuple[str, tuple[float, ...]]]]) -> None:
        """Failures below maxretry, saved at a clean stop so a restart (an upgrade, a reload of
        the unit) does not forgive an attacker its first strikes. They match the source
        positions saved with them: the lines after those positions are not in them."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM pending")
            db.executemany("INSERT INTO pending VALUES (?,?,?,?)",
                           ((jail, addr, ",".join(repr(t) for t in times), max(times))
                            for jail, rows in pending.items() for addr, times in rows))
            db.execute("COMMIT")
        except BaseException:
            # SQLite already rolled back after some errors (a full disk at COMMIT); a second
            # ROLLBACK would raise and hide the error that says what went wrong.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def load_pending(self) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
        out: dict[str, list[tuple[str, tuple[float, ...]]]] = {}
        for jail, addr, times in self.db.execute("SELECT jail, address, times FROM pending"):
            out.setdefault(jail, []).append((addr, tuple(float(t) for t in times.split(",") if t)))
        return out

    def drop_stale_pending(self, before: float) -> int:
        """Forget saved failures whose newest time is older than ``before`` (out of every
        window): under a flood of distinct addresses the table would otherwise only grow."""
        return self.db.execute("DELETE FROM pending WHERE last < ?", (before,)).rowcount

    def drop_expired(self, now: float) -> int:
        cur = self.db.execute("DELETE FROM bans WHERE expires IS NOT NULL AND expires <= ?", (now,))
        return cur.rowcount
