"""Reconciliation of the ledger with Azure's cost exports (``meter reconcile``).

``exports`` reads the files (EA, MCA, FOCUS; CSV or gzip; streamed), ``billed`` turns them into
what was billed per day x resource x model x token class, ``metered`` does the same from the
ledger, and ``explain`` (pure) compares the two and explains each difference.
"""
