"""``logban run``: sources -> filters -> tracker -> actions, with state and a control socket.

One main loop thread owns the tracker, the state and the actions; sources and the control
socket only wake it. That keeps every decision single-threaded and needs no locks: a ban goes
to the kernel as soon as the line that completes it is read, and the line positions are saved
in the same transaction as the bans they caused.
"""

from __future__ import annotations

import heapq
import ipaddress
import logging
import queue
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from logban import sdnotify
from logban.actions.base import Action, ActionError, KernelBan, SetFullError
from logban.addr import AddressSet, canonical, why_not_a_client
from logban.config import Config, ConfigError, SourceConfig, load_config
from logban.control import ControlServer, Request
from logban.durations import format_duration, parse_duration
from logban.filters import Filter, FilterError, load_filters
from logban.hostaddrs import own_addresses
from logban.matcher import Matcher
from logban.sources.base import Chunk, Source
from logban.state import BanRecord, State
from logban.tracker import BanDecision, Tracker

log = logging.getLogger("logban")
LOOPBACK = ["127.0.0.0/8", "::1/128"]
CHECK_EVERY = 5.0
# Positions and pending failures alone are saved at most this often (bans at once, with the
# positions they match): a log growing by small writes would otherwise cost one SQLite
# transaction per write. kill -9 then re-reads up to this much, whose failures were not saved
# either, so nothing is counted twice.
COMMIT_EVERY = 0.25
OWN_ADDRESSES_EVERY = 60.0


def make_action(name: str, cfg: Config) -> Action:
    opts = dict(cfg.actions.get(name, {}))
    kind = opts.pop("type", name)
    if kind == "dry-run":
        from logban.actions.dryrun import DryRunAction
        return DryRunAction()
    if kind == "ipset":
        from logban.actions.ipset import IPSetAction
        return IPSetAction(**{k: v for k, v in opts.items() if k in ("set4", "set6", "maxelem", "hashsize")})
    raise ConfigError([f"{cfg.path}:1: actions.{name}: unknown action type {kind!r}"])


def make_source(sc: SourceConfig, checkpoint: dict[str, Any] | None, filters: list[Filter]) -> Source:
    if sc.kind == "file":
        from logban.sources.file import FileSource
        return FileSource(sc.path or "", checkpoint=checkpoint, start_at=sc.start_at)  # type: ignore[arg-type]
    if sc.kind == "journal":
        from logban.sources.journal import JournalSource, journal_matches
        matches = journal_matches(filters)
        return JournalSource(sc.path, matches, checkpoint=checkpoint, start_at=sc.start_at)  # type: ignore[arg-type]
    if sc.kind == "kmsg":
        from logban.sources.kmsg import KmsgSource
        return KmsgSource(sc.path or "/dev/kmsg", checkpoint=checkpoint, start_at=sc.start_at)  # type: ignore[arg-type]
    raise ValueError(sc.kind)


def source_id(sc: SourceConfig) -> str:
    if sc.kind == "file":
        return f"file:{sc.path}"
    if sc.kind == "journal":
        return f"journal:{sc.path}" if sc.path else "journal:system"
    return f"kmsg:{sc.path}" if sc.path and sc.path != "/dev/kmsg" else "kmsg"


def _unused_sets(actions: dict[str, Any]) -> list[str]:
    """Sets no firewall rule names: their bans block nothing (a newcomer who skipped
    ``logban rules``). Not a problem of logban's own, so kept apart from ``problems``."""
    out = []
    for a in actions.values():
        for name, info in (a.get("sets") or {}).items():
            if info.get("exists") and info.get("references") == 0:
                out.append(f"ipset {name} is used by no firewall rule, so its bans block "
                           "nothing: load the rule `logban rules` prints")
    return out


def state_path(cfg: Config) -> Path:
    """The database file; ``state_dir: ":memory:"`` keeps nothing (examples, dry runs)."""
    return cfg.state_dir if str(cfg.state_dir) == ":memory:" else cfg.state_dir / "logban.db"


def jail_filters(cfg: Config) -> list[Filter]:
    """The jails' filters, each proven against its own samples (FilterError otherwise)."""
    from logban.selfcheck import require_samples

    names = list(dict.fromkeys(n for j in cfg.jails.values() for n in j.filters))
    filters = load_filters(names, dirs=(cfg.filter_dirs + _default_dirs()) if cfg.filter_dirs else None,
                           overrides=cfg.filter_vars)
    require_samples(filters)
    return filters


def _default_dirs() -> list[Any]:
    from logban.filters import default_filter_dirs
    return default_filter_dirs()


@dataclass
class Pipeline:
    """Everything built from one configuration; a reload builds a new one and swaps it in."""

    cfg: Config
    filters: list[Filter]
    matcher: Matcher
    tracker: Tracker
    ignore: AddressSet


class Daemon:
    def __init__(self, cfg: Config, once: bool = False) -> None:
        self.cfg = cfg
        self.once = once
        self.wake_event = threading.Event()
        self.requests: queue.Queue[Request] = queue.Queue()
        self.stop_requested = False
        self.reload_requested = False
        self.bans: dict[tuple[str, str], BanRecord] = {}
        self.jails_of: dict[str, set[str]] = {}  # address -> jails banning it
        self._mid_batch = False
        self.saved_checkpoints: dict[str, dict[str, Any]] = {}
        self._resume: dict[str, dict[str, Any] | None] = {}  # reopened sources' positions
        self.wd_interval = sdnotify.watchdog_interval()
        self.last_wd = time.monotonic()
        self.expiry_heap: list[tuple[float, str, str]] = []
        self.pending_bans: list[BanRecord] = []
        self.pending_removals: list[tuple[str, str]] = []
        self.actions: dict[str, Action] = {}
        self.sources: dict[str, Source] = {}
        self.problems: dict[str, str] = {}
        self.manual_bans: Counter[str] = Counter()  # manual bans made since start, per jail
        self._next_commit = 0.0        # monotonic time before which a lazy commit waits
        self._commit_waiting = False   # a lazy commit was put off: the loop must come back
        self.lines_read: dict[str, int] = {}
        self.failures_seen = 0
        self.state_ok = True
        self.started = time.time()
        self.own: set[str] = set()
        self.state = State(state_path(cfg))
        self.pipe = self._build(cfg)

    # ---- construction -------------------------------------------------------------------
    def _build(self, cfg: Config) -> Pipeline:
        filters = jail_filters(cfg)
        ignore = AddressSet([ipaddress.ip_network(n) for n in LOOPBACK] + list(cfg.ignore))
        if cfg.ignore_self:
            self.own = own_addresses()
            for a in self.own:
                ignore.add(ipaddress.ip_network(a))
        tracker = Tracker(list(cfg.jails.values()), ignore, self.is_banned, self._ban_count,
                          correlate_window=cfg.correlate_window, max_tracked=cfg.max_tracked)
        return Pipeline(cfg, filters, Matcher(filters), tracker, ignore)

    def wake(self) -> None:
        self.wake_event.set()

    def is_banned(self, address: str, jail: str) -> bool:
        rec = self.bans.get((address, jail))
        return rec is not None and (rec.expires is None or rec.expires > time.time())

    def _ban_count(self, address: str, jail: str) -> int:
        try:
            return self.state.ban_count(address, jail)
        except Exception as e:  # the state may be unwritable or gone: bans still happen
            self._state_problem(e)
            return 0

    def _state_problem(self, e: Exception) -> None:
        if self.state_ok:
            log.error("state database %s failed: %s; bans still reach the kernel and are kept in "
                      "memory, and saving is retried every loop", self.state.path, e)
        self.state_ok = False
        self.problems["state"] = f"state database {self.state.path}: {e}"

    # ---- bans ----------------------------------------------------------------------------
    def _action_for(self, jail: str) -> Action:
        j = self.cfg.jails.get(jail)
        name = j.action if j else self._manual_action()
        return self.actions[name]

    def _manual_action(self) -> str:
        return next(iter(self.cfg.jails.values())).action

    def _kernel_bans(self, action_name: str) -> list[KernelBan]:
        best: dict[str, float | None] = {}
        for (addr, jail), rec in self.bans.items():
            j = self.cfg.jails.get(jail)
            if (j.action if j else self._manual_action()) != action_name:
                continue
            if addr in best and (best[addr] is None or (rec.expires is not None and rec.expires <= best[addr])):  # type: ignore[operator]
                continue
            best[addr] = rec.expires
        return [KernelBan(a, e) for a, e in best.items()]

    def _put(self, rec: BanRecord) -> None:
        self.bans[(rec.address, rec.jail)] = rec
        self.jails_of.setdefault(rec.address, set()).add(rec.jail)
        if rec.expires is not None:
            heapq.heappush(self.expiry_heap, (rec.expires, rec.address, rec.jail))

    def _pop(self, address: str, jail: str) -> BanRecord | None:
        rec = self.bans.pop((address, jail), None)
        js = self.jails_of.get(address)
        if js is not None:
            js.discard(jail)
            if not js:
                del self.jails_of[address]
        return rec

    def _kernel_ban(self, address: str, action: Action) -> KernelBan | None:
        """What the kernel should hold for ``address`` in ``action``: the longest of its bans
        there (several jails may ban one address), or None when none is left."""
        recs = [self.bans[(address, j)] for j in self.jails_of.get(address, ())
                if self._action_for(j) is action]
        if not recs:
            return None
        if any(r.expires is None for r in recs):
            return KernelBan(address, None)
        return KernelBan(address, max(r.expires for r in recs if r.expires is not None))

    def _apply_ban(self, rec: BanRecord, why: str) -> None:
        now = time.time()
        self._put(rec)
        self.pending_bans.append(rec)
        # An unban of the same (address, jail) not saved yet (a control request answered in
        # the middle of a batch) must not delete this newer ban when the batch is saved:
        # State.commit writes the bans first and the removals after them.
        key = (rec.address, rec.jail)
        if key in self.pending_removals:
            self.pending_removals = [k for k in self.pending_removals if k != key]
        action = self._action_for(rec.jail)
        try:
            action.ban(self._kernel_ban(rec.address, action) or KernelBan(rec.address, rec.expires), now)
            self.problems.pop(f"ban:{rec.jail}", None)
        except SetFullError as e:
            log.error("ban of %s did not reach the kernel: %s", rec.address, e)
            self.problems[f"ban:{rec.jail}"] = str(e)
        except Exception as e:  # ActionError, or anything a netlink library raises: keep running
            log.error("ban of %s did not reach the kernel: %s; retried at the next check", rec.address, e)
            self.problems[f"ban:{rec.jail}"] = str(e)
        dur = "permanently" if rec.expires is None else f"for {format_duration(rec.expires - rec.created)}"
        log.info("ban %s jail=%s failures=%d %s filter=%s ban#%d%s", rec.address, rec.jail,
                 rec.failures, dur, rec.filter, rec.ban_number, why)

    def _decide(self, d: BanDecision) -> None:
        now = time.time()
        expires = None if d.duration <= 0 else now + d.duration  # bantime 0: permanent
        self._apply_ban(BanRecord(d.address, d.jail, now, expires, d.failures, d.filter,
                                  d.ban_number), "")

    def _remove_ban(self, address: str, jail: str, reason: str) -> bool:
        rec = self._pop(address, jail)
        if rec is None:
            return False
        self.pending_removals.append((address, jail))
        action = self._action_for(jail)
        still = self._kernel_ban(address, action)
        try:
            if still is not None:
                action.ban(still, time.time())
            else:
                action.unban(address)
        except Exception as e:  # the kernel timeout lifts it anyway
            log.error("unban of %s failed: %s; the kernel timeout lifts it", address, e)
        log.info("unban %s jail=%s (%s)", address, jail, reason)
        return True

    def _expire_bans(self, now: float) -> None:
        h = self.expiry_heap
        while h and h[0][0] <= now:
            exp, addr, jail = heapq.heappop(h)
            rec = self.bans.get((addr, jail))
            if rec is not None and rec.expires is not None and rec.expires <= now:
                self._remove_ban(addr, jail, "expired")

    # ---- input ---------------------------------------------------------------------------
    def _process(self, chunk: Chunk) -> None:
        now = datetime.now()
        pipe = self.pipe
        for _index, _text, res in pipe.matcher.scan(chunk.data, now, chunk.time):
            f = res.failure
            if f is None:
                continue
            self.failures_seen += 1
            for d in pipe.tracker.process(f, chunk.source):
                self._decide(d)
        self.lines_read[chunk.source] = self.lines_read.get(chunk.source, 0) + chunk.data.count(b"\n")

    def _read_sources(self) -> int:
        n = 0
        for src in list(self.sources.values()):
            try:
                chunks = src.read()
            except Exception as e:  # a broken source must not stop the others
                log.exception("reading %s failed: %s", src.id, e)
                self.problems[f"source:{src.id}"] = str(e)
                continue
            self._mid_batch = True
            try:
                for c in chunks:
                    try:
                        self._process(c)
                    except Exception as e:  # a bug on one chunk must not stop the daemon
                        log.exception("processing %d bytes from %s failed (%s); those lines are "
                                      "skipped, the daemon goes on", len(c.data), c.source, e)
                        self.problems[f"process:{c.source}"] = f"{c.source}: lines skipped after {e}"
                    n += len(c.data)
                    self._service()
            finally:
                self._mid_batch = False
        return n

    def _service(self) -> None:
        """Between chunks of a long backlog: answer control requests and keep the systemd
        watchdog fed, so catching up on a big log never looks like a hang. Nothing is saved
        here: the sources' positions already lie past chunks not yet processed."""
        while True:
            try:
                self._handle(self.requests.get_nowait())
            except queue.Empty:
                break
        if self.wd_interval:
            mono = time.monotonic()
            if mono - self.last_wd >= self.wd_interval:
                self.last_wd = mono
                sdnotify.notify("WATCHDOG=1")

    def _commit(self, lazy: bool = False) -> None:
        if lazy and not (self.pending_bans or self.pending_removals):
            mono = time.monotonic()
            if mono < self._next_commit:
                self._commit_waiting = True
                return
            self._next_commit = mono + COMMIT_EVERY
        self._commit_waiting = False
        if self._mid_batch:
            # A control request answered while a backlog is read: its ban or unban is saved
            # now (the user was told it is done), with the bans the batch has made so far.
            # Positions and pending failures wait for the end of the batch, where they match
            # what was processed; a ban saved ahead of its lines only means those lines, read
            # again after a crash, find the address banned and count nothing.
            self._save_bans_only()
            return
        cps: dict[str, dict[str, Any]] = {}
        for sid, src in self.sources.items():
            cp = src.checkpoint()
            if cp is not None and cp != self.saved_checkpoints.get(sid):
                cps[sid] = cp  # only positions that moved: an idle daemon writes nothing
        dirty = self.pipe.tracker.take_dirty()
        if not (self.pending_bans or self.pending_removals or cps or dirty):
            return
        try:
            self.state.commit(self.pending_bans, self.pending_removals, cps, time.time(), dirty)
        except Exception as e:
            self.pipe.tracker.mark_dirty(dirty)
            self._state_problem(e)
            return
        if not self.state_ok:
            log.info("state database %s is writable again; saved what was pending", self.state.path)
            self.state_ok = True
            self.problems.pop("state", None)
        self.saved_checkpoints.update(cps)
        self.pending_bans, self.pending_removals = [], []

    def _save_bans_only(self) -> None:
        if not (self.pending_bans or self.pending_removals):
            return
        try:
            self.state.commit(self.pending_bans, self.pending_removals, {}, time.time(), None)
        except Exception as e:
            self._state_problem(e)
            return
        self.pending_bans, self.pending_removals = [], []

    # ---- control -------------------------------------------------------------------------
    def _handle(self, req: Request) -> None:
        body = req.body
        cmd = body.get("cmd")
        try:
            if cmd == "status":
                req.answer({"ok": True, **self.status()})
            elif cmd == "list":
                now = time.time()
                req.answer({"ok": True, "bans": [
                    {"address": r.address, "jail": r.jail, "created": r.created, "expires": r.expires,
                     "remaining": r.remaining(now), "failures": r.failures, "filter": r.filter,
                     "ban_number": r.ban_number} for r in sorted(self.bans.values(), key=lambda r: r.created)]})
            elif cmd == "ban":
                req.answer(self._manual_ban(body))
            elif cmd == "unban":
                addr = canonical(str(body.get("address", "")))
                if addr is None:
                    req.answer({"ok": False, "error": why_not_a_client(str(body.get("address", "")))})
                    return
                jail = body.get("jail")
                if jail and jail != "manual" and jail not in self.cfg.jails:
                    req.answer({"ok": False, "error": f"unknown jail {jail!r} (jails: "
                                                      f"{', '.join(self.cfg.jails)}, manual)"})
                    return
                jails = [jail] if jail else sorted(self.jails_of.get(addr, ()))
                removed = [j for j in jails if self._remove_ban(addr, j, "manual unban")]
                self._commit()
                if not removed:
                    req.answer({"ok": False, "error": f"{addr} is not banned"})
                else:
                    req.answer({"ok": True, "address": addr, "jails": removed})
            elif cmd == "reload":
                self.reload_requested = True
                req.answer({"ok": True})
            else:
                req.answer({"ok": False, "error": f"unknown command {cmd!r}"})
        except Exception as e:  # never let one request take the daemon down
            log.exception("control request %r failed", cmd)
            req.answer({"ok": False, "error": f"{cmd} failed: {e}"})

    def _manual_ban(self, body: dict[str, Any]) -> dict[str, Any]:
        addr = canonical(str(body.get("address", "")))
        if addr is None:
            return {"ok": False, "error": why_not_a_client(str(body.get("address", "")))}
        jails = list(self.cfg.jails)
        jail = body.get("jail") or (jails[0] if len(jails) == 1 else "manual")
        if jail != "manual" and jail not in self.cfg.jails:
            return {"ok": False, "error": f"unknown jail {jail!r} (jails: {', '.join(jails)}, manual)"}
        if addr in self.pipe.ignore and not body.get("force"):
            return {"ok": False, "error": f"{addr} is in the ignore list or is this host's own address; "
                                          "use --force to ban it anyway"}
        j = self.cfg.jails.get(jail) or next(iter(self.cfg.jails.values()))
        dur_raw = body.get("duration")
        try:
            dur = j.bantime if dur_raw is None else parse_duration(dur_raw)
        except ValueError as e:
            return {"ok": False, "error": str(e)}
        now = time.time()
        prev = self._ban_count(addr, jail)
        old = self.bans.get((addr, jail))
        rec = BanRecord(addr, jail, now, None if dur == 0 else now + dur,
                        old.failures if old else 0, "manual", prev + 1)
        self._apply_ban(rec, " (manual)")
        self._commit()
        self.manual_bans[jail] += 1
        reply: dict[str, Any] = {"ok": True, "address": addr, "jail": jail, "expires": rec.expires}
        if old is not None:  # the admin should know the earlier ban's end is gone
            reply["replaced"] = {"expires": old.expires, "failures": old.failures, "filter": old.filter}
        return reply

    def status(self) -> dict[str, Any]:
        now = time.time()
        tr = self.pipe.tracker
        jails = {}
        for name, st in tr.states.items():
            jails[name] = {"failures_tracked": len(st.counts), "failures_total": st.failures_total,
                           "duplicates": st.duplicates,
                           "bans_active": sum(1 for (a, j) in self.bans if j == name),
                           "bans_total": st.bans_total + self.manual_bans[name]}
        manual = sum(1 for (a, j) in self.bans if j == "manual")
        if manual or self.manual_bans["manual"]:
            jails["manual"] = {"bans_active": manual, "bans_total": self.manual_bans["manual"]}
        sources = {}
        for sid, src in self.sources.items():
            try:
                s = dict(src.status())
            except Exception as e:
                s = {"error": str(e)}
            s["lines_read"] = self.lines_read.get(sid, 0)
            sources[sid] = s
        actions = {}
        for name, a in self.actions.items():
            try:
                actions[name] = a.status()
            except Exception as e:
                actions[name] = {"error": str(e)}
        users = {addr: dict(c.most_common(10)) for addr, c in list(tr.users.users.items())[-50:]}
        return {"uptime": round(now - self.started), "jails": jails, "sources": sources,
                "actions": actions, "problems": sorted(self.problems.values()),
                "warnings": _unused_sets(actions),
                "failures_seen": self.failures_seen, "ignored": tr.ignored, "users": users,
                "state": {"path": str(self.state.path), "ok": self.state_ok}}

    def status_line(self) -> str:
        active = len(self.bans)
        tracked = sum(len(st.counts) for st in self.pipe.tracker.states.values())
        line = f"{active} bans active, {tracked} addresses tracked, {self.failures_seen} failures seen"
        if self.problems:
            line += f"; {len(self.problems)} problem(s): " + next(iter(self.problems.values()))[:120]
        return line

    # ---- lifecycle -----------------------------------------------------------------------
    def _start_sources(self) -> None:
        for sc in self.cfg.sources:
            sid = source_id(sc)
            if sid in self.sources:
                continue
            try:
                cp = self._resume.pop(sid) if sid in self._resume else self.state.load_checkpoint(sid)
            except Exception as e:
                self._state_problem(e)
                cp = None
            if cp is None and sc.kind == "journal" and sc.start_at == "end" \
                    and f"source:{sid}" in self.problems:
                # A journal that could not be opened before (its directory not there yet):
                # what was written since the daemon started is new, as for a file that
                # appears later.
                cp = {"realtime": int(self.started * 1_000_000)}
            try:
                src = make_source(sc, cp, self.pipe.filters)
                src.start(self.wake)
            except (ImportError, ValueError, OSError) as e:
                # One unusable source (no systemd-python, a bad journal path) must not stop
                # the others: logged once, shown in status, retried at every periodic check.
                msg = f"{sid}: {e}"
                if self.problems.get(f"source:{sid}") != msg:
                    log.error("source %s cannot be used: %s; the other sources keep working, "
                              "and it is retried every %gs", sid, e, CHECK_EVERY)
                self.problems[f"source:{sid}"] = msg
                continue
            self.problems.pop(f"source:{sid}", None)
            self.sources[sid] = src
            log.info("following %s%s", sid, " from its saved position" if cp else f" from the {sc.start_at}")

    def _start_actions(self, built: dict[str, Action] | None = None, reloading: bool = False) -> None:
        names = list(dict.fromkeys(j.action for j in self.cfg.jails.values()))
        now = time.time()
        for name in names:
            if name in self.actions:
                continue
            a = (built or {}).get(name) or make_action(name, self.cfg)
            try:
                a.start(self._kernel_bans(name), now)
            except SetFullError as e:
                # The sets hold what fits (the action logged what not); the daemon keeps
                # working: room comes from expiring bans, unbans or a larger maxelem.
                self.problems[f"action:{name}:start"] = str(e)
            except ActionError as e:
                if not reloading:
                    raise
                # Keep it anyway: every jail must have its action (each ban reports its own
                # failure, and the periodic check retries the sets).
                log.error("action %s: %s", name, e)
                self.problems[f"action:{name}:start"] = str(e)
            self.actions[name] = a

    def _changed_actions(self, new: Config) -> dict[str, Action]:
        """The actions the new configuration uses whose options changed (or that are new),
        built but not started; raises ValueError or ConfigError for unusable options."""
        out: dict[str, Action] = {}
        for name in dict.fromkeys(j.action for j in new.jails.values()):
            if name in self.actions and self.cfg.actions.get(name) == new.actions.get(name):
                continue
            out[name] = make_action(name, new)
        return out

    def reload(self) -> None:
        try:
            new = load_config(self.cfg.path)
            pipe = self._build(new)
            if any(sc.kind == "journal" for sc in new.sources):
                from logban.sources.journal import _check_match, journal_matches
                for m in journal_matches(pipe.filters):  # a journal reopened with them must open
                    _check_match(m)
            built = self._changed_actions(new)
        except (ConfigError, FilterError, ValueError) as e:
            log.error("reload of %s refused, the running configuration stays:\n%s", self.cfg.path, e)
            self.problems["reload"] = f"reload refused: {str(e).splitlines()[0]}"
            return
        held = {name: set(self._kernel_bans(name)) for name in self.actions}
        old_ids = set(self.sources)
        self._commit()  # the old tracker's changed failures, with the positions they match
        kept = pipe.tracker.take_over(self.pipe.tracker)
        self.cfg, self.pipe = new, pipe
        self.problems.pop("reload", None)
        new_ids = {source_id(s) for s in new.sources}
        for sid in old_ids - new_ids:
            self.sources.pop(sid).stop()
        self._reopen_changed_journals(new, pipe.filters)
        used = {j.action for j in new.jails.values()}
        for name in [n for n in self.actions if n not in used or n in built]:
            # Its sets keep what they hold and expire it by the kernel timeouts; logban no
            # longer changes them (new set names need the firewall rule changed too).
            log.info("action %s %s", name, "options changed: bans now go where the new options say"
                     if name in built else "is no longer used")
            for k in [k for k in self.problems if k.startswith(f"action:{name}:")]:
                del self.problems[k]
            try:
                self.actions.pop(name).stop()
            except Exception as e:
                log.error("stopping action %s: %s", name, e)
        now = time.time()
        for name, a in self.actions.items():
            # Jails moved between actions, or one renamed: make the sets match again.
            want = self._kernel_bans(name)
            if set(want) != held.get(name):
                try:
                    a.start(want, now)
                except ActionError as e:
                    self.problems[f"action:{name}:start"] = str(e)
        try:
            self._start_actions(built, reloading=True)
            self._start_sources()
        except Exception as e:
            log.error("reload: %s", e)
            self.problems["reload"] = str(e)
        log.info("configuration %s reloaded; failure counts of %d addresses kept", new.path, kept)

    def _reopen_changed_journals(self, new: Config, filters: list[Filter]) -> None:
        """A kept journal source reads only the entries its filters' journal matches select:
        when the new filters want others, it is reopened with them where it stood."""
        from logban.sources.journal import journal_matches

        want = list(dict.fromkeys(journal_matches(filters)))
        for sc in new.sources:
            sid = source_id(sc)
            old = self.sources.get(sid)
            if sc.kind != "journal" or old is None or getattr(old, "matches", want) == want:
                continue
            cp = old.checkpoint()
            if cp is None and sc.start_at == "end":
                cp = {"realtime": int(self.started * 1_000_000)}
            self._resume[sid] = cp
            try:
                self.sources.pop(sid).stop()
            except Exception as e:
                log.error("stopping %s: %s", sid, e)
            log.info("%s: journal matches changed, reopened at its position", sid)

    def _signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self.reload_requested = True
        else:
            self.stop_requested = True
        self.wake_event.set()

    def run(self) -> int:
        now = time.time()
        try:
            saved = self.state.active_bans(now)
        except Exception as e:
            self._state_problem(e)
            saved = []
        usable: list[BanRecord] = []
        unusable: list[BanRecord] = []
        for r in saved:
            (usable if canonical(r.address) == r.address else unusable).append(r)
        saved = usable
        if unusable:
            # Saved by an older logban (0.0.0.0, a multicast address): the kernel set refuses
            # them, and one such entry would fail every refill of the set.
            for r in unusable:
                log.error("saved ban of %r (jail %s) is no client address; dropped", r.address, r.jail)
            try:
                self.state.commit([], [(r.address, r.jail) for r in unusable], {}, now)
            except Exception as e:
                self._state_problem(e)
        for rec in saved:
            self._put(rec)
        self._start_actions()
        log.info("%d saved bans restored to the kernel", len(saved))
        try:
            restored = self.pipe.tracker.restore(self.state.load_pending())
            if restored:
                log.info("%d addresses' pending failures restored", restored)
        except Exception as e:
            self._state_problem(e)
        self._start_sources()
        control = None
        if not self.once:
            control = ControlServer(self.cfg.socket, self.requests, self.wake)
            control.start()
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(s, self._signal)
        sdnotify.notify("READY=1\nSTATUS=" + self.status_line())
        wd = self.wd_interval
        last_check = last_own = time.monotonic()
        try:
            while not self.stop_requested:
                self.wake_event.clear()
                got = self._read_sources()
                while True:
                    try:
                        self._handle(self.requests.get_nowait())
                    except queue.Empty:
                        break
                now = time.time()
                self._expire_bans(now)
                self._commit(lazy=True)
                mono = time.monotonic()
                if mono - last_check >= CHECK_EVERY:
                    last_check = mono
                    self._periodic(now)
                    sdnotify.notify("STATUS=" + self.status_line())
                if self.pipe.cfg.ignore_self and mono - last_own >= OWN_ADDRESSES_EVERY:
                    last_own = mono
                    for a in own_addresses() - self.own:
                        self.own.add(a)
                        self.pipe.ignore.add(ipaddress.ip_network(a))
                if wd and mono - self.last_wd >= wd:
                    self.last_wd = mono
                    sdnotify.notify("WATCHDOG=1")
                if self.reload_requested:
                    self.reload_requested = False
                    self.reload()
                if self.once and not got:
                    break
                if got:
                    continue  # more may be waiting: read again before sleeping
                timeout = min(1.0, wd) if wd else 1.0
                if self._commit_waiting:
                    timeout = min(timeout, max(0.0, self._next_commit - time.monotonic()))
                if self.expiry_heap:
                    timeout = max(0.0, min(timeout, self.expiry_heap[0][0] - time.time()))
                self.wake_event.wait(timeout)
        finally:
            sdnotify.notify("STOPPING=1")
            if self.stop_requested:
                log.info("stopping: the bans of %d addresses stay in the kernel until their "
                         "timeouts", len({a for a, _ in self.bans}))
            self._commit()
            if self.state_ok:
                try:
                    self.state.save_pending(self.pipe.tracker.pending())
                except Exception as e:
                    log.error("could not save pending failures to %s: %s", self.state.path, e)
            for src in self.sources.values():
                try:
                    src.stop()
                except Exception:
                    pass
            if control:
                control.stop()
            for action in self.actions.values():
                try:
                    action.stop()
                except Exception:
                    pass
            self.state.close()
            if self.stop_requested:
                log.info("stopped")
        return 0

    def _periodic(self, now: float) -> None:
        if self.state_ok:
            try:
                self.state.drop_expired(now)  # the history table keeps what repeat bans need
            except Exception as e:
                self._state_problem(e)
        tracker = self.pipe.tracker
        tracker.expire()
        if len(self.sources) < len(self.cfg.sources):
            self._start_sources()  # those that could not be opened yet
        if self.state_ok and tracker.latest:
            window = max(j.findtime for j in self.cfg.jails.values())
            try:
                self.state.drop_stale_pending(tracker.horizon() - window)
            except Exception as e:
                self._state_problem(e)
        for name, a in self.actions.items():
            try:
                problems = a.check(self._kernel_bans(name), now)
            except Exception as e:
                problems = [f"{name}: check failed: {e}"]
            keys = [k for k in self.problems if k.startswith(f"action:{name}:")]
            for k in keys:
                del self.problems[k]
            for i, p in enumerate(problems):
                if f"action:{name}:{i}" not in self.problems:
                    log.error("%s", p)
                self.problems[f"action:{name}:{i}"] = p
        if not self.state_ok:
            self._commit()
