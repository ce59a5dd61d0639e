"""``SharedBudgets``: a ``BudgetStore`` shared by many processes through a database (the logic; no I/O here).

The database part is a ``SlotBackend`` (``meter.budget_store``: PostgreSQL, or SQLite for one
machine). Per budget and calendar period the database keeps one row (``spent``) and one *lease* per
process (``held``: headroom the process has taken, ``expires_at``). A rolling window (``"24h"``) has one
row too (its key ``rolling:24h``: alerts fired, refusals, the lock) and its spend in time buckets
(``ROLLING_BUCKETS`` to a window, as ``BudgetLedger`` keeps them): its ``spent`` is the sum of the
buckets in the window, which falls as spend leaves it. The rules:

- **Slices.** A hard budget's call is let through from the process's own lease: when the lease's
  free part (``held`` less the calls in flight and the spend not yet written) covers the call's
  worst case, no round-trip is made. Otherwise one transaction (a row lock on the budget's period)
  checks ``spent + the other processes' live leases + this process's calls in flight + the call <=
  limit`` and, if so, sets the lease to cover them plus a *slice* (``slice_fraction`` of the limit,
  at least ``slice_calls`` worst cases), capped at what is left; else the call is refused (and, for
  ``flush_s``, calls as large are refused without asking again). Two
  processes can never both take the last headroom: every take of one budget's period is serialised
  by the row lock (PostgreSQL) or the write lock (SQLite ``BEGIN IMMEDIATE``).
- **Settle** is local: the hold becomes settled spend to write (a rolling window's, in the bucket of
  the instant the call was reserved). A heartbeat (every ``flush_s``) writes it in one transaction per
  tick: ``spent += amount`` and the lease shrinks by as much, guarded by a per-lease sequence number so
  a batch sent again after a lost answer is applied once. The same batch carries the refusals counted
  since, and the lease the process's calls in flight (``in_flight``: what other processes and
  ``meter budgets status`` show as reserved). A lease holding more than two slices free gives the
  surplus back.
- **Leases.** A lease lives ``lease_s`` from its last write; the heartbeat renews it every
  ``lease_s / 3``. A lease that expired counts for nobody: a process that died (SIGKILL) returns its
  headroom after at most ``lease_s``. A process uses its slice only while ``lease_s * 2/3`` have not
  passed since the lease was last confirmed (its own monotonic clock), so it never spends from a
  lease the database may already have expired; a renewal never revives an expired lease.
- **Alerts.** A threshold fires once in all (a calendar period: once per period; a rolling window: once
  per re-arm, when its spend has fallen back below it, as in ``BudgetLedger``): by the process whose
  transaction flips its bit in the period's row (compare-and-set under the row lock, ``fire``), so spend
  settled by several processes fires it once though no process's own settles crossed it. A settle fires
  nothing itself: the alert follows with the transaction that writes the spend, the next heartbeat (up to
  ``flush_s`` later) or a take, and goes to ``on_alert`` outside the lock.
- **The lock.** The heartbeat takes what its transaction needs under the store's lock, lets it go for the
  SQL and applies the answer under it again: calls reserved from a slice and settled meanwhile do not wait
  (their spend goes in the next batch). A lease the transaction shrinks counts as shrunk from the moment
  it is sent (``_Slot.shrink``), and an answer older than a take's applied since is not applied.
- **Database down.** Soft budgets keep counting locally and write what they counted when it is back.
  A hard budget that needs a round-trip does what its ``on_db_down`` says: ``open`` lets the call
  through, held locally and written later (``db_down_calls`` counts them; the hub reports the fault
  ``budget_db_down``), ``closed`` refuses it (reason ``db_down``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol

from meter.budgets.estimate import WorstCase
from meter.budgets.memory import ROLLING_BUCKETS, _amount
from meter.budgets.model import Budget
from meter.budgets.periods import as_utc, period_window
from meter.budgets.store import AlertEvent, BudgetStatus, Refusal, Reservation, ReservationLine, known_cost

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)
ROLLING_KEY = "rolling:"
"""A rolling window's ``period_start`` key is this and the window as written (``rolling:24h``)."""

Mode = Literal["take", "keep", "set"]


def rolling_key(budget: Budget) -> str | None:
    """The key of a rolling budget's row (``rolling:24h``); ``None`` for a calendar budget."""
    return ROLLING_KEY + budget.period if budget.window.kind == "rolling" else None


def reached(alerts: Sequence[Decimal], limit: Decimal, spent: Decimal) -> int:
    """The alert thresholds ``spent`` has reached, one bit each (bit i: ``alerts[i]``)."""
    return sum(1 << i for i, fraction in enumerate(alerts) if spent >= fraction * limit)


def fire(alerts: Sequence[Decimal], limit: Decimal, fired: int, before: Decimal, after: Decimal,
         rolling: bool) -> tuple[int, int]:
    """The period's alert bits after one transaction (``fired`` as it read them, under the row lock), and the
    bits it flipped: the thresholds ``after`` reached that no process had fired. The transaction that flips a
    bit is the one whose process emits the alert, so each fires once over all processes. A rolling window
    first re-arms what its spend had fallen back below (``before``: its spend before this batch)."""
    if rolling:
        fired &= reached(alerts, limit, before)
    won = reached(alerts, limit, after) & ~fired
    return fired | won, won


@dataclass(frozen=True, slots=True)
class BucketSpend:
    """Settled spend of one time bucket of a rolling window (``index``: epoch seconds // the bucket's width)."""

    index: int
    amount: Decimal
    calls: int = 0
    estimated: int = 0
    unpriced: int = 0

    def plus(self, other: BucketSpend) -> BucketSpend:
        return BucketSpend(self.index, self.amount + other.amount, self.calls + other.calls,
                           self.estimated + other.estimated, self.unpriced + other.unpriced)


@dataclass(frozen=True, slots=True)
class Batch:
    """Settled spend of one lease, written once (``seq`` guards a batch sent again)."""

    seq: int
    amount: Decimal
    calls: int
    estimated: int
    unpriced: int
    fired: int
    """Alert bits OR-ed into the period's (a meter that fired alerts at settle wrote them; this one sends 0)."""
    refused: int = 0
    """Calls refused by this budget since the last batch (counted for every process to see)."""
    buckets: tuple[BucketSpend, ...] = ()
    """A rolling window's: the same spend by time bucket."""


@dataclass(frozen=True, slots=True)
class SlotOp:
    """What one sync asks of one budget period: write a batch, then take / keep / set the lease."""

    budget: str
    start: str
    end: str
    limit: Decimal
    mode: Mode
    """``take``: set the lease to ``held`` (capped at the headroom) if ``need`` fits, else refuse; ``keep``:
    renew a live lease at ``held``, never above what it is (an expired one stays expired); ``set``: write
    ``held`` and renew (soft)."""
    held: Decimal
    need: Decimal = _ZERO
    batch: Batch | None = None
    in_flight: Decimal = _ZERO
    """This process's calls in flight in this period (written on the lease, for the others to read)."""
    first_bucket: int | None = None
    """A rolling window: the first bucket in the window now (``spent`` sums from it); ``None``: a calendar period."""
    alerts: tuple[Decimal, ...] = ()
    """The budget's ``alert_at``: the transaction fires those the spend reached and no one had fired (``fire``);
    a rolling window's it has fallen back below are armed again."""


@dataclass(frozen=True, slots=True)
class SlotResult:
    spent: Decimal
    """The period's spent after this transaction (every process's written spend; a rolling window's in it)."""
    others: Decimal
    """The other processes' live leases."""
    held: Decimal
    """This process's lease now (0 when it expired)."""
    granted: bool
    """``take``: the need fitted."""
    fired: int
    """Alert thresholds any process has fired in this period (a rolling window: and not re-armed since)."""
    buckets: tuple[BucketSpend, ...] = ()
    """A rolling window: its buckets from ``first_bucket`` on."""
    won: int = 0
    """The alert bits this transaction flipped: this process emits those alerts (no other process will)."""


@dataclass(frozen=True, slots=True)
class PeriodRow:
    spent: Decimal
    reserved: Decimal
    """The live leases (every process's headroom held)."""
    calls: int
    estimated: int
    unpriced: int
    fired: int
    refused: int = 0
    buckets: tuple[BucketSpend, ...] = ()
    """A rolling window: its stored buckets (the reader keeps those in the window)."""
    in_flight: Decimal = _ZERO
    """The calls in flight of the live leases of the processes other than the reader's (as last written)."""
    seq: int = 0
    """The reader's own lease's last batch applied: its batches numbered above are not in these figures yet."""


class SlotBackend(Protocol):
    """The database part: one transaction per ``sync``; raises on any database error (the store copes)."""

    def sync(self, holder: str, lease_s: float, ops: Sequence[SlotOp]) -> list[SlotResult]: ...

    def read(self, keys: Sequence[tuple[str, str]], holder: str = "") -> list[PeriodRow | None]:
        """Each (budget, period_start)'s row; ``in_flight`` leaves out ``holder``'s own lease."""
        ...

    def close(self) -> None: ...


class _Slot:
    """This process's view of one budget period (a rolling window: of the budget, one slot for all time)."""

    __slots__ = ("batch", "bucket_s", "budget", "db_buckets", "db_spent", "end", "end_key", "estimated",
                 "fired", "held", "inflight", "last_renew", "length", "length_s", "pending", "refused",
                 "refused_amount", "refused_reserved", "refused_until", "rolling", "sent_inflight", "shrink",
                 "start", "start_key", "unpriced", "unsent", "unsent_calls", "unsent_refused", "valid_until",
                 "version", "written")

    def __init__(self, budget: Budget, start: datetime, end: datetime) -> None:
        self.budget = budget
        self.start, self.end = start, end
        key = rolling_key(budget)
        self.rolling = key is not None
        self.start_key, self.end_key = (key, "") if key is not None else (start.isoformat(), end.isoformat())
        self.length = budget.window.length or timedelta(0)
        self.length_s = int(self.length.total_seconds())
        self.bucket_s = max(1, -(-self.length_s // ROLLING_BUCKETS))
        self.held = _ZERO
        self.inflight = _ZERO
        self.sent_inflight = _ZERO
        """The calls in flight the lease last said (the heartbeat writes it again when it has moved)."""
        self.unsent = _ZERO
        self.unsent_calls = self.estimated = self.unpriced = self.unsent_refused = 0
        self.pending: dict[int, BucketSpend] = {}
        """A rolling window's unsent spend by bucket."""
        self.batch: Batch | None = None
        self.db_spent = _ZERO
        self.db_buckets: tuple[BucketSpend, ...] = ()
        self.fired = 0
        self.refused = 0
        self.refused_until = 0.0
        """A take was refused: until then (``flush_s``), a call as large or larger is refused without a round-trip."""
        self.refused_amount = self.refused_reserved = _ZERO
        self.valid_until = 0.0
        self.last_renew = 0.0
        self.shrink: Decimal | None = None
        """The lease a heartbeat sent (its batch spent) while its answer is not applied: the slice counts as that
        small already, as the database may have it (kept after a failure: the answer may have been lost)."""
        self.version = 0
        """Answers applied: a heartbeat's answer is applied only if no take's was since it was sent."""
        self.written: deque[Batch] = deque(maxlen=16)
        """The last batches an answer confirmed: ``status`` reads the database without the lock, and counts
        those (and the one in flight) the row it read did not have yet (``PeriodRow.seq``)."""

    @property
    def written_later(self) -> Decimal:
        return self.unsent + (self.batch.amount if self.batch else _ZERO)

    @property
    def free(self) -> Decimal:
        free = self.held - self.inflight - self.written_later
        if self.shrink is not None:  # the lease once the transaction in flight is applied (its batch spent)
            free = min(free, self.shrink - self.inflight - self.unsent)
        return free

    def refuse(self) -> None:
        self.refused += 1
        self.unsent_refused += 1

    # ---- a rolling window's buckets ----------------------------------------------------------

    def bucket_of(self, at: datetime) -> int:
        return math.floor(at.timestamp()) // self.bucket_s

    def first_bucket(self, now: datetime) -> int | None:
        """The bucket the window ``(now - length, now]`` begins in (it counts whole); ``None``: a calendar period."""
        return (math.floor(now.timestamp()) - self.length_s) // self.bucket_s if self.rolling else None

    def local_buckets(self) -> list[BucketSpend]:
        return [*self.pending.values(), *(self.batch.buckets if self.batch else ())]

    def db_spent_at(self, now: datetime) -> Decimal:
        first = self.first_bucket(now)
        if first is None:
            return self.db_spent
        return sum((b.amount for b in self.db_buckets if b.index >= first), _ZERO)

    def spent_at(self, now: datetime) -> Decimal:
        """Written spend (as the database last said) and this process's not yet written, in the period at ``now``."""
        first = self.first_bucket(now)
        if first is None:
            return self.db_spent + self.written_later
        return self.db_spent_at(now) + sum((b.amount for b in self.local_buckets() if b.index >= first), _ZERO)

    def reset_at(self, now: datetime, buckets: Iterable[BucketSpend] | None = None) -> datetime:
        """A calendar period's end; a rolling window's: when its oldest spend leaves it (``now`` if none)."""
        first = self.first_bucket(now)
        if first is None:
            return self.end
        kept = [b.index for b in (buckets if buckets is not None else (*self.db_buckets, *self.local_buckets()))
                if b.index >= first]
        return _EPOCH + timedelta(seconds=(min(kept) + 1) * self.bucket_s) + self.length if kept else now

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        if not self.rolling:
            return self.start, self.end
        try:
            return now - self.length, now
        except OverflowError:
            return _MIN, now

    def cut_batch(self, seq: Callable[[], int]) -> Batch | None:
        """Move the unsent spend into the batch to send (a batch not yet confirmed is sent again, unchanged)."""
        if self.batch is None and (self.unsent or self.unsent_calls or self.unsent_refused):
            self.batch = Batch(seq(), self.unsent, self.unsent_calls, self.estimated, self.unpriced, 0,
                               self.unsent_refused, tuple(self.pending[i] for i in sorted(self.pending)))
            self.unsent, self.unsent_calls, self.estimated, self.unpriced, self.unsent_refused = _ZERO, 0, 0, 0, 0
            self.pending = {}
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
        self._tx = threading.Lock()
        """One transaction at a time, in the order their ops were made (a take waits for the heartbeat's)."""
        self.on_alert: Callable[[AlertEvent], None] | None = None
        """Called with each alert this process fires (a transaction of its flipped the threshold's bit), outside
        the store's lock: on the heartbeat's thread, or in ``reserve`` when a take fired it."""
        self._alerts: list[AlertEvent] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count(int(time.time() * 1000) * 1000)
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._current: dict[str, _Slot] = {}
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
        start, end = (_MIN, _MAX) if budget.window.kind == "rolling" else period_window(budget.window, when)
        key = (budget.name, rolling_key(budget) or start.isoformat())
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(budget, start, end)
        if budget.name not in self._current or self._current[budget.name].start < start:
            self._current[budget.name] = slot
        return slot

    def slice_usd(self, budget: Budget, amount: Decimal) -> Decimal:
        """The headroom a take asks for beyond what it needs: ``slice_fraction`` of the limit, at least
        ``slice_calls`` worst cases of the call that asked."""
        return max(budget.limit_usd * self.slice_fraction, amount * self.slice_calls)

    def _op(self, slot: _Slot, mode: Mode, held: Decimal, now: datetime, *, need: Decimal = _ZERO,
            batch: Batch | None = None, in_flight: Decimal | None = None) -> SlotOp:
        budget = slot.budget
        flying = slot.inflight if in_flight is None else in_flight
        return SlotOp(budget.name, slot.start_key, slot.end_key, budget.limit_usd, mode, held, need, batch,
                      flying if flying else _ZERO, slot.first_bucket(now), budget.alert_at)

    def _deliver(self) -> None:
        """Give the alerts fired to ``on_alert`` (outside the store's lock; one that raises loses no other)."""
        with self._lock:
            events, self._alerts = self._alerts, []
        if self.on_alert is not None:
            for event in events:
                with contextlib.suppress(Exception):
                    self.on_alert(event)

    def _send(self, ops: Sequence[SlotOp]) -> list[SlotResult]:
        """One transaction (the caller holds ``_tx``); raises when the database cannot be reached (then no try
        for ``retry_s``)."""
        if self._mono() < self._down_until:
            raise ConnectionError("the budget database was unreachable moments ago")
        self.round_trips += 1
        try:
            return self.backend.sync(self.holder, self.lease_s, ops)
        except Exception:
            self.db_errors += 1
            self._down_until = self._mono() + self.retry_s
            raise

    def _apply(self, slot: _Slot, op: SlotOp, result: SlotResult, sent_at: float, now: datetime,
               version: int | None = None) -> None:
        """Apply one answer (``version``: the slot's when a heartbeat sent it; a take's applied since: stale, only
        its batch and its alerts count)."""
        if op.batch is not None and slot.batch is op.batch:
            slot.batch = None
            slot.written.append(op.batch)
        budget = slot.budget
        start, end = slot.bounds(now)
        for i, fraction in enumerate(budget.alert_at):
            if result.won >> i & 1:
                self._alerts.append(AlertEvent(budget.name, fraction, result.spent, budget.limit_usd, start, end, now))
        if version is not None and version != slot.version:
            return
        slot.version += 1
        slot.shrink = None
        slot.held = result.held
        slot.db_spent = result.spent
        slot.sent_inflight = op.in_flight
        slot.fired = result.fired
        if slot.rolling:
            slot.db_buckets = result.buckets
        if result.held > 0 and (op.mode != "take" or result.granted):
            slot.valid_until = sent_at + self.lease_s * 2 / 3
            slot.last_renew = sent_at
        elif result.held == 0:
            slot.valid_until = 0.0

    # ---- BudgetStore ---------------------------------------------------------------------------

    def reserve(self, call: str, budgets: Sequence[Budget], worst_case: WorstCase | Decimal, *,
                at: datetime | None = None) -> Reservation | Refusal:
        try:
            return self._reserve(call, budgets, worst_case, at)
        finally:
            if self._alerts:  # a take's transaction fired them
                self._deliver()

    def _reserve(self, call: str, budgets: Sequence[Budget], worst_case: WorstCase | Decimal,
                 at: datetime | None) -> Reservation | Refusal:
        usd, unpriced = _amount(worst_case)
        with self._lock:
            now = self._clock()
            when = now if at is None else as_utc(at)
            lines: list[ReservationLine] = []
            handles: list[_Slot] = []
            for budget in budgets:
                slot = self._slot(budget, when)
                amount = usd
                unpriced_line = False
                if unpriced is not None:
                    if budget.unpriced_usd is not None:
                        amount = usd + budget.unpriced_usd
                    elif budget.hard:
                        slot.refuse()
                        return Refusal(budget, "unpriced", slot.reset_at(when), slot.db_spent_at(when), slot.inflight,
                                       None, when, unpriced)
                    else:
                        unpriced_line = True
                if budget.hard:
                    refusal = self._cover(slot, amount, when)
                    if refusal is not None:
                        return refusal
                lines.append(ReservationLine(budget, amount, unpriced_line, *slot.bounds(when)))
                handles.append(slot)
            for line, handle in zip(lines, handles, strict=True):
                handle.inflight += line.amount
            return Reservation(next(self._ids), call, when, usd, unpriced, tuple(lines), tuple(handles))

    def _cover(self, slot: _Slot, amount: Decimal, when: datetime) -> Refusal | None:
        """Make the process's lease cover ``amount`` more (a take when the slice does not), or refuse."""
        sent_at = self._mono()
        if slot.free >= amount and sent_at < slot.valid_until:
            return None
        budget = slot.budget
        if sent_at < slot.refused_until and amount >= slot.refused_amount:  # refused moments ago: no round-trip
            slot.refuse()
            return Refusal(budget, "limit", slot.reset_at(when), slot.db_spent_at(when), slot.refused_reserved,
                           amount, when)
        batch = slot.cut_batch(lambda: next(self._seq))
        need = slot.inflight + slot.unsent + amount  # the batch becomes spent in the same transaction
        op = self._op(slot, "take", need + self.slice_usd(budget, amount), when, need=need, batch=batch,
                      in_flight=slot.inflight + amount)
        try:
            with self._tx:  # after a heartbeat's transaction in flight (its op was made first)
                (result,) = self._send([op])
        except Exception as exc:
            self.db_down_calls += 1
            if self._on_db_down is not None:
                self._on_db_down(budget, exc)
            if budget.on_db_down == "closed":
                slot.refuse()
                return Refusal(budget, "db_down", when + timedelta(seconds=self.retry_s), slot.db_spent_at(when),
                               slot.inflight, amount, when)
            return None  # open: through, held locally; written when the database is back
        self._apply(slot, op, result, sent_at, when)
        if not result.granted:
            slot.refused_until, slot.refused_amount = sent_at + self.flush_s, amount
            slot.refused_reserved = result.others + slot.inflight
            slot.refuse()
            return Refusal(budget, "limit", slot.reset_at(when), result.spent, result.others + slot.inflight, amount,
                           when)
        return None

    def settle(self, reservation: Reservation, actual: Decimal | None, *,
               at: datetime | None = None) -> tuple[AlertEvent, ...]:
        """Make the hold spend to write; returns no alert: the transaction that writes it fires them (``on_alert``)."""
        actual = known_cost(actual)
        with self._lock:
            if not reservation.pending:
                return ()
            reservation.pending = False
            for line, handle in zip(reservation.lines, reservation.handles, strict=True):
                assert isinstance(handle, _Slot)
                slot = handle
                slot.inflight -= line.amount
                charge = actual if actual is not None else line.amount
                estimated = unpriced = 0
                if actual is None:
                    if line.unpriced:
                        unpriced = 1
                    else:
                        estimated = 1
                slot.estimated += estimated
                slot.unpriced += unpriced
                if slot.rolling:
                    index = slot.bucket_of(reservation.at)
                    spend = BucketSpend(index, charge, 1, estimated, unpriced)
                    before = slot.pending.get(index)
                    slot.pending[index] = spend if before is None else before.plus(spend)
                slot.unsent += charge
                slot.unsent_calls += 1
        return ()

    def release(self, reservation: Reservation, *, at: datetime | None = None) -> tuple[AlertEvent, ...]:
        return self.settle(reservation, None, at=at)

    def status(self, at: datetime | None = None, *, strict: bool = False,
               in_flight: bool = False) -> list[BudgetStatus]:
        """Every budget in its current period: the database's numbers (all processes: spend, calls, refusals)
        plus this process's not yet written; this process's numbers alone while the database is down
        (``strict``: raise instead, as ``meter budgets status`` does). ``reserved`` is every live lease (the
        headroom the processes hold, at least this process's calls in flight); ``in_flight``: the calls in
        flight of every live lease instead (the others' as their heartbeats last wrote them). The database is
        read without the store's lock: the batches the row read does not have yet are counted from here."""
        with self._lock:
            now = self._clock() if at is None else as_utc(at)
            slots = [self._slot(b, now) for b in self.budgets]
        try:
            rows = self._read([(s.budget.name, s.start_key) for s in slots])
        except Exception:
            if strict:
                raise
            rows = [None] * len(slots)
        with self._lock:
            return [self._status(slot, row, now, in_flight) for slot, row in zip(slots, rows, strict=True)]

    def _read(self, keys: list[tuple[str, str]]) -> list[PeriodRow | None]:
        if self._mono() < self._down_until:
            raise ConnectionError("the budget database was unreachable moments ago")
        return self.backend.read(keys, self.holder)

    def _status(self, slot: _Slot, row: PeriodRow | None, now: datetime, in_flight: bool) -> BudgetStatus:
        budget = slot.budget
        if row is None:  # the database cannot be read: what this process knows
            batches = [slot.batch] if slot.batch else []
            base = PeriodRow(slot.db_spent, slot.held if budget.hard else _ZERO, 0, 0, 0, slot.fired, slot.refused,
                             slot.db_buckets)
            refused = slot.refused
        else:  # the batches sent that the row read has not applied (in flight, or confirmed since it was read)
            batches = [b for b in (*slot.written, slot.batch) if b is not None and b.seq > row.seq]
            base = row
            refused = row.refused + slot.unsent_refused + sum(b.refused for b in batches)
        if in_flight:  # the others' calls in flight (as their heartbeats last wrote), and ours
            reserved = base.in_flight + slot.inflight if slot.inflight else base.in_flight
        else:  # the database's reserved is every live lease (this process's covers its calls in flight and more)
            reserved = max(base.reserved, slot.inflight) if budget.hard else base.reserved
        start, end = slot.bounds(now)
        if slot.rolling:
            first, last = slot.first_bucket(now) or 0, slot.bucket_of(now)
            local = [*slot.pending.values(), *(bucket for b in batches for bucket in b.buckets)]
            inside = [b for b in (*base.buckets, *local) if first <= b.index <= last]
            spent = sum((b.amount for b in inside), _ZERO)
            calls = sum(b.calls for b in inside)
            estimated = sum(b.estimated for b in inside)
            unpriced = sum(b.unpriced for b in inside)
            reset = slot.reset_at(now, inside)
            forecast = spent + reserved
        else:
            spent = base.spent + slot.unsent + sum((b.amount for b in batches), _ZERO)
            calls = base.calls + slot.unsent_calls + sum(b.calls for b in batches)
            estimated = base.estimated + slot.estimated + sum(b.estimated for b in batches)
            unpriced = base.unpriced + slot.unpriced + sum(b.unpriced for b in batches)
            reset = slot.end
            forecast = spent + reserved
            elapsed = (now - start) // timedelta(microseconds=1)
            remaining = (end - now) // timedelta(microseconds=1)
            if elapsed > 0 and remaining > 0:
                forecast += spent * remaining / elapsed
        fired = base.fired | slot.fired
        return BudgetStatus(
            name=budget.name, enforce=budget.enforce, period=budget.period, period_start=start,
            period_end=end, reset_at=reset, spent=spent, reserved=reserved, limit=budget.limit_usd,
            forecast=forecast, calls=calls, unpriced_calls=unpriced, estimated_calls=estimated, refused_calls=refused,
            alerts_fired=tuple(f for i, f in enumerate(budget.alert_at) if fired >> i & 1))

    # ---- the heartbeat -------------------------------------------------------------------------

    def sync(self, final: bool = False) -> bool:
        """One heartbeat: write settled spend and refusals, renew leases due, say the calls in flight when they
        moved, give back surplus, forget ended periods, fire the alerts the spend written reached. ``final``:
        give every lease back. Returns whether the database answered (or nothing was due). The store's lock is
        held to make the ops and to apply the answer, not during the transaction."""
        try:
            return self._sync(final)
        finally:
            if self._alerts:
                self._deliver()

    def _sync(self, final: bool) -> bool:
        with self._lock:
            now_mono = self._mono()
            now = self._clock()
            ops: list[tuple[_Slot, SlotOp]] = []
            for key, slot in list(self._slots.items()):
                ended = slot.end <= now
                batch = slot.cut_batch(lambda: next(self._seq))
                budget = slot.budget
                moved = slot.inflight != slot.sent_inflight
                if not budget.hard:
                    held = _ZERO if final else slot.inflight
                    due = now_mono - slot.last_renew >= self.lease_s / 3 and bool(slot.inflight or slot.held)
                    if batch is not None or due or moved or (final and slot.held):
                        ops.append((slot, self._op(slot, "set", held, now, batch=batch)))
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
                if batch is not None or keep != slot.held or (due and slot.held > 0) or (moved and slot.held > 0):
                    ops.append((slot, self._op(slot, "keep", keep, now, batch=batch)))
                    slot.shrink = keep if slot.shrink is None else min(keep, slot.shrink)
                elif ended and not slot.inflight and not committed:
                    self._forget(key, slot)
            if not ops:
                return True
            versions = [slot.version for slot, _ in ops]
            self._tx.acquire()  # never held by a take now: a take holds the store's lock all through
        try:  # the transaction, without the store's lock: calls reserve from their slices and settle meanwhile
            results = self._send([op for _, op in ops])
        except Exception:
            return False  # each ``shrink`` stays: the answer may have been lost after the commit
        finally:
            self._tx.release()
        with self._lock:
            for (slot, op), result, version in zip(ops, results, versions, strict=True):
                self._apply(slot, op, result, now_mono, now, version)
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
