"""Every meter thread follows one lifecycle: nothing is lost to fork, close or exit (``meter.lifecycle``).

Each case runs in a fresh interpreter, as an application would: a ``Meter`` with a ledger built
before ``os.fork()`` (gunicorn ``--preload``, multiprocessing fork pools), calls finished after
``Meter.close()``, interpreter exit with streams still open and with records still queued for a
``QueuedSubscriber``. The ledgers are real: a SQLite file and a real PostgreSQL server. Before the
lifecycle, these lost 15 of 16 rows to fork (and each child waited 5 s at exit), wrote 0 of 3 rows for
the open streams, delivered 0 of 50 queued records, and counted nothing of what they lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.support.ledgers import query
from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"

PRELUDE = textwrap.dedent(f"""
    import json, os, sys, time
    import httpx2, meter
    from prometheus_client import CollectorRegistry
    from tests.ledger.test_sqlite_ledger import azure

    def client(m):
        return httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))

    def call(c):
        c.post("{URL}", json={{"messages": []}})
""")


def _run(code: str, *args: str, timeout: float = 120) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, time.monotonic() - started


def _count(ledger: str, sql: str = "SELECT count(*), count(DISTINCT id) FROM calls") -> tuple[Any, ...]:
    return query(ledger, sql)[0]


FORK = """
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=sys.argv[1])
    c = client(m)
    call(c)  # the parent writes first: its writer thread runs (and holds its connection) when it forks
    m.flush()
    m.ledger.flush()
    call(c)  # and one record may still be queued in the parent at the fork
    children = {}
    for _ in range(4):
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            for _ in range(4):
                call(c)
            sys.exit(0)  # a normal exit: the exit hook writes the child's own records
        children[pid] = started
    took = []
    for pid, started in children.items():
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        took.append(time.monotonic() - started)
    call(c)  # the parent's connection still works after its children exited
    assert m.close()
    print(json.dumps({"written": m.ledger.written, "child_seconds": max(took), "faults": dict(m.faults)}))
"""


def test_a_meter_built_before_fork_writes_every_call_of_the_parent_and_four_children(ledger_url: str) -> None:
    ledger = ledger_url
    out, _ = _run(FORK, ledger)
    result = json.loads(out)
    assert _count(ledger) == (3 + 16, 3 + 16), "every call once: the parent's 3 and 4 children x 4"
    assert result["written"] == 3 and result["faults"] == {}  # the parent wrote only its own
    assert result["child_seconds"] < 3, "a child must not wait at exit for the parent's queue"


POOL = """
    import multiprocessing

    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=sys.argv[1])
    c = client(m)
    call(c)

    def work(_):
        call(c)
        return os.getpid()

    with multiprocessing.get_context("fork").Pool(4) as pool:
        pids = set(pool.map(work, range(16), chunksize=1))
        pool.close()
        pool.join()
    assert m.close()
    print(json.dumps({"workers": len(pids)}))
"""


def test_a_multiprocessing_fork_pool_writes_every_call(ledger_url: str) -> None:
    ledger = ledger_url
    """Pool workers end with ``os._exit`` (no atexit): meter drains them through multiprocessing's own exit."""
    _run(POOL, ledger)
    assert _count(ledger) == (17, 17)


CLOSE = """
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=sys.argv[1])
    c = client(m)
    call(c)
    assert m.close() and m.close()  # closing twice is fine
    for _ in range(4):
        call(c)  # finished after close: not written, and counted
    assert m.close()
    print(json.dumps({"faults": dict(m.faults), "written": m.ledger.written, "dropped": m.ledger.dropped}))
"""


def test_calls_after_close_are_counted_never_silently_lost(ledger_url: str) -> None:
    ledger = ledger_url
    out, _ = _run(CLOSE, ledger)
    result = json.loads(out)
    assert _count(ledger)[0] == 1 == result["written"]
    assert result["faults"] == {"ledger_after_close": 4} and result["dropped"] == 4


OPEN_STREAMS = """
    from meter.apps.emulator import Emulator

    seen = []
    delivered = open(sys.argv[2], "a")

    def slow(record):
        time.sleep(0.002)
        delivered.write(record.outcome + "\\n")
        delivered.flush()

    queued = meter.QueuedSubscriber(slow, maxsize=1000)
    m = meter.Meter(ledger=sys.argv[1], otel=False, registry=CollectorRegistry(), on_record=[seen.append, queued])
    emulator = Emulator().start()
    c = httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), meter=m))
    streams = []
    for _ in range(3):
        request = c.build_request(
            "POST", f"{emulator.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
            headers={"api-key": emulator.config.api_key},
            json={"messages": [{"role": "user", "content": "hi"}], "stream": True})
        response = c.send(request, stream=True)
        chunks = response.iter_raw()
        next(chunks)
        streams.append((response, chunks))  # still open at exit: the program never read them to the end
    for _ in range(50):
        call(client(m))  # 50 records queued for the slow subscriber at exit
    assert m.flush()  # every ended call's record handed out (the slow subscriber's queue still holds them)
    print(json.dumps({"records": len(seen)}), flush=True)
"""


def test_exit_with_open_streams_and_queued_records_writes_and_delivers_them_all(tmp_path: Path) -> None:
    ledger, delivered = str(tmp_path / "meter.sqlite"), tmp_path / "delivered.txt"
    out, _ = _run(OPEN_STREAMS, ledger, str(delivered))
    assert json.loads(out)["records"] == 50  # the streams were still open when the program ended
    assert _count(ledger, "SELECT count(*), sum(outcome = 'aborted') FROM calls") == (53, 3)
    lines = delivered.read_text().splitlines()
    assert len(lines) == 53 and lines.count("aborted") == 3


LATE_CALL = """
    import atexit

    delivered = open(sys.argv[2], "a")
    m = meter.Meter(ledger=sys.argv[1], otel=False, registry=CollectorRegistry(),
                    on_record=lambda record: (delivered.write(record.outcome + "\\n"), delivered.flush()))
    c = client(m)
    # Registered before the metering thread starts (and with it any finaliser it registers): at exit this runs
    # after those finalisers and before meter's own drain, as a daemon thread's call ending at exit would.
    atexit.register(lambda: call(c))
    call(c)
"""


def test_a_call_ending_at_exit_after_the_finalisers_is_still_delivered_and_written(tmp_path: Path) -> None:
    """The metering worker's finaliser (a dropped Meter stops its thread) ran at exit too, before meter's exit
    drain: a call ending between the two queued its jobs behind the stop, and its record was lost, uncounted."""
    ledger, delivered = str(tmp_path / "meter.sqlite"), tmp_path / "delivered.txt"
    _run(LATE_CALL, ledger, str(delivered))
    assert delivered.read_text().splitlines() == ["ok", "ok"]
    assert _count(ledger) == (2, 2)


NEW_SQLITE = """
    from pathlib import Path

    path, folder = sys.argv[1], Path(sys.argv[2])
    (folder / f"ready-{os.getpid()}").touch()
    while not (folder / "go").exists():  # every interpreter has started: they open the ledger at one moment
        time.sleep(0.0005)
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=path)
    c = client(m)
    for _ in range(5):
        call(c)
    assert m.close()
"""


def test_sixteen_processes_opening_a_new_sqlite_ledger_at_once(tmp_path: Path) -> None:
    """The schema is made once, under the file's write lock; before, 4 to 15 of 16 failed at start
    (``UNIQUE constraint failed: meta.key``, ``database is locked``)."""
    for attempt in range(3):  # three new ledgers: a race lost once in three is still lost
        folder = tmp_path / f"round{attempt}"
        folder.mkdir()
        path = str(folder / "new.sqlite")
        procs = [subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(NEW_SQLITE), path, str(folder)],
                                  cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(16)]
        deadline = time.monotonic() + 60
        while len(list(folder.glob("ready-*"))) < 16 and time.monotonic() < deadline:
            time.sleep(0.01)
        (folder / "go").touch()
        failures = []
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                failures.append(err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}")
        assert failures == []
        assert _count(path) == (80, 80)
        assert _count(path, "SELECT count(*) FROM meta") == (1,)


def test_a_partition_pruned_under_a_running_writer_is_made_again(pg_database: str, pg: PostgresServer,
                                                                 tmp_path: Path) -> None:
    """``meter ledger prune`` over the current month drops the partition a writer remembers it made."""
    import httpx2
    from prometheus_client import CollectorRegistry

    import meter
    from tests.ledger.test_sqlite_ledger import azure

    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=pg_database)
    c = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    c.post(URL, json={"messages": []})
    assert m.flush()
    assert m.ledger is not None and m.ledger.flush()
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86_400 * 40))
    pruned = subprocess.run([sys.executable, "-m", "meter", "ledger", "prune", "--ledger", pg_database,
                             "--before", tomorrow], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert pruned.returncode == 0, pruned.stderr
    assert _count(pg_database, "SELECT count(*) FROM calls") == (0,)
    for _ in range(5):
        c.post(URL, json={"messages": []})
    assert m.close()
    assert m.ledger.written == 6 and m.faults == {}
    assert _count(pg_database, "SELECT count(*) FROM calls") == (5,)
