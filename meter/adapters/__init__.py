"""Adapters between the HTTP stacks (httpx, httpx2; sync, async) and the pure core.

The stacks share one transport interface, so the transports themselves are
written once (``transport.py``). What differs is only the base class the
response stream must have (each client asserts ``isinstance`` on its own
``SyncByteStream`` / ``AsyncByteStream``): ``streams.py`` holds the logic once
and ``_httpx.py`` / ``_httpx2.py`` bind it to each stack's bases.
"""
