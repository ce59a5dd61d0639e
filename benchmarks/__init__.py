"""meter's own benchmarks: ``python -m benchmarks`` (``--help`` for the options, ``--quick`` for a smoke run).

Every number is a ratio against the raw transport measured in the same run; see
docs/benchmarks.md for the results and the commands that made them.
"""
