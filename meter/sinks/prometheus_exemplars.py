"""Exemplars in multiprocess mode: each worker's latest ones in a small file of its own, merged at scrape.

prometheus-client's multiprocess files (``*.db`` in ``PROMETHEUS_MULTIPROC_DIR``) hold
one float per sample and no exemplar, so meter keeps the exemplars beside them: a worker
keeps the latest exemplar of each counter sample and of each histogram bucket in memory
(the call only replaces a tuple), and one thread of its own rewrites
``meter_exemplars_<pid>.json`` at most every ``FLUSH_INTERVAL_S`` while calls come in
(written to a temporary name, then renamed: a reader sees the old file or the new one,
never half of one). Whatever serves ``/metrics`` reads every worker's file and puts the
latest exemplar of each sample on the sample prometheus-client's ``MultiProcessCollector``
merged (``ExemplarMultiProcessCollector``), so an OpenMetrics scrape carries them as in one
process.

The files are read as untrusted: one that does not parse (torn, foreign, hostile) is
skipped whole, an entry of the wrong shape is skipped alone, an exemplar goes only on a
``_total`` counter sample or a ``_bucket`` whose ``le`` is at least its value, and its trace
id must look like one (so a file cannot break the exposition or smuggle text into it). A
dead worker's file stays, as its counter and histogram files do, until ``mark_process_dead``
(prometheus-client's convention for a process manager's ``child_exit`` hook) removes it.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import re
import stat
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Exemplar

from meter import lifecycle, names

logger = logging.getLogger("meter")

FILE_PREFIX = "meter_exemplars_"
FILE_SUFFIX = ".json"
FLUSH_INTERVAL_S = 0.5
"""A worker rewrites its file at most this often (and only after a call changed an exemplar)."""
MAX_FILE_BYTES = 8 << 20
"""A larger file is not read (a worker's holds one entry per series and bucket it used: kilobytes)."""

Ex = tuple[str, float, float]
"""An exemplar as kept: (trace id, value, unix time)."""
Key = tuple[str, tuple[tuple[str, str], ...]]
"""A sample as the merged collector names it: (sample name, sorted label pairs)."""

_TRACE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_NUMBERS = (int, float)


class Slot:
    """The latest exemplar of one counter sample (``ex`` is replaced whole: readers never see half of one)."""

    __slots__ = ("ex",)

    def __init__(self) -> None:
        self.ex: Ex | None = None


class ExemplarFile:
    """This process's exemplars and the thread that writes them to ``meter_exemplars_<pid>.json``.

    ``counter``/``histogram`` hand out the holders a store's series write into (once per label
    set); ``touched()`` after writing one wakes the writer. A meter lifecycle worker: started by
    the first ``touched()``, flushed and stopped at exit, and afresh (empty, a file of the child's
    own pid) in a forked child.
    """

    def __init__(self, directory: str, interval: float = FLUSH_INTERVAL_S) -> None:
        self.directory = directory
        self.interval = interval
        self._entries: list[tuple[str, tuple[tuple[str, str], ...], Slot | list[Ex | None], tuple[str, ...]]] = []
        self._lock = threading.Lock()
        self._reset()
        lifecycle.register(self)

    def _reset(self) -> None:
        self._dirty = False
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._warned = False
        self.writes = 0

    @property
    def path(self) -> str:
        return os.path.join(self.directory, f"{FILE_PREFIX}{os.getpid()}{FILE_SUFFIX}")

    # -- the holders the stores write into

    def counter(self, name: str, labels: dict[str, str]) -> Slot:
        slot = Slot()
        with self._lock:
            self._entries.append((name, tuple(sorted(labels.items())), slot, ()))
        return slot

    def histogram(self, name: str, labels: dict[str, str], edges: tuple[str, ...]) -> list[Ex | None]:
        """One holder per bucket, in the order of ``edges`` (the ``le`` texts, ``+Inf`` last)."""
        holder: list[Ex | None] = [None] * len(edges)
        with self._lock:
            self._entries.append((name + "_bucket", tuple(sorted(labels.items())), holder, edges))
        return holder

    def touched(self) -> None:
        """An exemplar changed: have it written within ``interval`` (one flag test when already pending)."""
        if self._dirty:
            return
        self._dirty = True
        if self._thread is None:
            self._start()
        self._wake.set()

    # -- the writer thread

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name="meter-exemplars", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        stop, wake = self._stop, self._wake
        while not stop.is_set():
            wake.wait()
            stop.wait(self.interval)  # the calls of the next interval ride along in the same write
            wake.clear()
            self._dirty = False  # cleared before the snapshot: a call after it sets it again
            self.flush()

    def snapshot(self) -> list[list[Any]]:
        """Every exemplar held, as the file's entries:
        ``[sample name, {label: value, ...}, trace id, value, unix time]``."""
        with self._lock:
            entries = list(self._entries)
        out: list[list[Any]] = []
        for name, labels, holder, edges in entries:
            if isinstance(holder, Slot):
                ex = holder.ex
                if ex is not None:
                    out.append([name, dict(labels), *ex])
                continue
            for edge, bucket_ex in zip(edges, list(holder), strict=True):
                if bucket_ex is not None:
                    out.append([name, {**dict(labels), "le": edge}, *bucket_ex])
        return out

    def flush(self) -> None:
        """Rewrite this process's file now (a temporary name, then renamed). Never raises: a worker's calls
        must not fail because the metrics directory did; the first failure is logged."""
        path = self.path
        tmp = f"{path}.tmp"
        try:
            text = json.dumps({"pid": os.getpid(), "exemplars": self.snapshot()}, separators=(",", ":"))
            with open(tmp, "w", encoding="utf-8") as f:  # dumps, not dump: one pass of the C encoder
                f.write(text)
            os.replace(tmp, path)
            self.writes += 1
        except (OSError, ValueError) as exc:
            if not self._warned:
                self._warned = True
                logger.warning("meter: could not write the Prometheus exemplars file %s (%s: %s); exemplars of "
                               "this worker are missing from /metrics until it can", path, type(exc).__name__, exc)
            with contextlib.suppress(OSError):
                os.remove(tmp)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is pending and stop the thread (interpreter exit does this). Closing again does nothing."""
        if self._closed:
            return True
        self._closed = True
        thread = self._thread
        if thread is None:
            return True
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        if self._dirty:
            self.flush()
        return not thread.is_alive()

    def after_fork_in_child(self) -> None:
        """The child writes a file of its own pid, holding only its own calls' exemplars."""
        self._lock = threading.Lock()  # first: another thread may have held the parent's at the fork
        for _, _, holder, _ in self._entries:
            if isinstance(holder, Slot):
                holder.ex = None
            else:
                holder[:] = [None] * len(holder)
        self._reset()


_files: dict[str, ExemplarFile] = {}
_files_lock = threading.Lock()


def exemplar_file(directory: str) -> ExemplarFile:
    """The process's exemplar file for ``directory`` (one for every store, namespace and registry)."""
    with _files_lock:
        found = _files.get(directory)
        if found is None:
            found = _files[directory] = ExemplarFile(directory)
        return found


# -- scrape time ----------------------------------------------------------------------------------


def _entry(raw: Any) -> tuple[Key, Ex] | None:
    """One file entry, checked; None when it is not what a worker writes."""
    if not isinstance(raw, list) or len(raw) != 5:
        return None
    name, labels, trace_id, value, ts = raw
    if type(name) is not str or not name.endswith(("_total", "_bucket")):
        return None
    if type(labels) is not dict or not all(type(v) is str for v in labels.values()):  # JSON keys are strings
        return None
    if type(trace_id) is not str or not _TRACE_ID.fullmatch(trace_id) or type(value) not in _NUMBERS \
            or type(ts) not in _NUMBERS:
        return None
    try:
        value, ts = float(value), float(ts)  # an int past float's range: OverflowError
        if not math.isfinite(value) or not math.isfinite(ts):
            return None
        if name[-7:] == "_bucket":
            le = labels.get("le")
            if le is None or value > float(le):  # an exemplar lies in its bucket: value <= le
                return None
    except (ValueError, OverflowError):
        return None
    return (name, tuple(sorted(labels.items()))), (trace_id, value, ts)


def _read_regular(path: str) -> bytes | None:
    """The bytes of a regular file up to ``MAX_FILE_BYTES``; None for anything else (a FIFO there must not
    hang the scrape: opened without blocking, then checked)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = f.read(MAX_FILE_BYTES + 1)
    return data if len(data) <= MAX_FILE_BYTES else None


def read_exemplars(directory: str) -> dict[Key, Ex]:
    """The latest exemplar of every sample over every worker's file in ``directory``."""
    merged: dict[Key, Ex] = {}
    for path in glob.glob(os.path.join(glob.escape(directory), f"{FILE_PREFIX}*{FILE_SUFFIX}")):
        try:
            data = _read_regular(path)
            if data is None:
                continue
            doc = json.loads(data)
        except (OSError, ValueError, RecursionError):  # gone since the glob (a dead worker's), torn, not JSON
            continue
        entries = doc.get("exemplars") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            continue
        for raw in entries:
            checked = _entry(raw)
            if checked is None:
                continue
            key, ex = checked
            held = merged.get(key)
            if held is None or ex[2] > held[2]:
                merged[key] = ex
    return merged


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Remove a dead worker's exemplar file (prometheus-client's ``mark_process_dead`` does its live gauges)."""
    directory = path if path is not None else os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, f"{FILE_PREFIX}{int(pid)}{FILE_SUFFIX}"))


class ExemplarMultiProcessCollector:
    """prometheus-client's ``MultiProcessCollector``, with every worker's latest exemplars on its samples."""

    def __init__(self, registry: CollectorRegistry | None, path: str | None = None) -> None:
        self._inner = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        self.path: str = self._inner._path
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        exemplars = read_exemplars(self.path)
        metrics: Any = self._inner.collect()  # type: ignore[no-untyped-call]
        wanted = {name for name, _ in exemplars}
        for metric in metrics:
            suffix = "_total" if metric.type == "counter" else "_bucket" if metric.type == "histogram" else None
            if suffix is not None and metric.name + suffix in wanted:
                samples = []
                for sample in metric.samples:
                    ex = exemplars.get((sample.name, tuple(sorted(sample.labels.items())))) \
                        if sample.name == metric.name + suffix else None
                    if ex is not None:
                        sample = sample._replace(exemplar=Exemplar({names.EXEMPLAR_TRACE_ID: ex[0]}, ex[1], ex[2]))
                    samples.append(sample)
                metric.samples = samples
            yield metric
