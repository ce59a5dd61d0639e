"""Incremental Server-Sent Events framing: bytes in any split -> event data payloads.

Follows the WHATWG framing rules that matter for metering: lines end in CRLF,
LF or CR (also when a CRLF is split across two chunks), a blank line dispatches
the event, ``:`` starts a comment, ``data:`` lines join with ``\\n``. Other
fields (``event:``, ``id:``, ``retry:``) are skipped: meter keys on the JSON
``type``, never on the ``event:`` line.

Linear in the bytes, whatever the chunking: an unfinished line is kept as the
list of its pieces and joined once when it ends, and each chunk is searched
for line ends from where the last search stopped (re-joining and re-splitting
the unfinished line per chunk made one 10 MB event in 16 KiB chunks cost 2 s).

Memory is bounded by the largest event, up to ``MAX_EVENT_BYTES``. A bigger
event (a ``response.completed`` carrying base64 images) is not kept whole: its
first and last ``KEEP_BYTES`` are, and ``on_oversized(head, tail)`` gets them,
because the type and identity sit at the start of such an event and the usage
near its end. ``overflowed`` counts those events (the caller counts a fault).
"""

from __future__ import annotations

from collections.abc import Callable

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""An event larger than this is not kept whole (see ``on_oversized``)."""
KEEP_BYTES = 256 * 1024
"""How much of the start and of the end of an oversized event is kept."""

_DATA_TAIL = 1
"""The unfinished line is an oversized event's data line: its bytes go to the kept tail."""
_SKIP = 2
"""The unfinished line is an oversized comment or other field: its bytes are dropped."""

Oversized = Callable[[bytes, bytes], None]


class SSEScanner:
    """Feed raw (decoded) bytes; get back the data payloads of completed events."""

    __slots__ = ("_cr", "_data", "_data_size", "_head", "_line", "_line_kind", "_line_size", "_over", "_tail",
                 "idle", "on_oversized", "overflowed")

    def __init__(self, on_oversized: Oversized | None = None) -> None:
        self._line: list[bytes] = []
        """Pieces of the unfinished line (joined once, when it ends)."""
        self._line_size = 0
        self._line_kind = 0
        self._data: list[bytes] = []
        self._data_size = 0
        self._cr = False
        self.idle = True
        """Nothing pending between events: the next bytes start a new event, so the
        one-event-per-chunk fast paths apply. A plain attribute (read per chunk), kept by ``feed``."""
        self._over = False
        """The current event passed ``MAX_EVENT_BYTES``: only its head and tail are kept."""
        self._head = b""
        self._tail = bytearray()
        self.on_oversized = on_oversized
        self.overflowed = 0

    def feed(self, chunk: bytes, on_event: Callable[[bytes], None] | None = None) -> list[bytes]:
        """Scan one chunk; return the payloads of the events it completed, in order.

        With ``on_event``, each payload is handed to it instead (and ``[]`` is
        returned): the hot path then builds no list per chunk.
        """
        # Fast path: the chunk is exactly one whole "data: ...\n\n" event (how servers
        # usually flush), and nothing is pending from earlier chunks.
        if (
            self.idle
            and chunk.startswith(b"data: ")
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk[-1] == 10
            and b"\r" not in chunk
        ):
            if on_event is not None:
                on_event(chunk[6:-2])
                return []
            return [chunk[6:-2]]
        events: list[bytes] = []
        emit = on_event if on_event is not None else events.append
        self.idle = False
        n = len(chunk)
        pos = 0
        if self._cr:
            self._cr = False
            if n and chunk[0] == 10:  # the LF of a CRLF that the previous chunk split
                pos = 1
        nl = chunk.find(b"\n", pos)
        cr = chunk.find(b"\r", pos)
        while nl >= 0 or cr >= 0:
            end = nl if cr < 0 or 0 <= nl < cr else cr
            self._line_end(chunk[pos:end], emit)
            if end == cr:
                if end + 1 < n:
                    pos = end + 2 if chunk[end + 1] == 10 else end + 1
                else:
                    pos = end + 1
                    self._cr = True  # maybe half of a CRLF
            else:
                pos = end + 1
            if 0 <= nl < pos:
                nl = chunk.find(b"\n", pos)
            if 0 <= cr < pos:
                cr = chunk.find(b"\r", pos)
        if pos < n:
            self._partial(chunk[pos:] if pos else chunk)
        self.idle = not self._line and not self._line_kind and not self._data and not self._cr and not self._over
        return events

    def flush(self) -> list[bytes]:
        """End of stream: dispatch a last event that lacked its blank line (lenient)."""
        events: list[bytes] = []
        if self._line or self._line_kind:
            self._line_end(b"", events.append)
        self._dispatch(events.append)
        self._cr = False
        self.idle = True
        return events

    # -- internals --------------------------------------------------------------------------

    def _partial(self, piece: bytes) -> None:
        """The start or a middle piece of a line that has not ended yet."""
        kind = self._line_kind
        if kind:
            if kind == _DATA_TAIL:
                self._to_tail(piece)
            return
        self._line.append(piece)
        self._line_size += len(piece)
        limit = KEEP_BYTES if self._over else MAX_EVENT_BYTES - self._data_size
        if self._line_size > limit:
            self._spill()

    def _spill(self) -> None:
        """The unfinished line grew past the limit: stream it into the kept tail, or drop it.

        Never joins the whole line (that would hold it twice): only its first and last bytes.
        """
        pieces = self._line
        self._line = []
        self._line_size = 0
        start = _head(pieces, 6)
        if start.startswith(b"data:"):
            cut = 6 if start[5:6] == b" " else 5
            while len(pieces[0]) < cut:  # the "data:" prefix was split across pieces
                pieces[0:2] = [pieces[0] + pieces[1]]
            pieces[0] = pieces[0][cut:]
            if self._over:
                self._to_tail(b"\n" + _tail(pieces, KEEP_BYTES))
            else:
                self._begin_overflow(pieces, joined=True)
            self._line_kind = _DATA_TAIL
        else:  # a huge comment or other field: nothing meter reads
            self._line_kind = _SKIP
            if not self._over:
                self.overflowed += 1

    def _line_end(self, piece: bytes, emit: Callable[[bytes], None]) -> None:
        if self._line and not self._line_kind:
            self._partial(piece)  # the last piece may carry the line past the limit
            piece = b""
        kind = self._line_kind
        if kind:
            self._line_kind = 0
            if kind == _DATA_TAIL:
                self._to_tail(piece)
            return
        if self._line:
            line = b"".join(self._line)
            self._line = []
            self._line_size = 0
        else:
            line = piece
        if not line:
            self._dispatch(emit)
        elif line.startswith(b"data:"):
            value = line[6:] if line[5:6] == b" " else line[5:]
            if self._over:
                self._to_tail(b"\n" + value)
            elif self._data_size + len(value) > MAX_EVENT_BYTES:
                self._begin_overflow([*self._data, value])
            else:
                self._data.append(value)
                self._data_size += len(value)
        # comments (":...") and other fields are skipped

    def _begin_overflow(self, parts: list[bytes], joined: bool = False) -> None:
        """Keep the head and tail of the event so far: its data lines, or (``joined``) the pieces of
        one data line, after the lines already held."""
        self._over = True
        self.overflowed += 1
        if joined and self._data:
            lines = [*self._data, b""]
            pieces: list[bytes] = [b"\n".join(lines), *parts]
        elif joined:
            pieces = parts
        else:
            pieces = [p for part in parts for p in (b"\n", part)][1:]
        self._data = []
        self._data_size = 0
        self._head = _head(pieces, KEEP_BYTES)
        self._tail = bytearray(_tail(pieces, KEEP_BYTES))

    def _to_tail(self, data: bytes) -> None:
        tail = self._tail
        tail += data
        if len(tail) > 2 * KEEP_BYTES:
            del tail[:-KEEP_BYTES]

    def _dispatch(self, emit: Callable[[bytes], None]) -> None:
        if self._over:
            head, tail = self._head, bytes(self._tail[-KEEP_BYTES:])
            self._over = False
            self._head = b""
            self._tail = bytearray()
            if self.on_oversized is not None:
                self.on_oversized(head, tail)
            return
        data = self._data
        if data:
            payload = data[0] if len(data) == 1 else b"\n".join(data)
            self._data = []
            self._data_size = 0
            emit(payload)


def _head(pieces: list[bytes], n: int | None) -> bytes:
    """The first ``n`` bytes of the pieces joined (all of them for ``None``), joining no more than needed."""
    if n is None:
        return b"".join(pieces)
    out: list[bytes] = []
    size = 0
    for piece in pieces:
        out.append(piece)
        size += len(piece)
        if size >= n:
            break
    return b"".join(out)[:n]


def _tail(pieces: list[bytes], n: int) -> bytes:
    """The last ``n`` bytes of the pieces joined, joining no more than needed."""
    out: list[bytes] = []
    size = 0
    for piece in reversed(pieces):
        out.append(piece)
        size += len(piece)
        if size >= n:
            break
    return b"".join(reversed(out))[-n:]
