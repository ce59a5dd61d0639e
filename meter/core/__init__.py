"""The pure core: routing, request facts, SSE scanning, usage extraction, the per-call state machine.

No I/O here, and no httpx, OpenTelemetry or Prometheus import: adapters feed it bytes and
headers, the hub (``meter.hub``) receives what it produces.
"""
