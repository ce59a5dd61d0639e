"""Property 6 (bounded resources), decompression bombs: meter's decoded copy is capped.

Defect 6: a 405-byte brotli body that decodes to 256 MiB grew the process by
500 MB while the unmetered client grew by nothing, because meter decoded its
copy in one step. Each bomb here is served over a real socket and read raw by
the caller, once unmetered and once metered, each in a fresh process, and the
peak RSS growth of the two is compared. The caller gets the same bytes; meter
stops reading at its cap (usage ``None``, a fault counted) and holds no more
than one decoded JSON body (32 MiB) or one event plus one piece.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import brotli
import pytest
import zstandard

from tests.reliability.fresh import run_fresh

DECODED = 256 * 1024 * 1024
MB = 1024 * 1024


def _stream_compress(compress_piece, finish) -> bytes:  # type: ignore[no-untyped-def]
    zeros = bytes(MB)
    out = [compress_piece(zeros) for _ in range(DECODED // MB)]
    out.append(finish())
    return b"".join(out)


def _bomb(encoding: str) -> bytes:
    if encoding in ("gzip", "deflate"):
        obj = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)
        return _stream_compress(obj.compress, obj.flush)
    if encoding == "br":
        comp = brotli.Compressor(quality=5)
        return _stream_compress(comp.process, comp.finish)
    if encoding == "zstd":
        zobj = zstandard.ZstdCompressor(level=3).compressobj()
        return _stream_compress(zobj.compress, zobj.flush)
    if encoding == "gzip, br":  # gzip first, then brotli over it: undone as br, then gzip
        return brotli.compress(_bomb("gzip"), quality=5)
    raise ValueError(encoding)


READ = """
import json, sys, time
import httpx2, meter
from tests.support.replay import CannedResponse, ReplayServer

from tests.support.memory import peak_kib, rss_kib

bomb = open(sys.argv[1], "rb").read()
encoding, content_type, mode = sys.argv[2], sys.argv[3], sys.argv[4]
records = []
m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
path = "/openai/deployments/d/chat/completions?api-version=2024-10-21"
with ReplayServer() as srv:
    head = [("content-type", content_type), ("content-encoding", encoding)]
    srv.add("POST", path, CannedResponse(200, [("content-type", "application/json")], [b'{"usage": null}'],
                                         chunked=False))  # the warm-up call, first in line
    srv.add("POST", path, CannedResponse(200, head, [bomb], chunked=False))
    inner = httpx2.HTTPTransport()
    client = httpx2.Client(transport=meter.MeteredTransport(inner, meter=m) if mode == "metered" else inner)
    client.post(srv.url + path, json={"stream": False})
    import brotli, zstandard, zlib  # decoders loaded before the baseline
    body = {"messages": [], "stream": content_type != "application/json"}
    base = rss_kib()
    t0 = time.perf_counter()
    with client.stream("POST", srv.url + path, json=body) as response:
        raw = b"".join(response.iter_raw())
    seconds = time.perf_counter() - t0
    grown_kib = peak_kib() - base
m.flush()
print(json.dumps({"raw_ok": raw == bomb, "grown_mb": grown_kib / 1024, "seconds": seconds,
                  "records": len(records), "faults": dict(m.faults),
                  "usage": None if not records else (records[-1].usage is not None)}))
"""


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "gzip, br"])
@pytest.mark.parametrize("content_type", ["application/json", "text/event-stream"])
def test_a_bomb_costs_meter_a_bounded_copy(encoding: str, content_type: str, tmp_path: Path,
                                          figures: dict[str, object]) -> None:
    bomb_file = tmp_path / "bomb"
    bomb_file.write_bytes(_bomb(encoding))
    results = {}
    for mode in ("raw", "metered"):
        out = run_fresh(READ, timeout=120, argv=[str(bomb_file), encoding, content_type, mode])
        results[mode] = json.loads(out.strip().splitlines()[-1])
    raw, metered = results["raw"], results["metered"]
    assert raw["raw_ok"] and metered["raw_ok"]  # the caller got the bomb's bytes exactly, both times
    assert metered["records"] == 2  # the warm-up call and the bomb: one record each
    assert metered["usage"] is False  # usage unknown, never invented
    faults = metered["faults"]
    assert faults.get("decoded_too_large", 0) + faults.get("body_too_large", 0) == 1, faults
    extra = metered["grown_mb"] - raw["grown_mb"]
    bound = 32 + 8 if content_type == "application/json" else 16 + 8  # one body or one event, plus slack
    assert extra < bound, f"meter's copy grew the process by {extra:.0f} MB"
    key = f"bomb {encoding} {content_type}"
    figures[key] = (f"{bomb_file.stat().st_size} B -> 256 MiB: +{metered['grown_mb']:.1f} MB metered vs "
                    f"+{raw['grown_mb']:.1f} MB raw, {metered['seconds']:.2f} s vs {raw['seconds']:.2f} s")
