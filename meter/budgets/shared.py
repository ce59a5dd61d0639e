"""``SharedBudgets``: a ``BudgetStore`` shared by many processes through a database (the logic; no I/O here).

The database part is a ``SlotBackend`` (``meter.budget_store``: PostgreSQL, or SQLite for one
machine). Per budget and calendar period the database keeps one row (``spent``) and one *lease* per
process (``held``: headroom the process has taken, ``expires_at``). The rules:

- **Slices.** A hard budget's call is let through from the process's own lease: when the lease's
  free part (``held`` less the calls in flight and the spend not yet written) covers the call's
  worst case, no round-trip is made. Otherwise one transaction (a row lock on the budget's period)
  checks ``spent + the other processes' live leases + this process's calls in flight + the call <=
  limit`` and, if so, sets the lease to cover them plus a *slice* (``slice_fraction`` of the limit,
  at least ``slice_calls`` worst cases), capped at what is left; else the call is refused (and, for
  ``flush_s``, calls as large are refused without asking again). Two
  processes can never both take the last headroom: every take of one budget's period is serialised
  by the row lock (PostgreSQL) or the write lock (SQLite ``BEGIN IMMEDIATE``).
- **Settle** is local: the hold becomes settled spend to write. A heartbeat (every ``flush_s``)
  writes it in one transaction per tick: ``spent += amount`` and the lease shrinks by as much,
  guarded by a per-lease sequence number so a batch sent again after a lost answer is applied once.
  A lease holding more than two slices free gives the surplus back.
- **Leases.** A lease lives ``lease_s`` from its last write; the heartbeat renews it every
  ``lease_s / 3``. A lease that expired counts for nobody: a process that died (SIGKILL) returns its
  headroom after at most ``lease_s``. A process uses its slice only while ``lease_s * 2/3`` have not
  passed since the lease was last confirmed (its own monotonic clock), so it never spends from a
  lease the database may already have expired; a renewal never revives an expired lease.
- **Database down.** Soft budgets keep counting locally and write what they counted when it is back.
  A hard budget that needs a round-trip does what its ``on_db_down`` says: ``open`` lets the call
  through, held locally and written later (``db_down_calls`` counts them; the hub reports the fault
  ``budget_db_down``), ``closed`` refuses it (reason ``db_down``).

Rolling windows (``period = "24h"``) are not shared yet: they are kept per process by a
``BudgetLedger`` inside this store (see ``docs/budgets.md``).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol

from meter.budgets.estimate import WorstCase
from meter.budgets.memory import BudgetLedger, _amount
from meter.budgets.model import Budget
from meter.budgets.periods import as_utc, period_window
from meter.budgets.store import AlertEvent, BudgetStatus, Refusal, Reservation, ReservationLine, known_cost

_ZERO = Decimal(0)

Mode = Literal["take", "keep", "set"]


@dataclass(frozen=True, slots=True)
class Batch:
    """Settled spend of one lease, written once (``seq`` guards a batch sent again)."""

    seq: int
    amount: Decimal
    calls: int
    estimated: int
    unpriced: int
    fired: int


@dataclass(frozen=True, slots=True)
class SlotOp:
    """What one sync asks of one budget period: write a batch, then take / keep / set the lease."""

    budget: str
    start: str
    end: str
    limit: Decimal
    mode: Mode
    """``take``: set the lease to ``held`` (capped at the headroom) if ``need`` fits, else refuse; ``keep``:
    renew a live lease at ``held`` (an expired one stays expired); ``set``: write ``held`` and renew (soft)."""
    held: Decimal
    need: Decimal = _ZERO
    batch: Batch | None = None


@dataclass(frozen=True, slots=True)
class SlotResult:
    spent: Decimal
    """The period's spent after this transaction (every process's written spend)."""
    others: Decimal
    """The other processes' live leases."""
    held: Decimal
    """This process's lease now (0 when it expired)."""
    granted: bool
    """``take``: the need fitted."""
    fired: int
    """Alert thresholds any process has fired in this period."""


@dataclass(frozen=True, slots=True)
class PeriodRow:
    spent: Decimal
    reserved: Decimal
    calls: int
    estimated: int
    unpriced: int
    fired: int


class SlotBackend(Protocol):
    """The database part: one transaction per ``sync``; raises on any database error (the store copes)."""

    def sync(self, holder: str, lease_s: float, ops: Sequence[SlotOp]) -> list[SlotResult]: ...

    def read(self, keys: Sequence[tuple[str, str]]) -> list[PeriodRow | None]: ...

    def close(self) -> None: ...


class _Slot:
    """This process's view of one budget period."""

    __slots__ = ("batch", "budget", "db_spent", "end", "end_key", "estimated", "fired", "held", "inflight",
                 "last_renew", "refused", "refused_amount", "refused_reserved", "refused_until", "start", "start_key",
                 "unpriced", "unsent", "unsent_calls", "valid_until")

    def __init__(self, budget: Budget, start: datetime, end: datetime) -> None:
        self.budget = budget
        self.start, self.end = start, end
        self.start_key, self.end_key = start.isoformat(), end.isoformat()
        self.held = _ZERO
        self.inflight = _ZERO
        self.unsent = _ZERO
        self.unsent_calls = self.estimated = self.unpriced = 0
        self.batch: Batch | None = None
        self.db_spent = _ZERO
        self.fired = 0
        self.refused = 0
        self.refused_until = 0.0
        """A take was refused: until then (``flush_s``), a call as large or larger is refused without a round-trip."""
        self.refused_amount = self.refused_reserved = _ZERO
        self.valid_until = 0.0
        self.last_renew = 0.0

    @property
    def written_later(self) -> Decimal:
        return self.unsent + (self.batch.amount if self.batch else _ZERO)

    @property
    def free(self) -> Decimal:
        return self.held - self.inflight - self.written_later

    def cut_batch(self, seq: Callable[[], int]) -> Batch | None:
        """Move the unsent spend into the batch to send (a batch not yet confirmed is sent again, unchanged)."""
        if self.batch is None and (self.unsent or self.unsent_calls):
            self.batch = Batch(seq(), self.unsent, self.unsent_calls, self.estimated, self.unpriced, self.fired)
            self.unsent, self.unsent_calls, self.estimated, self.unpriced = _ZERO, 0, 0, 0
        return self.batch


class SharedBudgets:
    """The shared ``BudgetStore`` (see the module docstring). ``start()`` runs the heartbeat thread; tests may
    call ``sync()`` themselves instead. ``close()`` writes what is left and gives the leases back."""

    def __init__(self, budgets: Iterable[Budget], backend: SlotBackend, *, lease_s: float = 15.0,
                 flush_s: float = 1.0, slice_fraction: Decimal = Decimal("0.01"), slice_calls: int = 4,
                 retry_s: float = 1.0, clock: Callable[[], datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 on_db_down: Callable[[Budget, BaseException], None] | None = None) -> None:
        self.budgets: tuple[Budget, ...] = tuple(budgets)
        self.backend = backend
        self.holder = uuid.uuid4().hex
        self.lease_s, self.flush_s, self.retry_s = lease_s, flush_s, retry_s
        self.slice_fraction, self.slice_calls = slice_fraction, slice_calls
        self._clock = clock or (lambda: datetime.now(UTC))
        self._mono = monotonic
        self._on_db_down = on_db_down
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._seq = itertools.count(int(time.time() * 1000) * 1000)
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._current: dict[str, _Slot] = {}
        self._rolling = BudgetLedger([b for b in self.budgets if b.window.kind == "rolling"], clock=self._clock)
        self._down_until = 0.0
        self.round_trips = 0
        """Transactions sent to the database (takes and heartbeats)."""
        self.db_down_calls = 0
        """Hard-budget calls decided without the database (let through by ``on_db_down = "open"``, or refused)."""
        self.db_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the local state -----------------------------------------------------------------------

    def _slot(self, budget: Budget, when: datetime) -> _Slot:
        slot = self._current.get(budget.name)
        if slot is not None and slot.start <= when < slot.end:
            return slot
        start, end = period_window(budget.window, when)
        key = (budget.name, start.isoformat())
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(budget, start, end)
        if slot is not None and (budget.name not in self._current or self._current[budget.name].start < start):
            self._current[budget.name] = slot
        return slot

    def slice_usd(self, budget: Budget, amount: Decimal) -> Decimal:
        """The headroom a take asks for beyond what it needs: ``slice_fraction`` of the limit, at least
        ``slice_calls`` worst cases of the call that asked."""
        return max(budget.limit_usd * self.slice_fraction, amount * self.slice_calls)

    def _send(self, ops: Sequence[SlotOp]) -> list[SlotResult]:
        """One transaction; raises when the database cannot be reached (then no try for ``retry_s``)."""
        if self._mono() < self._down_until:
            raise ConnectionError("the budget database was unreachable moments ago")
        self.round_trips += 1
        try:
            return self.backend.sync(self.holder, self.lease_s, ops)
        except Exception:
            self.db_errors += 1
            self._down_until = self._mono() + self.retry_s
            raise

    def _apply(self, slot: _Slot, op: SlotOp, result: SlotResult, sent_at: float) -> None:
        if op.batch is not None and slot.batch is op.batch:
            slot.batch = None
        slot.held = result.held
        slot.db_spent = result.spent
        slot.fired |= result.fired
        if result.held > 0 and (op.mode != "take" or result.granted):
            slot.valid_until = sent_at + self.lease_s * 2 / 3
            slot.last_renew = sent_at
        elif result.held == 0:
            slot.valid_until = 0.0

    # ---- BudgetStore ---------------------------------------------------------------------------

    def reserve(self, call: str, budgets: Sequence[Budget], worst_case: WorstCase | Decimal, *,
                at: datetime | None = None) -> Reservation | Refusal:
        usd, unpriced = _amount(worst_case)
        rolling = [b for b in budgets if b.window.kind == "rolling"]
        with self._lock:
            now = self._clock()
            when = now if at is None else as_utc(at)
            lines: list[ReservationLine] = []
            handles: list[object] = []
            for budget in budgets:
                if budget.window.kind == "rolling":
                    continue
                slot = self._slot(budget, when)
                amount = usd
                unpriced_line = False
                if unpriced is not None:
                    if budget.unpriced_usd is not None:
                        amount = usd + budget.unpriced_usd
                    elif budget.hard:
                        slot.refused += 1
                        return Refusal(budget, "unpriced", slot.end, slot.db_spent, slot.inflight, None, when,
                                       unpriced)
                    else:
                        unpriced_line = True
                if budget.hard:
                    refusal = self._cover(slot, amount, when)
                    if refusal is not None:
                        return refusal
                lines.append(ReservationLine(budget, amount, unpriced_line, slot.start, slot.end))
                handles.append(slot)
            inner: Reservation | None = None
            if rolling:
                held = self._rolling.reserve(call, rolling, worst_case, at=when)
                if isinstance(held, Refusal):
                    return held
                inner = held
            for line, handle in zip(lines, handles, strict=True):
                assert isinstance(handle, _Slot)
                handle.inflight += line.amount
            if inner is not None:  # keep the order the budgets were given in
                by_name = {line.budget.name: (line, handle) for line, handle in zip(lines, handles, strict=True)}
                by_name.update({line.budget.name: (line, inner) for line in inner.lines})
                ordered = [by_name[b.name] for b in budgets]
                lines, handles = [p[0] for p in ordered], [p[1] for p in ordered]
            return Reservation(next(self._ids), call, when, usd, unpriced, tuple(lines), tuple(handles))

    def _cover(self, slot: _Slot, amount: Decimal, when: datetime) -> Refusal | None:
        """Make the process's lease cover ``amount`` more (a take when the slice does not), or refuse."""
        sent_at = self._mono()
        if slot.free >= amount and sent_at < slot.valid_until:
            return None
        budget = slot.budget
        if sent_at < slot.refused_until and amount >= slot.refused_amount:  # refused moments ago: no round-trip
            slot.refused += 1
            return Refusal(budget, "limit", slot.end, slot.db_spent, slot.refused_reserved, amount, when)
        batch = slot.cut_batch(lambda: next(self._seq))
        need = slot.inflight + slot.unsent + amount  # the batch becomes spent in the same transaction
        op = SlotOp(budget.name, slot.start_key, slot.end_key, budget.limit_usd, "take",
                    need + self.slice_usd(budget, amount), need, batch)
        try:
            (result,) = self._send([op])
        except Exception as exc:
            self.db_down_calls += 1
            if self._on_db_down is not None:
                self._on_db_down(budget, exc)
            if budget.on_db_down == "closed":
                slot.refused += 1
                return Refusal(budget, "db_down", when + timedelta(seconds=self.retry_s), slot.db_spent,
                               slot.inflight, amount, when)
            return None  # open: through, held locally; written when the database is back
        self._apply(slot, op, result, sent_at)
        if not result.granted:
            slot.refused_until, slot.refused_amount = sent_at + self.flush_s, amount
            slot.refused_reserved = result.others + slot.inflight
            slot.refused += 1
            return Refusal(budget, "limit", slot.end, result.spent, result.others + slot.inflight, amount, when)
        return None

    def settle(self, reservation: Reservation, actual: Decimal | None, *,
               at: datetime | None = None) -> tuple[AlertEvent, ...]:
        actual = known_cost(actual)
        events: list[AlertEvent] = []
        with self._lock:
            if not reservation.pending:
                return ()
            reservation.pending = False
            now = self._clock() if at is None else as_utc(at)
            inner_done: set[int] = set()
            for line, handle in zip(reservation.lines, reservation.handles, strict=True):
                if isinstance(handle, Reservation):
                    if id(handle) not in inner_done:
                        inner_done.add(id(handle))
                        events.extend(self._rolling.settle(handle, actual, at=at))
                    continue
                assert isinstance(handle, _Slot)
                slot = handle
                slot.inflight -= line.amount
                charge = actual if actual is not None else line.amount
                if actual is None:
                    if line.unpriced:
                        slot.unpriced += 1
                    else:
                        slot.estimated += 1
                slot.unsent += charge
                slot.unsent_calls += 1
                spent, limit = slot.db_spent + slot.written_later, line.budget.limit_usd
                for i, fraction in enumerate(line.budget.alert_at):
                    if not slot.fired >> i & 1 and spent >= fraction * limit:
                        slot.fired |= 1 << i
                        events.append(AlertEvent(line.budget.name, fraction, spent, limit, slot.start, slot.end, now))
        return tuple(events)

    def release(self, reservation: Reservation, *, at: datetime | None = None) -> tuple[AlertEvent, ...]:
        return self.settle(reservation, None, at=at)

    def status(self, at: datetime | None = None) -> list[BudgetStatus]:
        """Every budget in its current period: the database's numbers (all processes) plus this process's
        spend not yet written; this process's numbers alone while the database is down."""
        with self._lock:
            now = self._clock() if at is None else as_utc(at)
            rolling = {s.name: s for s in self._rolling.status(now)}
            calendar = [b for b in self.budgets if b.window.kind != "rolling"]
            slots = [self._slot(b, now) for b in calendar]
            try:
                rows = self._read([(s.budget.name, s.start_key) for s in slots])
            except Exception:
                rows = [None] * len(slots)
            out: dict[str, BudgetStatus] = {}
            for slot, row in zip(slots, rows, strict=True):
                out[slot.budget.name] = self._status(slot, row, now)
            return [rolling[b.name] if b.name in rolling else out[b.name] for b in self.budgets]

    def _read(self, keys: list[tuple[str, str]]) -> list[PeriodRow | None]:
        if self._mono() < self._down_until:
            raise ConnectionError("the budget database was unreachable moments ago")
        return self.backend.read(keys)

    def _status(self, slot: _Slot, row: PeriodRow | None, now: datetime) -> BudgetStatus:
        budget = slot.budget
        base = row or PeriodRow(slot.db_spent, slot.held if slot.budget.hard else _ZERO, 0, 0, 0, slot.fired)
        spent = base.spent + slot.written_later
        # the database's reserved is every live lease (this process's covers its calls in flight and more)
        reserved = max(base.reserved, slot.inflight) if budget.hard else base.reserved
        forecast = spent + reserved
        elapsed = (now - slot.start) // timedelta(microseconds=1)
        remaining = (slot.end - now) // timedelta(microseconds=1)
        if elapsed > 0 and remaining > 0:
            forecast += spent * remaining / elapsed
        pending = (slot.batch.calls if slot.batch else 0) + slot.unsent_calls
        fired = base.fired | slot.fired
        return BudgetStatus(
            name=budget.name, enforce=budget.enforce, period=budget.period, period_start=slot.start,
            period_end=slot.end, reset_at=slot.end, spent=spent, reserved=reserved, limit=budget.limit_usd,
            forecast=forecast, calls=base.calls + pending, unpriced_calls=base.unpriced + slot.unpriced,
            estimated_calls=base.estimated + slot.estimated, refused_calls=slot.refused,
            alerts_fired=tuple(f for i, f in enumerate(budget.alert_at) if fired >> i & 1))

    # ---- the heartbeat -------------------------------------------------------------------------

    def sync(self, final: bool = False) -> bool:
        """One heartbeat: write settled spend, renew leases due, give back surplus, forget ended periods.
        ``final``: give every lease back. Returns whether the database answered (or nothing was due)."""
        with self._lock:
            now_mono = self._mono()
            now = self._clock()
            ops: list[tuple[_Slot, SlotOp]] = []
            for key, slot in list(self._slots.items()):
                ended = slot.end <= now
                batch = slot.cut_batch(lambda: next(self._seq))
                budget = slot.budget
                if not budget.hard:
                    held = _ZERO if final else slot.inflight
                    due = now_mono - slot.last_renew >= self.lease_s / 3 and bool(slot.inflight or slot.held)
                    if batch is not None or due or (final and slot.held):
                        ops.append((slot, SlotOp(budget.name, slot.start_key, slot.end_key, budget.limit_usd, "set",
                                                 held, batch=batch)))
                    elif ended and not slot.inflight and not slot.held:
                        self._forget(key, slot)
                    continue
                committed = slot.inflight + (batch.amount if batch else _ZERO) + slot.unsent
                keep = slot.held - (batch.amount if batch else _ZERO)
                surplus = self.slice_usd(budget, _ZERO) * 2
                if final or ended:
                    keep = min(keep, slot.inflight)
                elif keep - slot.inflight > surplus:
                    keep = slot.inflight + surplus / 2
                keep = max(keep, _ZERO)
                due = now_mono - slot.last_renew >= self.lease_s / 3
                if batch is not None or keep != slot.held or (due and slot.held > 0):
                    ops.append((slot, SlotOp(budget.name, slot.start_key, slot.end_key, budget.limit_usd, "keep",
                                             keep, batch=batch)))
                elif ended and not slot.inflight and not committed:
                    self._forget(key, slot)
            if not ops:
                return True
            try:
                results = self._send([op for _, op in ops])
            except Exception:
                return False
            for (slot, op), result in zip(ops, results, strict=True):
                self._apply(slot, op, result, now_mono)
            return True

    def _forget(self, key: tuple[str, str], slot: _Slot) -> None:
        del self._slots[key]
        if self._current.get(slot.budget.name) is slot:
            del self._current[slot.budget.name]

    def start(self) -> SharedBudgets:
        """Run the heartbeat every ``flush_s`` in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="meter-budgets", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.sync()
            except Exception:  # pragma: no cover - the heartbeat must go on
                self.db_errors += 1

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the heartbeat, write what is left and give the leases back; ``False`` if the database did not
        answer (the leases then expire by themselves)."""
        if self._stop.is_set():
            return True  # closed already (Meter.close, then the end of the process)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._down_until = 0.0
        done = self.sync(final=True)
        self.backend.close()
        return done
