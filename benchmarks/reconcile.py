"""``meter reconcile`` on a large export: rows per second read, and the memory it takes.

A month of a large tenant is millions of rows. The file is written here in the EA
cost-details columns (gzip, as Azure exports it): ``rows`` rows over 30 days, 50 resources
and the meters of four models, plus rows of other services. The reader runs in a fresh
process so its peak resident memory (``ru_maxrss``) is its own; the figure to read is that
it does not grow with the rows (``rows`` 100,000 against 1,000,000).
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

METERS = ("gpt-4o-mini-0718-Inp-glbl Tokens", "gpt-4o-mini-0718-Outp-glbl Tokens", "GPT 5 Inpt Glbl 1M Tokens",
          "GPT 5 outpt Glbl 1M Tokens", "o4-mini 0416 Inp Data Zone Tokens", "text-embedding-3-small-regional Tokens")
COLUMNS = ("SubscriptionId", "ResourceGroup", "ResourceLocation", "Date", "ProductName", "MeterCategory",
           "MeterSubCategory", "MeterId", "MeterName", "MeterRegion", "UnitOfMeasure", "Quantity", "EffectivePrice",
           "CostInBillingCurrency", "BillingCurrencyCode", "ResourceId", "ResourceName", "Tags", "ChargeType",
           "PricingModel", "AdditionalInfo")


def write(path: Path, rows: int) -> None:
    with gzip.open(path, "wt", newline="", encoding="utf-8", compresslevel=1) as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for n in range(rows):
            other = n % 10 == 9
            account = f"aoai-{(n // 7) % 50}"
            resource = f"/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/{account}"
            day = f"11/{(n // 353) % 30 + 1:02d}/2026"
            w.writerow(["s", "g", "eastus2", day, "Blob Storage" if other else "Azure OpenAI",
                        "Storage" if other else "Cognitive Services", "Azure OpenAI", "m", METERS[n % len(METERS)],
                        "East US 2", "1K", str(1000 + n % 977), "0.00015", "0.0001500", "USD", resource,
                        account, '{"team": "search"}', "Usage", "OnDemand", ""])


_READ = """
import json, resource, sys, time
from meter.reconcile.billed import combine
from meter.reconcile.exports import read_file
t0 = time.perf_counter()
f = read_file(sys.argv[1])
b = combine([f])
s = time.perf_counter() - t0
print(json.dumps({"seconds": s, "rows": f.rows, "cells": len(b.cells),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(rows: int = 1_000_000) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp())
    out: dict[str, Any] = {}
    for n in sorted({rows // 10, rows}):
        path = folder / f"export-{n}.csv.gz"
        write(path, n)
        done = subprocess.run([sys.executable, "-c", _READ, str(path)], capture_output=True, text=True, check=True,
                              timeout=1800)
        r = json.loads(done.stdout)
        r["rows_per_s"] = r["rows"] / r["seconds"]
        r["file_mb"] = path.stat().st_size / 2**20
        out[str(n)] = r
        path.unlink()
    return out


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
