"""Sinks: subscribers of a ``Meter`` that turn records into telemetry.

The core never imports them; ``Meter`` builds the ones its configuration asks
for. Each sink is told when a call starts (``start``: spans must begin when the
request is sent, as children of the caller's current span), when it finishes
(``finish``: the one final record), and about metering faults (``fault``).
"""
