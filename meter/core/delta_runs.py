"""A run of held stream chunks that are each one steady-state delta event, counted at once. Pure: no I/O.

A stream's steady-state chunks are held on the caller's thread and looked at when the call's end is
built (``Call.on_chunk``). Looked at one by one, each costs a Python call of a dozen byte tests (the
observers' ``take``): 1-2 µs, about a millisecond for a 500-delta stream, the largest part of the
metering worker's time per stream. Yet in a steady stream the chunks share their structure: every chat
delta ends with the same bytes from its finish reason on, every Responses delta starts with the same
event line and ``type``. So the run is tested with a few C-level passes over the whole list (``map`` of
``bytes`` methods, a ``join`` a slice at a time), no Python code per chunk.

Each function returns how many leading chunks its observer's ``take`` would count, for a scanner that is
idle before them, and never more: the tests below are *sufficient* for ``take``'s (every counted chunk
passes ``take``), so the rest is read one by one as before and the result is the same, whatever the
chunking. A chunk that fails a test ends the run (the stream's tail: its finish reason, usage, terminal
event); a run that fails a whole-run test counts nothing.
"""

from __future__ import annotations

from itertools import repeat

_FINISH = b'"finish_reason":'
_USAGE_NULL_END = b'"usage":null}\n\n'
_USAGE_NULL_WINDOW = 512
"""``ChatStreamObserver.take`` looks for the finish reason in a chunk's last 512 bytes when it ends with a
null usage: the shared tail must fit there."""
_DATA_TYPE = b'data: {"type":"'
_SLICE = 128


def _leading(flags: list[bool]) -> int:
    """How many leading ``True``."""
    try:
        return flags.index(False)
    except ValueError:
        return len(flags)


def _one_line_each(run: list[bytes], start: int) -> bool:
    """Every chunk of ``run`` (each ending with a blank line) has no line feed from ``start`` on but its
    last two, and no carriage return at all: one line there, as the scanner would read it.

    The first ``\\n`` from ``start`` is at most ``len - 2`` in each chunk (it ends with ``\\n\\n``), so the
    sum of those positions reaches ``sum(len) - 2 * len(run)`` only if each is exactly there. Carriage
    returns are looked for in the chunks joined a slice at a time (``_SLICE``: a copy of tens of KB, one
    ``memchr``), which measured faster than a pass per chunk."""
    for at in range(0, len(run), _SLICE):
        if b"\r" in b"".join(run[at:at + _SLICE]):
            return False
    return sum(map(bytes.find, run, repeat(b"\n"), repeat(start))) == sum(map(len, run)) - 2 * len(run)


def chat_deltas(chunks: list[bytes]) -> int:
    """Leading chunks that are each one chat delta event with a null finish reason (``take``'s test).

    The first chunk's bytes from its last ``"finish_reason":`` on (the shared tail: finish reason, index,
    logprobs, then the chunk's id, model, fingerprint) must end every chunk of the run. That tail holds no
    other ``"finish_reason":`` and none can straddle its start, so in each chunk the last finish reason is
    the tail's (null), with no ``usage`` or ``error`` key after it, or, if it ends with a null usage,
    within the last 512 bytes: exactly what ``take`` tests.
    """
    if not chunks:
        return 0
    first = chunks[0]
    at = first.rfind(_FINISH)
    if at < 0:
        return 0
    tail = first[at:]
    if not tail.startswith(b"n", len(_FINISH)) or not tail.endswith(b"}\n\n"):
        return 0
    if tail.endswith(_USAGE_NULL_END):
        if len(tail) > _USAGE_NULL_WINDOW:
            return 0
    elif b'"usage"' in tail or b'"error"' in tail:
        return 0
    n = _leading(list(map(bytes.endswith, chunks, repeat(tail))))
    run = chunks[:n] if n < len(chunks) else chunks
    if not all(map(bytes.startswith, run, repeat(b"data: {"))) or not _one_line_each(run, 0):
        return 0
    return n


def responses_deltas(chunks: list[bytes]) -> int:
    """Leading chunks that are each one Responses ``*.delta`` event (``take``'s test).

    The first chunk's head (its ``event:`` line if any, then ``data: {"type":"<type>"``, the type ending in
    ``.delta``) must start every chunk of the run, and each must be exactly those two lines: its type is
    then the head's.
    """
    if not chunks:
        return 0
    first = chunks[0]
    start = first.find(b"\n") + 1 if first.startswith(b"event: ") else 0
    if not first.startswith(_DATA_TYPE, start):
        return 0
    end = first.find(b'"', start + len(_DATA_TYPE))
    if end < 0 or not first[start + len(_DATA_TYPE):end].endswith(b".delta"):
        return 0
    head = first[:end + 1]
    n = _leading(list(map(bytes.startswith, chunks, repeat(head))))
    run = chunks[:n] if n < len(chunks) else chunks
    if not all(map(bytes.endswith, run, repeat(b"\n\n"))) or not _one_line_each(run, start):
        return 0
    return n
