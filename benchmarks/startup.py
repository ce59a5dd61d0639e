"""Start-up: what ``import meter`` and the first ``Meter()`` cost a process, in time and resident memory.

Measured in fresh interpreters, twice: cold (nothing imported before meter, so meter pays
for prometheus-client, httpx2 and the price tables) and in an application that already
imported the openai SDK (the usual case: the shared libraries are paid for already).
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.subproc import run_python

_CODE = """
    import json, os, time
    {preload}

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    rss0 = rss_mb()
    t0 = time.perf_counter()
    import meter
    t1 = time.perf_counter()
    m = meter.Meter()
    t2 = time.perf_counter()
    print(json.dumps({{"import_s": t1 - t0, "first_meter_s": t2 - t1, "total_s": t2 - t0,
                       "rss_added_mb": rss_mb() - rss0}}))
"""


def measure(repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, preload in (("cold", ""), ("after_openai", "import openai")):
        runs = [run_python(_CODE.format(preload=preload), timeout=120) for _ in range(repeats)]
        out[name] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return out
