"""Content-Encoding decoders for the metering copy of a body, bounded.

The transport sees the bytes as sent on the wire. The caller gets exactly those
bytes; meter decodes a copy, incrementally, only to read usage from it. A copy
nobody asked for must not cost more than the call: a 405-byte brotli body can
decode to 256 MiB in one step. So every decoder here hands its output on in
pieces of at most ``PIECE_BYTES`` as it goes (it never holds a whole decoded
chunk), and raises ``DecodedTooLarge`` once a call's decoded bytes pass
``MAX_DECODED_BYTES``; the call then stops parsing (usage ``None``, a fault
counted) while the caller's bytes flow on untouched.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, Protocol

MAX_DECODED_BYTES = 64 * 1024 * 1024
"""Decoded bytes meter reads per call; past this it stops (twice the largest JSON body it parses)."""
PIECE_BYTES = 256 * 1024
"""Largest piece of output a decoder produces at once: what one step of a bomb can cost."""
MAX_ZSTD_WINDOW_BYTES = 8 * 1024 * 1024
"""RFC 9659: a zstd Content-Encoding uses at most an 8 MB window; bigger frames are refused."""

Sink = Callable[[bytes], None]


class DecodedTooLarge(ValueError):
    """The decoded body passed ``MAX_DECODED_BYTES`` (a decompression bomb, or simply too big to read)."""


class Decoder(Protocol):
    def decode(self, data: bytes, sink: Sink) -> None:
        """Decode ``data`` and hand the output to ``sink`` in pieces of at most ``PIECE_BYTES``."""


class _Budget:
    """Counts the decoded bytes of one call across every decoder of a chain."""

    __slots__ = ("left",)

    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise DecodedTooLarge(f"the decoded body exceeds {MAX_DECODED_BYTES} bytes")


class _Zlib:
    """gzip (wbits 16+, several members in a row) and deflate (zlib framing, else raw, as browsers do)."""

    def __init__(self, gzip: bool, budget: _Budget) -> None:
        self._gzip = gzip
        self._budget = budget
        self._obj = self._new()
        self._first = True

    def _new(self) -> Any:
        return zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)

    def decode(self, data: bytes, sink: Sink) -> None:
        if self._first and data:
            self._first = False
            if not self._gzip:
                try:
                    self._run(data, sink)
                    return
                except zlib.error:
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        self._run(data, sink)

    def _run(self, data: bytes, sink: Sink) -> None:
        obj = self._obj
        while data:
            out = obj.decompress(data, PIECE_BYTES)
            if out:
                self._budget.spend(len(out))
                sink(out)
            data = obj.unconsumed_tail
            if obj.eof:
                rest = obj.unused_data
                if not (self._gzip and rest):
                    return
                obj = self._obj = self._new()  # the next gzip member
                data = rest


class _Brotli:
    def __init__(self, budget: _Budget) -> None:
        import brotli

        self._obj = brotli.Decompressor()
        self._budget = budget

    def decode(self, data: bytes, sink: Sink) -> None:
        obj = self._obj
        out: bytes = obj.process(data, output_buffer_limit=PIECE_BYTES)
        while True:
            if out:
                self._budget.spend(len(out))
                sink(out)
            if obj.can_accept_more_data() or obj.is_finished():
                return
            out = obj.process(b"", output_buffer_limit=PIECE_BYTES)


class _Zstd:
    """zstd through a stream writer: it hands its output on in ``PIECE_BYTES`` writes, never all at once."""

    def __init__(self, budget: _Budget) -> None:
        import zstandard

        self._budget = budget
        self._sink: Sink | None = None
        decompressor = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW_BYTES)
        # The writer only ever calls ``write`` on its destination (a duck-typed file).
        self._writer = decompressor.stream_writer(self, write_size=PIECE_BYTES, closefd=False)  # type: ignore[arg-type]

    def write(self, piece: bytes) -> int:  # the stream writer's output side
        self._budget.spend(len(piece))
        assert self._sink is not None
        self._sink(bytes(piece))
        return len(piece)

    def decode(self, data: bytes, sink: Sink) -> None:
        self._sink = sink
        try:
            self._writer.write(data)
        finally:
            self._sink = None


class _Chain:
    """Several encodings, undone in reverse order; each piece flows through the next decoder at once."""

    def __init__(self, decoders: list[Decoder]) -> None:
        self._decoders = decoders

    def decode(self, data: bytes, sink: Sink) -> None:
        self._step(0, data, sink)

    def _step(self, i: int, data: bytes, sink: Sink) -> None:
        if i == len(self._decoders) - 1:
            self._decoders[i].decode(data, sink)
        else:
            self._decoders[i].decode(data, lambda piece: self._step(i + 1, piece, sink))


def _one(name: str, budget: _Budget) -> Decoder:
    if name in ("gzip", "x-gzip"):
        return _Zlib(True, budget)
    if name == "deflate":
        return _Zlib(False, budget)
    if name == "br":
        return _Brotli(budget)
    if name == "zstd":
        return _Zstd(budget)
    raise ValueError(f"unsupported content-encoding {name!r}")


def decoder_for(content_encoding: str | None, limit: int = MAX_DECODED_BYTES) -> Decoder | None:
    """A decoder for a ``Content-Encoding`` value, or ``None`` when the body is not encoded.

    Encodings apply in the order listed, so they are undone in reverse. ``limit``
    bounds the decoded bytes of the whole chain (intermediate layers included).
    """
    if not content_encoding:
        return None
    names = [n.strip().lower() for n in content_encoding.split(",") if n.strip().lower() not in ("", "identity")]
    if not names:
        return None
    budget = _Budget(limit)
    decoders = [_one(n, budget) for n in reversed(names)]
    return decoders[0] if len(decoders) == 1 else _Chain(decoders)
