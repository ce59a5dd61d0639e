"""Incremental Server-Sent Events framing: bytes in any split -> event data payloads.

Follows the WHATWG framing rules that matter for metering: lines end in CRLF,
LF or CR (also when a CRLF is split across two chunks), a blank line dispatches
the event, ``:`` starts a comment, ``data:`` lines join with ``\\n``. Other
fields (``event:``, ``id:``, ``retry:``) are skipped: meter keys on the JSON
``type``, never on the ``event:`` line.

Only the unfinished line and the unfinished event are kept, so memory is
bounded by the largest single event, not by the length of the stream.
"""

from __future__ import annotations

from collections.abc import Callable

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""An event larger than this is dropped (counted by the caller as a parse fault)."""


class SSEScanner:
    """Feed raw (decoded) bytes; get back the data payloads of completed events."""

    __slots__ = ("_cr", "_data", "_data_size", "_idle", "_pending", "overflowed")

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []
        self._data_size = 0
        self._cr = False
        self._idle = True
        """Nothing pending between events: the one-event-per-chunk fast path applies."""
        self.overflowed = False

    def feed(self, chunk: bytes, on_event: Callable[[bytes], None] | None = None) -> list[bytes]:
        """Scan one chunk; return the payloads of the events it completed, in order.

        With ``on_event``, each payload is handed to it instead (and ``[]`` is
        returned): the hot path then builds no list per chunk.
        """
        # Fast path: the chunk is exactly one whole "data: ...\n\n" event (how servers
        # usually flush), and nothing is pending from earlier chunks.
        if (
            self._idle
            and chunk.startswith(b"data: ")
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk[-1] == 10
            and b"\r" not in chunk
        ):
            if on_event is not None:
                on_event(chunk[6:-2])
                return []
            return [chunk[6:-2]]
        self._idle = False
        if self._cr:
            self._cr = False
            if chunk[:1] == b"\n":  # the LF of a CRLF that the previous chunk split
                chunk = chunk[1:]
        buf = self._pending + chunk if self._pending else chunk
        if not buf:
            self._idle = not self._data and not self._cr
            return []
        lines = buf.splitlines()
        last = buf[-1]
        if last == 10:  # b"\n"
            self._pending = b""
        elif last == 13:  # b"\r": maybe half of a CRLF
            self._pending = b""
            self._cr = True
        else:
            self._pending = lines.pop()
            if len(self._pending) > MAX_EVENT_BYTES:
                self._pending = b""
                self._drop()
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    data = self._data
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    if on_event is not None:
                        on_event(payload)
                    else:
                        events.append(payload)
                    self._data = []
                    self._data_size = 0
            elif line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                self._data.append(value)
                self._data_size += len(value)
                if self._data_size > MAX_EVENT_BYTES:
                    self._drop()
        self._idle = not self._pending and not self._data and not self._cr
        return events

    @property
    def idle(self) -> bool:
        """No unfinished line or event is held: the next bytes start a new event."""
        return self._idle

    def flush(self) -> list[bytes]:
        """End of stream: dispatch a last event that lacked its blank line (lenient)."""
        if self._pending.startswith(b"data:"):
            value = self._pending[6:] if self._pending[5:6] == b" " else self._pending[5:]
            self._data.append(value)
        self._pending = b""
        self._cr = False
        self._idle = True
        if not self._data:
            return []
        data, self._data = self._data, []
        self._data_size = 0
        return [b"\n".join(data)]

    def _drop(self) -> None:
        self._data = []
        self._data_size = 0
        self.overflowed = True
