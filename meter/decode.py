"""Content-Encoding decoders for the metering copy of a body.

The transport sees the bytes as sent on the wire. The caller gets exactly those
bytes; meter decodes a copy, incrementally, only to read usage from it.
"""

from __future__ import annotations

import zlib
from typing import Protocol


class Decoder(Protocol):
    def decode(self, data: bytes) -> bytes: ...


class _Zlib:
    """gzip (wbits 16+) and deflate; deflate tries zlib framing, then raw, as browsers do."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._first = True

    def decode(self, data: bytes) -> bytes:
        if self._first and not self._gzip and data:
            self._first = False
            try:
                return self._obj.decompress(data)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        self._first = False
        return self._obj.decompress(data)


class _Brotli:
    def __init__(self) -> None:
        import brotli

        self._obj = brotli.Decompressor()

    def decode(self, data: bytes) -> bytes:
        out: bytes = self._obj.process(data)
        return out


class _Zstd:
    def __init__(self) -> None:
        import zstandard

        self._obj = zstandard.ZstdDecompressor().decompressobj()

    def decode(self, data: bytes) -> bytes:
        out: bytes = self._obj.decompress(data)
        return out


class _Chain:
    def __init__(self, decoders: list[Decoder]) -> None:
        self._decoders = decoders

    def decode(self, data: bytes) -> bytes:
        for decoder in self._decoders:
            data = decoder.decode(data)
        return data


def _one(name: str) -> Decoder:
    if name in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if name == "deflate":
        return _Zlib(gzip=False)
    if name == "br":
        return _Brotli()
    if name == "zstd":
        return _Zstd()
    raise ValueError(f"unsupported content-encoding {name!r}")


def decoder_for(content_encoding: str | None) -> Decoder | None:
    """A decoder for a ``Content-Encoding`` value, or ``None`` when the body is not encoded.

    Encodings apply in the order listed, so they are undone in reverse.
    """
    if not content_encoding:
        return None
    names = [n.strip().lower() for n in content_encoding.split(",") if n.strip() not in ("", "identity")]
    decoders = [_one(n) for n in reversed(names)]
    if not decoders:
        return None
    return decoders[0] if len(decoders) == 1 else _Chain(decoders)
