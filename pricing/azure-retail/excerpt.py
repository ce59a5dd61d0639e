"""Cut the Azure OpenAI items out of a Retail Prices snapshot, in a stable order.

Reproduces ``2026-08-11-azure-openai.json`` from ``azure_genai_prices/data/snapshot.json``
of the azure-genai-prices 0.2.0 wheel (PyPI, MIT)::

    python -m venv /tmp/agp && /tmp/agp/bin/pip download --no-deps azure-genai-prices==0.2.0 -d /tmp/agp
    unzip -o /tmp/agp/azure_genai_prices-0.2.0-py3-none-any.whl 'azure_genai_prices/data/*' -d /tmp/agp
    python pricing/azure-retail/excerpt.py /tmp/agp/azure_genai_prices/data/snapshot.json \
        > pricing/azure-retail/2026-08-11-azure-openai.json

Only the facts are kept (meter name, product, price, unit, start date, regions);
regions and items are sorted so a new snapshot diffs line by line against the old.
Standard library only: this is a data tool, not part of meter.
"""

from __future__ import annotations

import json
import sys

SOURCE = (
    "Azure Retail Prices API (https://prices.azure.com/api/retail/prices), snapshot bundled in "
    "azure-genai-prices 0.2.0 (PyPI, MIT) as azure_genai_prices/data/snapshot.json; the Azure OpenAI products only"
)


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        snapshot = json.load(f)
    items = [dict(item, regions=sorted(item["regions"])) for item in snapshot["items"]
             if item["productName"].startswith("Azure OpenAI")]
    items.sort(key=lambda i: (i["productName"], i["meterName"], i["effectiveStartDate"], i["regions"]))
    out = sys.stdout
    out.write(f'{{"fetched_at": {json.dumps(snapshot["fetched_at"])},\n "source": {json.dumps(SOURCE)},\n "items": [\n')
    out.write(",\n".join("  " + json.dumps(item, sort_keys=True, separators=(",", ":")) for item in items))
    out.write("\n ]}\n")


if __name__ == "__main__":
    main(sys.argv[1])
